"""A job stuck in RUNNABLE fails fast with Batch's reason; the runner's queue cancels such jobs on its own."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import AwsWorld, run_dag, wait_valid
from tests.e2e.test_failures import task_dag, the_job

REASON = "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE"


def queue_too_small(aws: AwsWorld, name: str) -> str:
    """A queue whose only (Fargate) compute environment has maxvCpus 1: a 2-vCPU job can never be placed."""
    batch = aws.client("batch")
    ce = batch.create_compute_environment(
        computeEnvironmentName=f"{name}-small", type="MANAGED",
        computeResources={"type": "FARGATE", "maxvCpus": 1, "subnets": ["subnet-1"], "securityGroupIds": ["sg-1"]},
    )["computeEnvironmentArn"]
    wait_valid(batch, [ce])
    return aws.job_queue(name, ce)


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_a_job_runnable_past_max_runnable_time_is_terminated_and_fails_with_code_3_and_the_reason(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], deferrable: bool
) -> None:
    queue = queue_too_small(aws, f"small-{deferrable}")
    dag_id = f"stuck_{deferrable}"
    result = run_dag(task_dag(dag_id, bucket=None, commands=["true"], job_queue_arn=queue, deferrable=deferrable,
                              max_runnable_time=3, wait_until_completion=600,
                              resources={"request": {"cpu": "2", "memory": "4096"}}), capsys)
    assert result.state == "failed"
    assert "stayed RUNNABLE longer than 3 s (max_runnable_time); it was terminated. Exit code 3 (status RUNNABLE)." \
        in result.output
    assert f"Status reason: {REASON} - " in result.output
    assert f"is still RUNNABLE: {REASON} - " in result.output or f"is RUNNABLE: {REASON} - " in result.output
    job = the_job(aws, dag_id, queue)
    assert job["status"] == "FAILED"
    assert job["statusReason"].startswith(f"airflow-batch-runner: RUNNABLE for more than 3 s (max_runnable_time): "
                                          f"{REASON}")


def test_the_queue_the_runner_creates_cancels_jobs_aws_cannot_place(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_dag(task_dag("makes_queue", bucket=None, commands=["true"]), capsys)
    assert result.state == "success", result.output[-2000:]
    (queue,) = aws.client("batch").describe_job_queues()["jobQueues"]
    assert {a["reason"]: (a["state"], a["maxTimeSeconds"], a["action"]) for a in queue["jobStateTimeLimitActions"]} \
        == {"MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE": ("RUNNABLE", 600, "CANCEL"),
            "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT": ("RUNNABLE", 600, "CANCEL"),
            "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY": ("RUNNABLE", 14400, "CANCEL")}


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_an_array_whose_children_all_wait_is_reported_and_ended_at_max_runnable_time(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], deferrable: bool
) -> None:
    # The parent stays PENDING while its children wait RUNNABLE: the reason and the limit come from them.
    queue = queue_too_small(aws, f"small-array-{deferrable}")
    dag_id = f"stuck_array_{deferrable}"
    result = run_dag(task_dag(dag_id, commands=["true"], job_queue_arn=queue, deferrable=deferrable, array_size=2,
                              allowed_failures=1.0, max_runnable_time=3, wait_until_completion=120,
                              resources={"request": {"cpu": "2", "memory": "4096"}}), capsys)
    assert result.state == "failed"
    assert f"is still RUNNABLE: {REASON} - " in result.output or f"is RUNNABLE: {REASON} - " in result.output
    assert "it stayed RUNNABLE more than 3 s (max_runnable_time); it was terminated." in result.output
    assert "2 of 2 children did not succeed" in result.output
    job = the_job(aws, dag_id, queue)
    assert job["statusReason"].startswith(f"airflow-batch-runner: RUNNABLE for more than 3 s (max_runnable_time): "
                                          f"{REASON}")
