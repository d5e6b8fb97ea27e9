"""The deferrable path: the triggerer waits, through the shared poller, and finishes as the worker would."""

from __future__ import annotations

import pytest

from airflow_batch_runner.emulator.testing import control
from airflow_batch_runner.triggers.log_marker import MARKER_KEY
from tests.e2e.conftest import AwsWorld, load_dag, run_dag, xcom_value
from tests.e2e.test_failures import task_dag, the_job


def test_deferred_reference_example_returns_the_same_xcom(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")  # read when the task is built
    result = run_dag(load_dag("container_with_input_files"), capsys, conf={"file": "deferred\n"})
    assert result.state == "success", result.output[-3000:]
    logs_calls = control(aws.url, "stats")["calls"]["logs"]
    assert logs_calls.get("FilterLogEvents", 0) > 0  # the triggerer's shared poller waited
    assert logs_calls.get("GetLogEvents", 0) == 0  # the worker never polled
    assert result.xcom is not None
    assert result.xcom["status"] == "SUCCEEDED"
    assert aws.read(result.xcom["output_files"]["out.txt"]) == "deferred\n"
    assert [k for k in aws.object_keys() if "/inputs/" in k] == []


def test_deferred_job_logs_reach_the_task_log_in_order(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    dag = task_dag("deferred_logs", deferrable=True, bucket=None,
                   commands=["for i in $(seq 1 30); do echo deferred-line-$i; sleep 0.03; done"])
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    seen = [line.split("[main] ", 1)[1].split()[0] for line in result.output.splitlines()
            if "[main] deferred-line-" in line]
    assert seen == [f"deferred-line-{i}" for i in range(1, 31)]
    # The worker's note for a revived trigger (triggers.log_marker) is gone once the task resumed.
    assert xcom_value("deferred_logs", result.run_id, "shell", key=MARKER_KEY) is None


def test_deferred_failure_carries_the_same_codes(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    dag = task_dag("deferred_fails", deferrable=True, bucket=None, commands=["echo bad; exit 3"])
    result = run_dag(dag, capsys)
    assert result.state == "failed"
    assert "Exit code 1 (status FAILED)" in result.output
    assert "Main container exit code: 3" in result.output


def test_job_that_never_leaves_runnable_is_terminated_at_the_deadline_with_code_3(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = aws.queue_where_jobs_never_start("stuck")
    dag = task_dag("stuck_runnable", deferrable=True, bucket=None, job_queue_arn=queue,
                   commands=["echo never"], wait_until_completion=3)
    result = run_dag(dag, capsys)
    assert result.state == "failed"
    assert "Exit code 3 (status RUNNABLE)" in result.output
    job = the_job(aws, "stuck_runnable", queue)
    assert job["status"] == "FAILED"
    assert "limit of 3 s passed" in job["statusReason"]


def test_throttling_at_half_the_calls_never_fails_a_deferred_task(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    control(aws.url, "faults", {
        "batch:DescribeJobs": {"throttle_rate": 0.5},
        "batch:SubmitJob": {"throttle_rate": 0.5},
        "logs:FilterLogEvents": {"throttle_rate": 0.5},
        "logs:GetLogEvents": {"throttle_rate": 0.5},
    })
    try:
        dag = task_dag("throttled", deferrable=True, input_files={"in.txt": "t"}, output_files=["out.txt"],
                       commands=["cp in.txt out.txt", "echo throttled-but-fine"])
        result = run_dag(dag, capsys)
    finally:
        control(aws.url, "faults", {})
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    assert aws.read(result.xcom["output_files"]["out.txt"]) == "t"
    assert control(aws.url, "stats")["injected"], "no fault was injected"
