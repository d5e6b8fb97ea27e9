"""AWS Batch's request size quotas, environment variable names, and jobs that end whatever their
containers do: written from the AWS Batch service quotas and API reference, checked with boto3."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.emulator import helpers
from tests.emulator.helpers import container

KIB = 1024


def padded_env(size: int) -> list[dict[str, str]]:
    """One variable whose value makes the environment about ``size`` bytes."""
    return [{"name": "PADDING", "value": "x" * size}]


# Service quotas: "Maximum job payload size (for SubmitJob API operations) 30 KiB".


def test_submit_job_over_30_kib_is_refused_with_awss_message(batch: Any, ec2_queue: str) -> None:
    definition = helpers.register_container(batch, ["true"])["jobDefinitionArn"]
    with pytest.raises(ClientError) as excinfo:
        helpers.submit(batch, ec2_queue, definition, containerOverrides={"environment": padded_env(31 * KIB)})
    code, message, status = helpers.client_error(excinfo)
    assert (code, status) == ("ClientException", 400)
    assert message == "Error executing request, Exception : Job size must be less than 30 KiB, got 32 KiB"
    assert batch.list_jobs(jobQueue=ec2_queue, filters=[{"name": "JOB_NAME", "values": ["*"]}])["jobSummaryList"] == []


def test_submit_job_just_under_30_kib_runs(batch: Any, ec2_queue: str) -> None:
    definition = helpers.register_container(batch, ["sh", "-c", 'test "${#PADDING}" -gt 29000'])["jobDefinitionArn"]
    job_id = helpers.submit(batch, ec2_queue, definition, containerOverrides={"environment": padded_env(29 * KIB)})
    assert helpers.wait_for_status(batch, job_id)["status"] == "SUCCEEDED"


# Service quotas: "Maximum job definition size (for RegisterJobDefinition API operations) 24 KiB".


def test_register_job_definition_over_24_kib_is_refused(batch: Any) -> None:
    name = helpers.unique("big-def")
    with pytest.raises(ClientError) as excinfo:
        helpers.register_ecs(batch, [container("main", ["true"], environment=padded_env(25 * KIB))], name=name)
    code, message, status = helpers.client_error(excinfo)
    assert (code, status) == ("ClientException", 400)
    assert message == "Error executing request, Exception : Limits Error: JobDefinitionsize is above the limits 24 KB"
    assert batch.describe_job_definitions(jobDefinitionName=name)["jobDefinitions"] == []


def test_register_job_definition_just_under_24_kib_is_accepted(batch: Any) -> None:
    answer = helpers.register_ecs(batch, [container("main", ["true"], environment=padded_env(23 * KIB))])
    assert answer["revision"] == 1


# Environment variables: "cannot start with AWS_BATCH. This naming convention is reserved for
# variables that Batch sets." Any other name is handed to the container as Docker's ``name=value``.


def test_environment_names_starting_with_aws_batch_are_refused(batch: Any, ec2_queue: str) -> None:
    reserved = [{"name": "AWS_BATCH_JOB_ID", "value": "mine"}]
    with pytest.raises(ClientError) as excinfo:
        helpers.register_ecs(batch, [container("main", ["true"], environment=reserved)])
    assert "cannot start with AWS_BATCH" in helpers.client_error(excinfo)[1]
    definition = helpers.register_ecs(batch, [container("main", ["true"])])["jobDefinitionArn"]
    override = {"taskProperties": [{"containers": [{"name": "main", "environment": reserved}]}]}
    with pytest.raises(ClientError) as excinfo:
        helpers.submit(batch, ec2_queue, definition, ecsPropertiesOverride=override)
    assert "cannot start with AWS_BATCH" in helpers.client_error(excinfo)[1]


def test_odd_environment_names_run_to_the_end_as_docker_would_set_them(batch: Any, logs: Any, ec2_queue: str) -> None:
    definition = helpers.register_ecs(batch, [container("main", ["sh", "-c", 'echo "A=[$A] OK=[$OK]"'])])
    odd = [{"name": name, "value": "v"} for name in ("A=B", "1BAD", "A-B", "A B", "")] + [{"name": "OK", "value": "y"}]
    override = {"taskProperties": [{"containers": [{"name": "main", "environment": odd}]}]}
    job_id = helpers.submit(batch, ec2_queue, definition["jobDefinitionArn"], ecsPropertiesOverride=override)
    job = helpers.wait_for_status(batch, job_id, timeout=20)
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    main = helpers.container_results(job)["main"]
    assert helpers.log_messages(logs, main["logStreamName"]) == ["A=[B=v] OK=[y]"]


# A job ends whatever its containers do.


@pytest.mark.parametrize("first", [True, False], ids=["first-container", "after-a-dependency"])
def test_a_container_the_host_cannot_start_fails_the_job_instead_of_hanging_it(
    batch: Any, ec2_queue: str, first: bool
) -> None:
    unstartable = container("main", ["true"], environment=[{"name": "NUL", "value": "a\x00b"}])
    containers = [unstartable]
    if not first:
        unstartable["dependsOn"] = [{"containerName": "before", "condition": "SUCCESS"}]
        containers.insert(0, container("before", ["true"], essential=False))
    definition = helpers.register_ecs(batch, containers)["jobDefinitionArn"]
    job = helpers.wait_for_status(batch, helpers.submit(batch, ec2_queue, definition), timeout=20)
    assert job["status"] == "FAILED"
    assert "CannotStartContainerError" in job["statusReason"]


def test_terminate_ends_a_job_whose_containers_ignore_sigterm_within_seconds(
    batch: Any, logs: Any, ec2_queue: str
) -> None:
    definition = helpers.register_ecs(batch, [
        container("main", ["sh", "-c", "trap '' TERM; echo trapped; sleep 1000"]),
        container("side", ["sh", "-c", "trap '' TERM; echo trapped; sleep 1000"], essential=False),
    ])
    job_id = helpers.submit(batch, ec2_queue, definition["jobDefinitionArn"])
    for name in ("main", "side"):  # both processes run, their traps set
        helpers.wait_for_lines(batch, logs, job_id, name, ["trapped"])
    started = time.monotonic()
    batch.terminate_job(jobId=job_id, reason="stop now")
    job = helpers.wait_for_status(batch, job_id, helpers.TERMINAL, timeout=15)
    assert time.monotonic() - started < 8, "SIGKILL follows SIGTERM after the grace period"
    assert (job["status"], job["statusReason"]) == ("FAILED", "stop now")
    assert {c["exitCode"] for c in helpers.container_results(job).values()} == {137}
