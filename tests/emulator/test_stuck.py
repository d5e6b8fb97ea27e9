"""Jobs stuck in RUNNABLE: the statusReason of their cause and the queue's jobStateTimeLimitActions, as the AWS
Batch user guide ("Jobs stuck in a RUNNABLE status") and the API reference (JobStateTimeLimitAction) describe."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from airflow_batch_runner.emulator.testing import control
from tests.emulator import helpers
from tests.emulator.helpers import container, resources

pytestmark = pytest.mark.timeout(120)


def fargate_definition(batch: Any, vcpu: str = "1", memory: str = "2048") -> str:
    main = container("main", ["true"], resourceRequirements=resources(vcpu, memory))
    definition = helpers.register_ecs(batch, [main], fargate=True)
    return str(definition["jobDefinitionArn"])


def runnable_reason(batch: Any, job_id: str) -> str:
    return str(helpers.wait_until(
        lambda: (lambda j: j["status"] == "RUNNABLE" and j.get("statusReason"))(helpers.describe(batch, job_id))))


def small_fargate_queue(batch: Any, **params: Any) -> str:
    """A queue on a Fargate compute environment of maxvCpus 1: a 2-vCPU job can never be placed there."""
    ce = batch.create_compute_environment(
        computeEnvironmentName=helpers.unique("small"), type="MANAGED",
        computeResources={"type": "FARGATE", "maxvCpus": 1, "subnets": ["subnet-0123456789abcdef0"],
                          "securityGroupIds": ["sg-0123456789abcdef0"]})["computeEnvironmentArn"]
    helpers.wait_until(lambda: batch.describe_compute_environments(computeEnvironments=[ce])
                       ["computeEnvironments"][0]["status"] == "VALID")
    queue = str(batch.create_job_queue(jobQueueName=helpers.unique("small"), priority=1, state="ENABLED",
                                       computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}],
                                       **params)["jobQueueArn"])
    helpers.wait_until(lambda: helpers.queue_status(batch, queue) == "VALID")
    return queue


def test_a_job_beyond_every_max_vcpus_says_so(batch: Any) -> None:
    queue = small_fargate_queue(batch)
    job_id = helpers.submit(batch, queue, fargate_definition(batch, "2", "4096"))
    reason = runnable_reason(batch, job_id)
    assert reason.startswith("MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE - ")
    assert "2 vCPUs" in reason
    listed = batch.list_jobs(jobQueue=queue, jobStatus="RUNNABLE")["jobSummaryList"]
    assert next(j.get("statusReason", "") for j in listed if j["jobId"] == job_id).startswith(
        "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE")


def test_a_time_limit_action_cancels_a_job_stuck_for_its_reason(
    emulator_url: str, batch: Any
) -> None:
    actions = [{"reason": "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE", "state": "RUNNABLE",
                "maxTimeSeconds": 600, "action": "CANCEL"}]
    queue = small_fargate_queue(batch, jobStateTimeLimitActions=actions)
    assert batch.describe_job_queues(jobQueues=[queue])["jobQueues"][0]["jobStateTimeLimitActions"] == actions
    control(emulator_url, "timing", {"jobStateTimeLimitScale": 0.002})  # 600 s -> 1.2 s
    job_id = helpers.submit(batch, queue, fargate_definition(batch, "2", "4096"))
    job = helpers.wait_for_status(batch, job_id, ("FAILED",), timeout=20)
    assert job["statusReason"] == (
        "Canceled by JobStateTimeLimit action due to reason: MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE")
    assert job["isCancelled"] is True
    assert job["attempts"] == []


def test_a_time_limit_action_for_another_reason_leaves_the_job_waiting(
    emulator_url: str, batch: Any
) -> None:
    queue = small_fargate_queue(batch)
    batch.update_job_queue(jobQueue=queue, jobStateTimeLimitActions=[
        {"reason": "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY", "state": "RUNNABLE", "maxTimeSeconds": 600,
         "action": "CANCEL"}])
    # 600 s -> 0.3 s, shorter than the 0.5 s between two checks of a stuck job: past the limit at its first recheck.
    control(emulator_url, "timing", {"jobStateTimeLimitScale": 0.0005})
    # A witness stuck for the same reason on a queue whose action names it: once it is cancelled, the job
    # has been rechecked too (its checks come first, at the same pace).
    witness_queue = small_fargate_queue(batch, jobStateTimeLimitActions=[
        {"reason": "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE", "state": "RUNNABLE", "maxTimeSeconds": 600,
         "action": "CANCEL"}])
    definition = fargate_definition(batch, "2", "4096")
    job_id = helpers.submit(batch, queue, definition)
    runnable_reason(batch, job_id)
    witness = helpers.submit(batch, witness_queue, definition)
    assert helpers.wait_for_status(batch, witness, ("FAILED",), timeout=20)["isCancelled"] is True
    assert helpers.describe(batch, job_id)["status"] == "RUNNABLE"


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"reason": "X", "state": "RUNNABLE", "maxTimeSeconds": 599, "action": "CANCEL"}, "between 600 and 86400"),
        ({"reason": "X", "state": "RUNNABLE", "maxTimeSeconds": 86401, "action": "CANCEL"}, "between 600 and 86400"),
        ({"reason": "X", "state": "STARTING", "maxTimeSeconds": 600, "action": "CANCEL"}, "state must be RUNNABLE"),
        ({"reason": "X", "state": "RUNNABLE", "maxTimeSeconds": 600, "action": "TERMINATE"}, "action must be CANCEL"),
        ({"state": "RUNNABLE", "maxTimeSeconds": 600, "action": "CANCEL"}, "is missing reason"),
    ],
)
def test_invalid_time_limit_actions_are_refused(
    emulator_url: str, batch: Any, ec2_queue: str, action: dict[str, Any], message: str
) -> None:
    raw = helpers.client(emulator_url, "batch", parameter_validation=False)
    ce = batch.describe_job_queues(jobQueues=[ec2_queue])["jobQueues"][0]["computeEnvironmentOrder"][0]
    with pytest.raises(ClientError) as excinfo:
        raw.create_job_queue(jobQueueName=helpers.unique("bad"), priority=1, computeEnvironmentOrder=[ce],
                             jobStateTimeLimitActions=[action])
    code, text, _ = helpers.client_error(excinfo)
    assert code == "ClientException" and message in text
