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


RESULT_COMMANDS = [
    """echo '::{"outputs": {"rows": 3, "table": "t"}}::'""",
    """echo '::{"metrics": [{"name": "rows", "type": "counter", "value": 3, "tags": {"table": "t"}}]}::'""",
    # A value too big for a line, through the file.
    """printf '{"outputs": {"report": "%s"}}' "$(head -c 40000 /dev/zero | tr '\\0' r)" > "$OUTPUTS_FILE" """,
    """echo '::{"outputs": {"rows": 4}}::'""",
]


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_result_lines_and_the_outputs_file_become_outputs_and_metrics(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], deferrable: bool
) -> None:
    dag = task_dag(f"results_{deferrable}", deferrable=deferrable, commands=RESULT_COMMANDS)
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-2000:]
    assert result.xcom is not None
    assert result.xcom["outputs"] == {"rows": 4, "table": "t", "report": "r" * 40000}
    assert result.xcom["metrics"] == [{"name": "rows", "type": "counter", "value": 3, "tags": {"table": "t"}}]
    assert "outputs.json" not in result.xcom["output_files"]


def test_without_results_the_xcom_has_empty_outputs_and_metrics(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_dag(task_dag("no_results", bucket=None, commands=["echo plain"]), capsys)
    assert result.state == "success", result.output[-2000:]
    assert result.xcom is not None
    assert (result.xcom["outputs"], result.xcom["metrics"]) == ({}, [])


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_a_malformed_result_line_fails_the_task_showing_the_line(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], deferrable: bool
) -> None:
    dag = task_dag(f"bad_line_{deferrable}", deferrable=deferrable, bucket=None,
                   commands=["""echo '::{"outputs": {"rows": 3}'"""])
    result = run_dag(dag, capsys)
    assert result.state == "failed"
    assert "MalformedResults" in result.output
    assert ('SUCCEEDED, but the main container printed a malformed result line: a result line ends with }::. '
            'The line: ::{"outputs": {"rows": 3}') in result.output


def test_a_malformed_outputs_file_fails_the_task_showing_its_content(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = task_dag("bad_file", commands=["""echo '{"outputs": 1}' > "$OUTPUTS_FILE" """])
    result = run_dag(dag, capsys)
    assert result.state == "failed"
    assert ('$OUTPUTS_FILE (outputs.json) is malformed: "outputs" must be an object; got int. '
            'Its content: {"outputs": 1}') in result.output


def test_the_example_reports_the_containers_value_and_the_jobs_use(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.e2e.conftest import load_dag

    result = run_dag(load_dag("results_and_retries"), capsys, conf={"rows": 5}, task_id="report")
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    assert (result.xcom["rows"], result.xcom["attempts"]) == (5, 1)
    assert result.xcom["metrics"] == [{"name": "rows", "type": "counter", "value": 5, "tags": {}}]
    assert result.xcom["vcpu_seconds"] > 0
