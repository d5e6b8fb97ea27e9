"""What the XCom tells beyond the files: timings, attempts and resource-seconds, on both waiting paths."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import AwsWorld, run_dag
from tests.e2e.test_failures import task_dag


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_timings_and_resource_seconds_match_the_jobs_own_timestamps(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], deferrable: bool
) -> None:
    dag = task_dag(f"timings_{deferrable}", deferrable=deferrable, commands=["sleep 1"],
                   resources={"request": {"cpu": "2", "memory": "4096"}})
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-2000:]
    xcom = result.xcom
    assert xcom is not None
    job = aws.client("batch").describe_jobs(jobs=[xcom["job_id"]])["jobs"][0]
    assert xcom["queued_seconds"] == pytest.approx((job["startedAt"] - job["createdAt"]) / 1000, abs=0.001)
    assert xcom["running_seconds"] == pytest.approx((job["stoppedAt"] - job["startedAt"]) / 1000, abs=0.001)
    assert xcom["running_seconds"] >= 1.0  # the command slept that long
    (attempt,) = job["attempts"]
    ran = (attempt["stoppedAt"] - attempt["startedAt"]) / 1000
    assert xcom["attempts"] == 1
    assert xcom["attempt_details"] == [{"status_reason": attempt["statusReason"], "exit_code": 0,
                                        "container_reason": None, "seconds": pytest.approx(ran, abs=0.001)}]
    # The whole task: main and the outputs sidecar together ask for what `resources` says.
    assert (xcom["vcpus"], xcom["memory_mib"]) == (2.0, 4096)
    assert xcom["vcpu_seconds"] == pytest.approx(ran * 2, abs=0.01)
    assert xcom["gib_seconds"] == pytest.approx(ran * 4, abs=0.01)


def test_a_failure_reports_each_attempt(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_dag(task_dag("attempts_failed", bucket=None, commands=["exit 7"]), capsys)
    assert result.state == "failed"
    assert "Attempts: 1.\n  #1: main container exit code 7; status reason: Essential container in task exited" \
        in result.output
