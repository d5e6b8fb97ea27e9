"""staging: a submission's inputs staged under its bucket path, its outputs found, its inputs deleted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_batch_runner import staging
from airflow_batch_runner.hooks.batch_runner import BatchRunnerHook
from tests.unit.conftest import keys


def test_contents_uris_and_project_files_are_staged_under_inputs(
    hook: BatchRunnerHook, s3: Any, bucket: str, tmp_path: Path
) -> None:
    s3.put_object(Bucket=bucket, Key="elsewhere/source.csv", Body=b"a,b\n")
    script = tmp_path / "run.sh"
    script.write_text("echo hi\n")
    path = f"s3://{bucket}/runs/1/"
    staging.stage_inputs(hook, path, {"data.txt": "hello", "sub/copy.csv": f"s3://{bucket}/elsewhere/source.csv"},
                         {"scripts/run.sh": script})
    assert keys(s3, bucket, "runs/") == ["runs/1/inputs/data.txt", "runs/1/inputs/scripts/run.sh",
                                         "runs/1/inputs/sub/copy.csv"]
    body = {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys(s3, bucket, "runs/")}
    assert list(body.values()) == [b"hello", b"echo hi\n", b"a,b\n"]


def test_an_input_uri_that_does_not_exist_is_named(hook: BatchRunnerHook, bucket: str) -> None:
    with pytest.raises(ValueError, match=r"input_files\['in.txt'\]: s3://.*/missing.txt does not exist"):
        staging.stage_inputs(hook, f"s3://{bucket}/runs/1/", {"in.txt": f"s3://{bucket}/missing.txt"}, {})


def test_a_bucket_that_does_not_exist_is_named(hook: BatchRunnerHook) -> None:
    with pytest.raises(ValueError, match="bucket 'no-such-bucket' does not exist or is not accessible"):
        staging.stage_inputs(hook, "s3://no-such-bucket/runs/1/", {"in.txt": "x"}, {})


def test_outputs_are_named_relative_to_their_dir_and_the_outputs_file_is_noticed(
    hook: BatchRunnerHook, s3: Any, bucket: str
) -> None:
    path = f"s3://{bucket}/runs/1/"
    assert staging.collect_outputs(hook, path) == ({}, False)
    for key in ("work/out.txt", "work/dir/a.csv", "output/report.html", "output/out.txt", "inputs/in.txt"):
        s3.put_object(Bucket=bucket, Key=f"runs/1/{key}", Body=b"x")
    s3.put_object(Bucket=bucket, Key="runs/2/work/other.txt", Body=b"x")  # another submission's
    found, wrote_outputs_file = staging.collect_outputs(hook, path)
    assert found == {
        "out.txt": f"s3://{bucket}/runs/1/work/out.txt",
        "dir/a.csv": f"s3://{bucket}/runs/1/work/dir/a.csv",
        "report.html": f"s3://{bucket}/runs/1/output/report.html",
        # The output dir's file whose name a working-dir file has: by its full path in the container.
        "/airflow-batch/output/out.txt": f"s3://{bucket}/runs/1/output/out.txt",
    }
    assert wrote_outputs_file is False
    s3.put_object(Bucket=bucket, Key="runs/1/outputs.json", Body=b'{"rows": 3}')
    assert staging.collect_outputs(hook, path)[1] is True
    assert staging.read_outputs_file(hook, path, 1024) == '{"rows": 3}'
    assert staging.collect_outputs(hook, None) == ({}, False)


def test_no_outputs_file_reads_as_none(hook: BatchRunnerHook, bucket: str) -> None:
    assert staging.read_outputs_file(hook, f"s3://{bucket}/runs/1/", 1024) is None
    assert staging.read_outputs_file(hook, None, 1024) is None


def test_delete_inputs_removes_this_submissions_inputs_only(hook: BatchRunnerHook, s3: Any, bucket: str) -> None:
    for key in ("runs/1/inputs/a.txt", "runs/1/inputs/sub/b.txt", "runs/1/work/out.txt", "runs/2/inputs/c.txt"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    assert staging.delete_inputs(hook, f"s3://{bucket}/runs/1/") == 2
    assert keys(s3, bucket) == ["runs/1/work/out.txt", "runs/2/inputs/c.txt"]


def test_stale_inputs_of_earlier_tries_go_and_the_kept_submissions_stay(
    hook: BatchRunnerHook, s3: Any, bucket: str
) -> None:
    task = f"s3://{bucket}/dag/run/task/-1/"
    for key in ("dag/run/task/-1/s1/inputs/a.txt", "dag/run/task/-1/s1/work/out.txt",
                "dag/run/task/-1/s2/inputs/b.txt", "dag/run/task/-1/s3/inputs/c.txt",
                "dag/run/other/-1/s1/inputs/d.txt"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    assert staging.delete_stale_inputs(hook, task, keep=f"{task}s3/") == 2
    assert keys(s3, bucket) == ["dag/run/other/-1/s1/inputs/d.txt", "dag/run/task/-1/s1/work/out.txt",
                                "dag/run/task/-1/s3/inputs/c.txt"]
    assert staging.delete_stale_inputs(hook, task, keep=None) == 1
    assert keys(s3, bucket, "dag/run/task/") == ["dag/run/task/-1/s1/work/out.txt"]
