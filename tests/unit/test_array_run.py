"""array_run: an array job's per-child inputs staged, its children read once at the end, its manifest written and
read back, on the emulator."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from airflow_batch_runner import array_run
from airflow_batch_runner.array_outcome import judge
from airflow_batch_runner.array_spec import ArraySpec
from airflow_batch_runner.emulator.testing import control
from airflow_batch_runner.hooks.batch_runner import BatchRunnerHook
from tests.emulator import helpers
from tests.unit.conftest import keys


@pytest.fixture
def batch(emulator_url: str) -> Any:
    return helpers.client(emulator_url, "batch")


def test_each_childs_inputs_are_staged_under_its_index(hook: BatchRunnerHook, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src/b.csv", Body=b"b")
    array = ArraySpec(size=2, child_inputs=({"a.txt": "content a"}, {"b.csv": f"s3://{bucket}/src/b.csv"}))
    assert array_run.stage_child_inputs(hook, f"s3://{bucket}/run/", array) == 2
    assert keys(s3, bucket, "run/") == ["run/children/0/inputs/a.txt", "run/children/1/inputs/b.csv"]
    assert s3.get_object(Bucket=bucket, Key="run/children/1/inputs/b.csv")["Body"].read() == b"b"


def test_a_missing_child_input_and_a_missing_bucket_are_named(hook: BatchRunnerHook, bucket: str) -> None:
    array = ArraySpec(size=2, child_inputs=({}, {"b.csv": f"s3://{bucket}/missing.csv"}))
    with pytest.raises(ValueError, match=r"array_input_files\[1\]\['b.csv'\]: s3://.*/missing.csv does not exist"):
        array_run.stage_child_inputs(hook, f"s3://{bucket}/run/", array)
    with pytest.raises(ValueError, match="bucket 'no-such-bucket' does not exist"):
        array_run.stage_child_inputs(hook, "s3://no-such-bucket/run/", ArraySpec(size=2, child_inputs=({"a": "x"}, {})))


def test_delete_inputs_removes_the_shared_and_every_childs_inputs_only(
    hook: BatchRunnerHook, s3: Any, bucket: str
) -> None:
    kept = ["run/children/0/work/out.txt", "run/children/1/outputs.json", "run/manifest.json", "other/inputs/x"]
    gone = ["run/inputs/shared.txt", "run/children/0/inputs/a.txt", "run/children/12/inputs/sub/b.txt"]
    for key in kept + gone:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    assert array_run.delete_inputs(hook, f"s3://{bucket}/run/") == 3
    assert keys(s3, bucket) == sorted(kept)


def test_why_the_children_wait_and_a_failed_look_is_none(
    hook: BatchRunnerHook, batch: Any, emulator_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    queue = helpers.create_queue(batch, helpers.create_compute_environment(batch, state="DISABLED"))
    parent = helpers.submit(batch, queue, helpers.register_container(batch, ["true"])["jobDefinitionArn"],
                            arrayProperties={"size": 2})
    reason = helpers.wait_until(lambda: array_run.waiting_reason(hook, parent))
    assert reason.startswith("UNDETERMINED - no compute environment")
    control(emulator_url, "faults", {"batch:ListJobs": {"error_rate": 1.0, "error_code": "AccessDeniedException",
                                                        "error_status": 403}})
    try:
        with caplog.at_level(logging.WARNING, logger=array_run.__name__):
            assert array_run.waiting_reason(hook, parent) is None
    finally:
        control(emulator_url, "faults", {})
    assert f"Could not read why the children of array job {parent} wait" in caplog.text


def test_the_children_are_read_at_the_end_with_codes_lines_outputs_and_results(
    hook: BatchRunnerHook, batch: Any, s3: Any, bucket: str, emulator_url: str
) -> None:
    queue = helpers.create_queue_for(batch)
    main = helpers.container("main", ["sh", "-c", 'i=$AWS_BATCH_JOB_ARRAY_INDEX; echo "child $i"; exit $i'])
    parent = helpers.submit(batch, queue, helpers.register_ecs(batch, [main])["jobDefinitionArn"],
                            arrayProperties={"size": 3})
    assert helpers.wait_for_status(batch, parent)["status"] == "FAILED"
    helpers.wait_ingested(helpers.client(emulator_url, "logs"))
    path = f"s3://{bucket}/run/"
    s3.put_object(Bucket=bucket, Key="run/children/0/work/out.txt", Body=b"x")
    s3.put_object(Bucket=bucket, Key="run/children/0/outputs.json", Body=b'{"outputs": {"rows": 3}}')
    s3.put_object(Bucket=bucket, Key="run/children/2/outputs.json", Body=b"not json")

    children, result, last_lines = array_run.read_children(hook, parent, path, ArraySpec(size=3, allowed_failures=1),
                                                           None)
    assert [(c.index, c.status, c.exit_code) for c in children] == [(0, "SUCCEEDED", 0), (1, "FAILED", 1),
                                                                     (2, "FAILED", 2)]
    assert (result.succeeded, [c.index for c in result.failed], result.ok) == (1, [1, 2], False)
    assert last_lines == {1: ["child 1"], 2: ["child 2"]}
    assert children[0].output_files == {"out.txt": f"s3://{bucket}/run/children/0/work/out.txt"}
    assert children[0].outputs == {"rows": 3} and children[0].results_error is None
    assert children[2].results_error and children[1].results_error is None

    uri = array_run.write_manifest(hook, parent, path, result, children)
    assert uri == f"{path}manifest.json"
    succeeded = array_run.read_manifest({"manifest": uri}, hook=hook)
    assert [(c["index"], c["output_files"]) for c in succeeded] == [(0, children[0].output_files)]
    assert [c["exit_code"] for c in array_run.read_manifest({"manifest": uri}, status=None, hook=hook)] == [0, 1, 2]


def test_without_a_bucket_path_there_is_no_manifest(hook: BatchRunnerHook, bucket: str) -> None:
    result = judge(ArraySpec(size=2), [])
    assert array_run.write_manifest(hook, "job", None, result, []) is None
    with pytest.raises(ValueError, match="needs the XCom of an array task"):
        array_run.read_manifest({"job_id": "job"}, hook=hook)
    with pytest.raises(ValueError, match=r"the manifest s3://.*/gone/manifest\.json does not exist"):
        array_run.read_manifest({"manifest": f"s3://{bucket}/gone/manifest.json"}, hook=hook)
