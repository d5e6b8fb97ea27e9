"""One task, one AWS Batch array job: each child's files, the success rule, the manifest, the XCom."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.conftest import AwsWorld, run_dag
from tests.e2e.test_failures import staged_inputs, task_dag

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


def test_one_submit_and_describe_of_the_parent_only(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    before = aws.calls()
    result = run_dag(array_dag("array_calls", 3), capsys)
    assert result.state == "success", result.output[-3000:]
    after = aws.calls()
    calls = {op: after.get(op, 0) - before.get(op, 0) for op in after}
    assert calls.get("SubmitJob") == 2 or calls.get("SubmitJob") == 1  # 2 on the first run: the definition
    # The children are read once at the end by ListJobs(arrayJobId), one call per final status.
    assert calls.get("ListJobs", 0) <= 2 + 1


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


def test_more_failures_than_allowed_fail_the_task_naming_each_child(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = array_dag("array_failed", 2, commands=['echo "broken $AWS_BATCH_JOB_ARRAY_INDEX"; exit 3'])
    result = run_dag(dag, capsys)
    assert result.state == "failed"
    assert "2 of 2 children did not succeed (0 succeeded; allowed failures 0)" in result.output
    assert "Failed indexes: 0, 1." in result.output
    assert "Child 1: FAILED, main container exit code 3" in result.output
    assert "[1] broken 1" in result.output
    assert staged_inputs(aws) == []


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
