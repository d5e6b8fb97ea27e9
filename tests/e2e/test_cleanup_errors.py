"""A staged-input cleanup that fails never replaces the job's outcome: a failed job's failure, exit codes and
status reach the task (and its callbacks); after a success the outputs stay in the XCom."""

from __future__ import annotations

import pytest

from airflow_batch_runner.emulator.testing import control
from tests.e2e.conftest import AwsWorld, run_dag
from tests.e2e.test_failures import staged_inputs, task_dag

DENIED = {"s3:DeleteObjects": {"error_rate": 1.0, "error_code": "AccessDenied", "error_status": 403}}


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_a_failed_job_fails_with_its_own_outcome_when_the_cleanup_is_denied(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], deferrable: bool
) -> None:
    dag = task_dag(f"cleanup_denied_failed_{deferrable}", input_files={"in.txt": "data"},
                   commands=["cat in.txt", "exit 7"], deferrable=deferrable)
    control(aws.url, "faults", DENIED)
    try:
        result = run_dag(dag, capsys)
    finally:
        control(aws.url, "faults", {})
    assert result.state == "failed"
    failure = result.output.split("BatchJobFailed", 1)[1]
    assert "exit code 7" in failure
    assert "AccessDenied" not in failure.split("Could not delete the staged inputs", 1)[0]
    assert "Could not delete the staged inputs under s3://" in result.output
    assert staged_inputs(aws)  # left, as the warning says


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_a_succeeded_job_keeps_its_outputs_when_the_cleanup_is_denied(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], deferrable: bool
) -> None:
    dag = task_dag(f"cleanup_denied_ok_{deferrable}", input_files={"in.txt": "data"}, output_files=["out.txt"],
                   commands=["cp in.txt out.txt"], deferrable=deferrable)
    control(aws.url, "faults", DENIED)
    try:
        result = run_dag(dag, capsys)
    finally:
        control(aws.url, "faults", {})
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    assert aws.read(result.xcom["output_files"]["out.txt"]) == "data"
    assert "Could not delete the staged inputs under s3://" in result.output
    assert "AccessDenied" in result.output.split("Could not delete the staged inputs", 1)[1]
