"""Job dependencies (user guide "Job dependencies", SubmitJob dependsOn) and parameter substitution
(user guide "Parameter substitution", RegisterJobDefinition / SubmitJob parameters)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.emulator import helpers
from tests.emulator.helpers import container
from tests.emulator.test_batch_validation import refused

pytestmark = pytest.mark.timeout(120)


def _definition(batch: Any, script: str) -> str:
    arn: str = helpers.register_ecs(batch, [container("main", ["sh", "-c", script])])["jobDefinitionArn"]
    return arn


def test_dependent_job_stays_pending_until_its_dependency_succeeds(
    batch: Any, ec2_queue: str, tmp_path: Path
) -> None:
    # The dependency runs until the test lets it end (the emulator runs its command on this host).
    release = tmp_path / "release"
    first = helpers.submit(batch, ec2_queue, _definition(batch, helpers.until_released(release)))
    second = helpers.submit(batch, ec2_queue, _definition(batch, "true"), dependsOn=[{"jobId": first}])
    helpers.wait_for_status(batch, first, ["RUNNING"])
    # PENDING one emulator step after SUBMITTED, and there while its dependency runs (else this times out).
    helpers.wait_for_status(batch, second, ["PENDING"])
    assert helpers.describe(batch, second)["status"] == "PENDING"
    release.touch()
    job, seen = helpers.watch_job(batch, second)
    assert job["status"] == "SUCCEEDED"
    # Polled statuses can miss one that lasts an emulator step on a loaded host: their order only.
    assert seen == [s for s in ("PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED") if s in seen], seen
    assert job["dependsOn"] == [{"jobId": first}]
    assert job["startedAt"] >= helpers.describe(batch, first)["stoppedAt"]


def test_a_failed_dependency_fails_the_dependent_without_running_it(batch: Any, ec2_queue: str) -> None:
    ok = _definition(batch, "true")
    failing = helpers.submit(batch, ec2_queue, _definition(batch, "sleep 0.5; exit 4"))
    fine = helpers.submit(batch, ec2_queue, ok)
    dependent = helpers.submit(batch, ec2_queue, ok, dependsOn=[{"jobId": fine}, {"jobId": failing}])
    chained = helpers.submit(batch, ec2_queue, ok, dependsOn=[{"jobId": dependent}])
    for job_id in (dependent, chained):
        job = helpers.wait_for_status(batch, job_id)
        assert job["status"] == "FAILED"
        assert job["statusReason"] == "Dependent Job failed"
        assert job["attempts"] == []
        assert "startedAt" not in job
    # A dependency that has already failed fails the dependent as soon as the scheduler sees it.
    late = helpers.submit(batch, ec2_queue, ok, dependsOn=[{"jobId": failing}])
    assert helpers.wait_for_status(batch, late)["statusReason"] == "Dependent Job failed"


def test_dependency_on_a_finished_job_runs_at_once(batch: Any, ec2_queue: str) -> None:
    ok = _definition(batch, "true")
    first = helpers.submit(batch, ec2_queue, ok)
    helpers.wait_for_status(batch, first)
    second = helpers.submit(batch, ec2_queue, ok, dependsOn=[{"jobId": first}])
    assert helpers.wait_for_status(batch, second)["status"] == "SUCCEEDED"


def test_at_most_20_dependencies(batch: Any, ec2_queue: str) -> None:
    ok = _definition(batch, "true")
    ids = [helpers.submit(batch, ec2_queue, ok) for _ in range(21)]
    message = refused(
        batch.submit_job, jobName="j", jobQueue=ec2_queue, jobDefinition=ok,
        dependsOn=[{"jobId": i} for i in ids],
    )
    assert "20" in message and "dependsOn" in message
    twenty = helpers.submit(batch, ec2_queue, ok, dependsOn=[{"jobId": i} for i in ids[:20]])
    assert helpers.wait_for_status(batch, twenty)["status"] == "SUCCEEDED"


def test_dependency_on_an_unknown_job_is_refused(batch: Any, ec2_queue: str) -> None:
    message = refused(
        batch.submit_job, jobName="j", jobQueue=ec2_queue, jobDefinition=_definition(batch, "true"),
        dependsOn=[{"jobId": "00000000-0000-0000-0000-000000000000"}],
    )
    assert "00000000-0000-0000-0000-000000000000" in message


def test_dependency_type_must_be_known(raw_batch: Any, ec2_queue: str) -> None:
    message = refused(
        raw_batch.submit_job, jobName="j", jobQueue=ec2_queue, jobDefinition=_definition(raw_batch, "true"),
        arrayProperties={"size": 2}, dependsOn=[{"type": "ONE_TO_MANY"}],
    )
    assert "ONE_TO_MANY" in message


@pytest.fixture
def raw_batch(emulator_url: str) -> Any:
    return helpers.client(emulator_url, "batch", parameter_validation=False)


# Parameter substitution


def test_ref_placeholders_take_the_submitted_value_over_the_definition_default(
    batch: Any, logs: Any, ec2_queue: str
) -> None:
    definition = helpers.register_container(
        batch,
        ["echo", "Ref::greeting", "Ref::name", "Ref::undefined", "prefix-Ref::name"],
        parameters={"greeting": "hello", "name": "default"},
    )
    assert batch.describe_job_definitions(jobDefinitions=[definition["jobDefinitionArn"]])["jobDefinitions"][0][
        "parameters"
    ] == {"greeting": "hello", "name": "default"}
    job_id = helpers.submit(batch, ec2_queue, definition["jobDefinitionArn"], parameters={"name": "world"})
    job = helpers.wait_for_status(batch, job_id)
    assert job["status"] == "SUCCEEDED"
    assert job["parameters"] == {"greeting": "hello", "name": "world"}
    assert job["container"]["command"] == ["echo", "hello", "world", "Ref::undefined", "prefix-Ref::name"]
    assert helpers.log_messages(logs, job["container"]["logStreamName"]) == [
        "hello world Ref::undefined prefix-Ref::name"
    ]


def test_ref_placeholders_in_overridden_commands_and_ecs_containers(batch: Any, logs: Any, ec2_queue: str) -> None:
    definition = helpers.register_ecs(
        batch, [container("main", ["echo", "Ref::word"], log_prefix="refs")], parameters={"word": "from-definition"}
    )["jobDefinitionArn"]
    plain = helpers.wait_for_status(batch, helpers.submit(batch, ec2_queue, definition))
    stream = helpers.container_results(plain)["main"]["logStreamName"]
    assert helpers.log_messages(logs, stream) == ["from-definition"]
    overridden = helpers.submit(
        batch, ec2_queue, definition, parameters={"word": "from-submit"},
        ecsPropertiesOverride={
            "taskProperties": [{"containers": [{"name": "main", "command": ["echo", "Ref::word", "!"]}]}]
        },
    )
    job = helpers.wait_for_status(batch, overridden)
    stream = helpers.container_results(job)["main"]["logStreamName"]
    assert helpers.log_messages(logs, stream) == ["from-submit !"]


# Secrets (ContainerProperties / TaskContainerProperties secrets: Secrets Manager or SSM Parameter Store)


def test_secrets_reach_the_container_from_secrets_manager_and_ssm(
    batch: Any, logs: Any, ec2_queue: str, emulator_url: str
) -> None:
    ssm = helpers.client(emulator_url, "ssm")
    secrets = helpers.client(emulator_url, "secretsmanager")
    ssm.put_parameter(Name="/app/token", Value="from-ssm", Type="SecureString")
    whole = secrets.create_secret(Name=helpers.unique("plain"), SecretString="from-asm")["ARN"]
    keyed = secrets.create_secret(Name=helpers.unique("json"), SecretString='{"user": "alice", "pw": "x"}')["ARN"]
    definition = helpers.register_ecs(batch, [container(
        "main", ["sh", "-c", 'echo "$TOKEN $WHOLE $USER_NAME"'],
        secrets=[{"name": "TOKEN", "valueFrom": "/app/token"}, {"name": "WHOLE", "valueFrom": whole},
                 {"name": "USER_NAME", "valueFrom": f"{keyed}:user::"}],
    )])["jobDefinitionArn"]
    job = helpers.wait_for_status(batch, helpers.submit(batch, ec2_queue, definition))
    assert job["status"] == "SUCCEEDED"
    stream = helpers.container_results(job)["main"]["logStreamName"]
    assert helpers.log_messages(logs, stream) == ["from-ssm from-asm alice"]


def test_a_secret_that_cannot_be_read_fails_the_attempt_before_any_container_starts(
    batch: Any, ec2_queue: str
) -> None:
    definition = helpers.register_ecs(batch, [container(
        "main", ["true"], secrets=[{"name": "TOKEN", "valueFrom": "/no/such/parameter"}],
    )])["jobDefinitionArn"]
    job = helpers.wait_for_status(batch, helpers.submit(batch, ec2_queue, definition))
    assert job["status"] == "FAILED"
    assert job["statusReason"].startswith("ResourceInitializationError: unable to pull secrets")
    assert "/no/such/parameter" in job["statusReason"]
    assert len(job["attempts"]) == 1 and "startedAt" not in job
