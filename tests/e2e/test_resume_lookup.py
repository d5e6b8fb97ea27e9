"""Finding an earlier try's job on the queue: only a missing queue means there is none."""

from __future__ import annotations

import pytest

from airflow_batch_runner import resume
from airflow_batch_runner.emulator.testing import control
from airflow_batch_runner.exceptions import ResumeLookupFailed
from airflow_batch_runner.hooks.batch_runner import BatchRunnerHook, ConnectionOverrides
from airflow_batch_runner.job_spec import queue_name_for
from airflow_batch_runner.layout import TaskIdentity
from tests.e2e.conftest import AwsWorld

RETRY = TaskIdentity(dag_id="d", task_id="t", run_id="r", try_number=2)


def _hook(aws: AwsWorld) -> BatchRunnerHook:
    # Tried once: botocore's own retries of a throttled or failing call are not what is tested here.
    return BatchRunnerHook(aws_conn_id=None, region_name="us-east-1", config={"retries": {"total_max_attempts": 1}},
                           overrides=ConnectionOverrides(endpoint_override=aws.url))


def test_a_queue_that_does_not_exist_holds_no_earlier_job(aws: AwsWorld) -> None:
    assert resume.find_existing_job(_hook(aws), None, RETRY, queue_name_for(aws.ec2_ce)) is None


@pytest.mark.parametrize("fault", [
    {"error_rate": 1.0, "error_code": "AccessDeniedException", "error_status": 403},
    {"throttle_rate": 1.0},
    {"error_rate": 1.0, "error_code": "InternalFailure", "error_status": 500},
])
def test_a_failed_listing_fails_the_try_instead_of_submitting_again(aws: AwsWorld, fault: dict[str, object]) -> None:
    hook = _hook(aws)
    queue = hook.ensure_job_queue(queue_name_for(aws.ec2_ce), aws.ec2_ce)
    control(aws.url, "faults", {"batch:ListJobs": fault})
    try:
        with pytest.raises(ResumeLookupFailed, match="ListJobs failed"):
            resume.find_existing_job(hook, None, RETRY, queue)
    finally:
        control(aws.url, "faults", {})
