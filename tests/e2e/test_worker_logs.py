"""The worker path's log reading (GetLogEvents on a thread of its own), against the emulator's Logs with
its ingestion delay and quotas: the lines written at the end are read after the delay, and a throttled
or stuck CloudWatch Logs never holds the task past a short final read."""

from __future__ import annotations

import time
from typing import Any

import pytest

from airflow_batch_runner.emulator.testing import control
from airflow_batch_runner.operators.log_follower import FINAL_READ_PATIENCE
from tests.e2e.conftest import AwsWorld, run_dag
from tests.e2e.test_failures import task_dag
from tests.e2e.test_runs import _job, _main_lines


def test_lines_written_just_before_the_end_reach_the_task_log(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    control(aws.url, "logs", {"ingestion_delay": 1.5})  # within the default allowance of 2 s
    dag = task_dag("end_lines", bucket=None, commands=["sleep 1; for i in $(seq 1 30); do echo end-$i; done"])
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-2000:]
    assert [text for _, text in _main_lines(result.output)] == [f"end-{i}" for i in range(1, 31)]
    assert "Could not read the last lines" not in result.output


def test_lines_readable_later_than_the_allowance_reach_the_task_log(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    """CloudWatch Logs lagging 4.5 s behind the 2 s allowance: the final read waits out the lag the
    follower observed on the stream's earlier lines."""
    control(aws.url, "logs", {"ingestion_delay": 4.5})
    dag = task_dag("late_lines", bucket=None,
                   commands=["for i in $(seq 1 80); do echo late-$i; sleep 0.1; done"])
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-2000:]
    assert [text for _, text in _main_lines(result.output)] == [f"late-{i}" for i in range(1, 81)]
    assert "Could not read the last lines" not in result.output


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"logs:GetLogEvents": {"throttle_rate": 1.0}}, id="throttled"),
        pytest.param({"logs:GetLogEvents": {"delay": 30.0}}, id="slow"),
    ],
)
def test_the_task_ends_on_time_whatever_logs_does(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], fault: dict[str, Any]
) -> None:
    control(aws.url, "faults", fault)
    try:
        dag = task_dag("logs_down", bucket=None, commands=["echo hello", "sleep 2"])
        result = run_dag(dag, capsys)
        ended = time.time()
    finally:
        control(aws.url, "faults", {})
    assert result.state == "success", result.output[-2000:]
    assert "Could not read the last lines of job" in result.output
    # The allowance (2 s), the final read's patience, and room for dag.test and a loaded machine.
    assert ended - _job(aws, result)["stoppedAt"] / 1000 <= 2.0 + FINAL_READ_PATIENCE + 6.0
