"""One task, one AWS Batch array job: each child's files, the success rule, the manifest, the XCom."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_batch_runner.child_sampling import QUICK_LOOKS, SAMPLE_PERIOD
from tests.e2e.conftest import AwsWorld, dags_folder, link_data, load_dag, run_dag, xcom_value
from tests.e2e.test_failures import staged_inputs, task_dag, the_job
from tests.e2e.test_resume import FIRST_TRY, RETRY, _jobs, _start

# Each child copies the shared file and its own into its outputs, naming its index.
COPY = 'cat shared.txt own.txt > out.txt; echo "child $AWS_BATCH_JOB_ARRAY_INDEX of $AWS_BATCH_JOB_ARRAY_SIZE"'


def array_dag(name: str, size: int, **kwargs: Any) -> Any:
    args: dict[str, Any] = {
        "input_files": {"shared.txt": "shared\n"},
        "array_input_files": [{"own.txt": f"own-{i}\n"} for i in range(size)],
        "output_files": ["out.txt"],
        "commands": [COPY],
        **kwargs,
    }
    return task_dag(name, **args)


def parent_job(aws: AwsWorld, job_id: str) -> dict[str, Any]:
    return dict(aws.client("batch").describe_jobs(jobs=[job_id])["jobs"][0])


def manifest(aws: AwsWorld, xcom: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(aws.read(xcom["manifest"])))


def test_each_child_gets_shared_and_own_inputs_and_returns_its_outputs(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_dag(array_dag("array_two", 2), capsys)
    assert result.state == "success", result.output[-3000:]
    xcom = result.xcom
    assert xcom is not None
    assert (xcom["array_size"], xcom["succeeded"], xcom["failed"], xcom["failed_indexes"]) == (2, 2, 0, [])
    assert xcom["counts"] == {"SUCCEEDED": 2}
    for index in (0, 1):
        uri = xcom["children"][str(index)]["output_files"]["out.txt"]
        assert uri.startswith(f"{xcom['bucket_path']}children/{index}/")
        assert aws.read(uri) == f"shared\nown-{index}\n"
    document = manifest(aws, xcom)
    assert [c["index"] for c in document["children"]] == [0, 1]
    assert all(c["exit_code"] == 0 and c["started_at"] and c["stopped_at"] for c in document["children"])
    assert document["children"][1]["output_files"] == xcom["children"]["1"]["output_files"]
    assert parent_job(aws, xcom["job_id"])["arrayProperties"]["size"] == 2
    assert staged_inputs(aws) == []  # delete: the shared and every child's staged inputs


def test_each_childs_outputs_file_is_in_the_manifest_masked_and_never_in_the_xcom(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_ABR_CHILD_SECRET", "child-s3cret-value")
    dag = task_dag("array_results", array_size=3, env={"SECRET": "{{ var.value.abr_child_secret }}"}, commands=[
        'i=$AWS_BATCH_JOB_ARRAY_INDEX',
        'case $i in'
        ' 0) printf \'{"outputs": {"rows": 10, "token": "%s"}, "metrics": [{"name": "n", "value": 1}]}\' '
        '"$SECRET" > "$OUTPUTS_FILE";;'
        ' 1) echo "{not json" > "$OUTPUTS_FILE";;'
        ' esac',
        'echo \'::{"outputs": {"from_a_line": 1}}::\'',
    ])
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    xcom = result.xcom
    assert xcom is not None
    assert "rows" not in str(xcom) and "from_a_line" not in str(xcom)  # never all the children's in the XCom
    children = {c["index"]: c for c in manifest(aws, xcom)["children"]}
    assert children[0]["outputs"] == {"rows": 10, "token": "***"}
    assert [m["name"] for m in children[0]["metrics"]] == ["n"] and children[0]["results_error"] is None
    assert children[1]["outputs"] == {} and "is malformed" in children[1]["results_error"]
    assert children[2]["outputs"] == {} and children[2]["results_error"] is None  # wrote none
    assert "1 of the children wrote a $OUTPUTS_FILE that could not be read (children 1)" in result.output
    assert "child-s3cret-value" not in aws.read(xcom["manifest"])


def test_size_without_files_runs_children_that_read_their_index(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = task_dag("array_size", array_size="{{ params.get('n', 3) }}", output_files=["i.txt"],
                   commands=['echo "$AWS_BATCH_JOB_ARRAY_INDEX" > i.txt'])
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None and result.xcom["array_size"] == 3
    assert [aws.read(result.xcom["children"][str(i)]["output_files"]["i.txt"]) for i in range(3)] == [
        "0\n", "1\n", "2\n"]


def test_allowed_failures_lets_the_task_succeed_and_logs_the_failed_children(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = array_dag("array_allowed", 4, allowed_failures=0.25,
                    commands=['[ "$AWS_BATCH_JOB_ARRAY_INDEX" != 2 ] || { echo "bad item 2"; exit 7; }', COPY])
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    xcom = result.xcom
    assert xcom is not None
    assert (xcom["succeeded"], xcom["failed"], xcom["failed_indexes"], xcom["allowed_failures"]) == (3, 1, [2], 1)
    assert xcom["children"]["2"] == {"status": "FAILED", "exit_code": 7, "output_files": {}}
    assert "Child 2: FAILED, main container exit code 7" in result.output
    assert "[2] bad item 2" in result.output


def test_bad_array_arguments_fail_before_anything_is_created(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    before = aws.calls()
    result = run_dag(array_dag("array_bad", 2, array_size=3), capsys)
    assert result.state == "failed"
    assert "array_size (3) and the length of array_input_files (2) differ" in result.output
    assert aws.calls().get("SubmitJob", 0) == before.get("SubmitJob", 0)
    with pytest.raises(ValueError, match="array job"):
        task_dag("array_nobucket", bucket=None, array_size=2, commands=["true"])



THOUSAND = 1000
# The 1,000-children runs show our own paging and batching at scale, which no Airflow version changes: the floor run
# (make test-floor) leaves them out (marker "scale") and keeps the 2-children runs of the same Airflow surfaces. They
# run where our side grows with the children: the deferred and the worker's waits (sampling running children, the
# parent polled alone), the outcome, the manifest and the outputs of 1,000 children. A deadline, a kill and a retry's
# reattachment are one call about the parent whatever its size (TerminateJob, DescribeJobs), and what follows is the
# same collection of every child's end: they run with 2 children only.
SIZES = [2, pytest.param(THOUSAND, marks=pytest.mark.scale)]
PAIR = 2
# Children that fail in the allowed-failures cases: 1 of 2, 101 of 1,000.
FAILING = 'case "$AWS_BATCH_JOB_ARRAY_INDEX" in *7|1) echo "bad item $AWS_BATCH_JOB_ARRAY_INDEX"; exit 5;; esac'


def calls_during(aws: AwsWorld, before: dict[str, int], service: str = "batch") -> dict[str, int]:
    """The emulator's calls to one service since ``before`` (its counts then), by operation."""
    after = aws.calls(service)
    return {op: after.get(op, 0) - before.get(op, 0) for op in after if after.get(op, 0) != before.get(op, 0)}


@pytest.mark.parametrize("size", SIZES)
def test_children_succeed_within_allowed_failures_deferred(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], size: int
) -> None:
    failing = {i for i in range(size) if str(i).endswith("7") or i == 1}  # FAILING's pattern
    allowed = len(failing)
    dag = array_dag(f"array_deferred_{size}", size, deferrable=True, allowed_failures=allowed,
                    completion_check_interval=1.0 if size > 2 else 0.2, commands=[FAILING, COPY])
    before = aws.calls()
    started = time.monotonic()
    result = run_dag(dag, capsys)
    elapsed = time.monotonic() - started
    assert result.state == "success", result.output[-3000:]
    xcom = result.xcom
    assert xcom is not None
    assert (xcom["succeeded"], xcom["failed"], xcom["failed_indexes"]) == (size - allowed, allowed, sorted(failing))
    assert ("children" in xcom) == (size <= 100)
    document = manifest(aws, xcom)
    by_index = {c["index"]: c for c in document["children"]}
    assert len(by_index) == size
    for index in sorted(failing)[:3]:
        assert (by_index[index]["status"], by_index[index]["exit_code"], by_index[index]["output_files"]) == (
            "FAILED", 5, {})
    for index in [i for i in range(size) if i not in failing][:: max(1, size // 10)]:
        assert aws.read(by_index[index]["output_files"]["out.txt"]) == f"shared\nown-{index}\n"
    first = sorted(failing)[0]
    assert f"Child {first}: FAILED, main container exit code 5" in result.output
    assert f"[{first}] bad item {first}" in result.output
    calls = calls_during(aws, before)
    # One SubmitJob (two on a fresh account), the parent alone polled, the children listed once at the end
    # (SUCCEEDED, FAILED), and the samplings of running children for their lines (one ListJobs each: the
    # first, a few quick looks, then one per period).
    samplings = 1 + QUICK_LOOKS + elapsed / SAMPLE_PERIOD
    assert calls.get("SubmitJob", 0) <= 2 and calls.get("ListJobs", 0) <= 2 + samplings, (calls, elapsed)
    assert calls.get("DescribeJobs", 0) <= 200, calls
    assert staged_inputs(aws) == []


@pytest.mark.parametrize("size", SIZES)
def test_every_child_failing_fails_the_task_and_says_so(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], size: int
) -> None:
    dag = array_dag(f"array_all_failed_{size}", size, completion_check_interval=1.0,
                    commands=['echo "broken $AWS_BATCH_JOB_ARRAY_INDEX"; exit 3'])
    result = run_dag(dag, capsys)
    assert result.state == "failed"
    assert f"{size} of {size} children did not succeed (0 succeeded; allowed failures 0)" in result.output
    assert "Child 1: FAILED, main container exit code 3" in result.output and "[1] broken 1" in result.output
    prefix = [line for line in result.output.splitlines() if "Manifest: s3://" in line]
    assert prefix, result.output[-3000:]
    document = json.loads(aws.read(prefix[0].split("Manifest: ", 1)[1].strip()))
    assert document["counts"] == {"FAILED": size}
    assert {c["exit_code"] for c in document["children"]} == {3}
    assert staged_inputs(aws) == []


def test_the_deadline_terminates_the_parent_and_every_child(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    size = PAIR
    seconds = 8
    dag = array_dag(f"array_deadline_{size}", size, commands=["sleep 300"], wait_until_completion=seconds,
                    completion_check_interval=1.0)
    result = run_dag(dag, capsys)
    assert result.state == "failed"
    assert f"did not finish within {seconds} s; it was terminated" in result.output
    assert f"{size} of {size} children did not succeed" in result.output
    # The children stop (SIGTERM, then SIGKILL after a grace period); the parent ends once they all have.
    parent = _wait_until(lambda: (lambda j: j if j["status"] == "FAILED" else None)(
        the_job(aws, f"array_deadline_{size}")), 120)
    assert f"limit of {seconds} s passed" in parent["statusReason"]
    assert parent["arrayProperties"]["statusSummary"]["FAILED"] == size


def test_killing_the_task_ends_every_child(aws: AwsWorld) -> None:
    size = PAIR
    name = f"array_killed_{size}"
    array_dag(name, size, commands=["sleep 300"], completion_check_interval=60)
    proc = subprocess.Popen([sys.executable, "-m", "airflow", "dags", "test", name], env=os.environ.copy(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        parent = _wait_for_children_running(aws, name, timeout=240)
        os.killpg(proc.pid, signal.SIGTERM)
        parent = _wait_until(lambda: (lambda j: j if j["status"] == "FAILED" else None)(
            parent_job(aws, parent["jobId"])), 120)
        assert "task was killed" in parent["statusReason"]
        assert parent["arrayProperties"]["statusSummary"]["FAILED"] == size
        _wait_until(lambda: staged_inputs(aws) == [], 30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        (dags_folder() / f"{name}.py").unlink(missing_ok=True)


def test_a_killed_array_task_fails_whatever_failures_are_allowed(aws: AwsWorld) -> None:
    # Airflow's SIGTERM handler runs on_kill and lets the task go on: its next poll sees the array FAILED
    # with one child succeeded and one terminated, which allowed_failures=1.0 tolerates, yet a kill is a kill.
    name = "array_killed_allowed"
    array_dag(name, 2, allowed_failures=1.0, completion_check_interval=0.3,
              commands=[COPY, '[ "$AWS_BATCH_JOB_ARRAY_INDEX" = 0 ] || sleep 300'])
    proc = _start(name, FIRST_TRY)
    try:
        def one_done_one_running() -> dict[str, Any] | None:
            for summary in _jobs(aws, name):
                counts = parent_job(aws, summary["jobId"]).get("arrayProperties", {}).get("statusSummary", {})
                if counts.get("SUCCEEDED") == 1 and counts.get("RUNNING") == 1:
                    return summary
            return None

        _wait_until(one_done_one_running, 240)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = session.query(TaskInstance).filter_by(dag_id=name, task_id="shell").one()
        assert ti.state == "failed"
    assert xcom_value(name, xcom_runs(name)[0], "shell") is None


def test_a_retry_after_a_worker_crash_mid_array_reattaches_to_the_parent(aws: AwsWorld) -> None:
    size = PAIR
    name = f"array_resume_{size}"
    array_dag(name, size, commands=["sleep 5", COPY], completion_check_interval=1.0)
    first = _start(name, FIRST_TRY)
    try:
        parent = _wait_for_children_running(aws, name, timeout=240)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        retry = _start(name, RETRY)
        assert retry.wait(timeout=600) == 0
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    assert [job["jobId"] for job in _jobs(aws, name)] == [parent["jobId"]]  # exactly one array job ran
    runs = xcom_runs(name)
    xcom = xcom_value(name, runs[0], "shell")
    assert xcom is not None and xcom["job_id"] == parent["jobId"] and xcom["succeeded"] == size
    document = manifest(aws, xcom)
    assert aws.read(document["children"][-1]["output_files"]["out.txt"]) == f"shared\nown-{size - 1}\n"
    assert staged_inputs(aws) == []


def xcom_runs(dag_id: str) -> list[str]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return [run.run_id for run in session.query(DagRun).filter(DagRun.dag_id == dag_id)]


def _wait_until(condition: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"not within {timeout} s")


def _wait_for_children_running(aws: AwsWorld, name: str, timeout: float) -> dict[str, Any]:
    """The array parent once every child of it runs."""

    def running() -> dict[str, Any] | None:
        for summary in _jobs(aws, name):
            parent = parent_job(aws, summary["jobId"])
            summary_counts = parent.get("arrayProperties", {}).get("statusSummary", {})
            if summary_counts.get("RUNNING", 0) == parent["arrayProperties"]["size"]:
                return parent
        return None

    found: dict[str, Any] = _wait_until(running, timeout)
    return found




def test_the_example_dag_fans_out_to_the_children_its_form_asks_for(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = load_dag("array_fan_out")
    result = run_dag(dag, capsys, conf={"children": 4}, task_id="summarise")
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None and result.xcom["succeeded"] == 4
    assert aws.read(result.xcom["first"]) == "child 0 of 4: item 0\n"
    fan_out = xcom_value("array_fan_out", result.run_id, "fan_out")
    assert fan_out is not None and fan_out["array_size"] == 4 and fan_out["counts"] == {"SUCCEEDED": 4}
    links = link_data("array_fan_out", result.run_id, "fan_out")
    assert links["batch_job_details"]["job_id"] == fan_out["job_id"]  # the parent's console page
