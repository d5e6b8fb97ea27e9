"""Spot interruptions are retried in AWS, real failures are not; the XCom and the error tell each attempt."""

from __future__ import annotations

import pytest

from airflow_batch_runner.emulator.testing import control
from tests.e2e.conftest import AwsWorld, run_dag
from tests.e2e.test_failures import task_dag

HOST_GONE = "Host EC2 (instance i-0123456789abcdef0) terminated."
FARGATE_SPOT = "Your Spot Task was interrupted."


def interrupt_first_attempt(aws: AwsWorld, dag_id: str, reason: str, attempts: int = 1) -> None:
    control(aws.url, "interruptions", {"rules": [
        {"jobName": f"{dag_id}-shell-*", "statusReason": reason, "attempts": attempts, "afterSeconds": 0.5}]})


@pytest.mark.parametrize(("reason", "deferrable"), [(HOST_GONE, False), (FARGATE_SPOT, True)],
                         ids=["ec2-worker", "fargate-deferred"])
def test_a_spot_interruption_is_retried_and_the_xcom_tells_each_attempt(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], reason: str, deferrable: bool
) -> None:
    dag_id = f"spot_retried_{deferrable}"
    interrupt_first_attempt(aws, dag_id, reason)
    dag = task_dag(dag_id, deferrable=deferrable, spot_retries=2, output_files=["out.txt"],
                   commands=["sleep 2", "echo attempt $AWS_BATCH_JOB_ATTEMPT > out.txt"])
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    xcom = result.xcom
    assert xcom is not None
    assert xcom["attempts"] == 2
    first, second = xcom["attempt_details"]
    assert (first["status_reason"], first["exit_code"]) == (reason, None)
    assert (second["status_reason"], second["exit_code"]) == ("Essential container in task exited", 0)
    assert aws.read(xcom["output_files"]["out.txt"]) == "attempt 2\n"  # the files are the last attempt's
    job = aws.client("batch").describe_jobs(jobs=[xcom["job_id"]])["jobs"][0]
    assert job["retryStrategy"]["attempts"] == 3


def test_a_real_failure_is_not_retried(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_dag(task_dag("spot_real_failure", bucket=None, spot_retries=2, commands=["exit 3"]), capsys)
    assert result.state == "failed"
    assert "Attempts: 1.\n  #1: main container exit code 3" in result.output


def test_an_interruption_past_the_spot_retries_fails_with_every_attempt_in_the_error(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    interrupt_first_attempt(aws, "spot_exhausted", HOST_GONE, attempts=2)
    result = run_dag(task_dag("spot_exhausted", bucket=None, spot_retries=1, commands=["sleep 5"]), capsys)
    assert result.state == "failed"
    assert f"Status reason: {HOST_GONE}" in result.output
    assert (f"Attempts: 2.\n  #1: main container exit code none; status reason: {HOST_GONE}\n"
            f"  #2: main container exit code none; status reason: {HOST_GONE}") in result.output


def test_without_spot_retries_an_interruption_fails_the_task(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    interrupt_first_attempt(aws, "spot_none", HOST_GONE)
    result = run_dag(task_dag("spot_none", bucket=None, commands=["sleep 5"]), capsys)
    assert result.state == "failed"
    assert f"Attempts: 1.\n  #1: main container exit code none; status reason: {HOST_GONE}" in result.output


def test_a_retry_strategy_of_ones_own_passes_through(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    strategy = {"attempts": 2, "evaluateOnExit": [{"onExitCode": "3", "action": "RETRY"},
                                                  {"onReason": "*", "action": "EXIT"}]}
    result = run_dag(task_dag("own_strategy", bucket=None, retry_strategy=strategy, commands=["exit 3"]), capsys)
    assert result.state == "failed"
    assert "Attempts: 2." in result.output


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_the_results_are_the_last_attempts_not_the_interrupted_ones(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], deferrable: bool
) -> None:
    dag_id = f"spot_results_{deferrable}"
    # Time for the first attempt's lines to be read before the reclaim ends it (on a loaded machine they may
    # not be: then the XCom is right without proving anything; tests/unit/test_task_log.py covers that case).
    control(aws.url, "interruptions", {"rules": [
        {"jobName": f"{dag_id}-shell-*", "statusReason": HOST_GONE, "attempts": 1, "afterSeconds": 5}]})
    commands = [
        """if [ "$AWS_BATCH_JOB_ATTEMPT" = 1 ]; then echo '::{"outputs": {"first_only": true}}::'; fi""",
        """echo "::{\\"outputs\\": {\\"attempt\\": $AWS_BATCH_JOB_ATTEMPT}}::" """,
        """echo '::{"metrics": [{"name": "rows", "value": 5}]}::'""",
        """if [ "$AWS_BATCH_JOB_ATTEMPT" = 1 ]; then sleep 30; fi""",
    ]
    result = run_dag(task_dag(dag_id, deferrable=deferrable, bucket=None, spot_retries=1, commands=commands), capsys)
    assert result.state == "success", result.output[-3000:]
    if '[main] ::{"outputs": {"first_only": true}}::' in result.output:  # read from the first attempt
        assert "A new attempt of the job logs to" in result.output
    assert result.xcom is not None
    assert result.xcom["attempts"] == 2
    assert result.xcom["outputs"] == {"attempt": 2}
    assert result.xcom["metrics"] == [{"name": "rows", "type": "counter", "value": 5, "tags": {}}]
