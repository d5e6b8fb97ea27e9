"""What a job reads and writes in OpenLineage's terms, the container's lineage identity, and the asset events of a
succeeded job's XCom: pure functions of what the task knows."""

from __future__ import annotations

import json

from airflow_batch_runner import asset_events, lineage
from airflow_batch_runner.lineage import JobFiles

PATH = "s3://bucket/airflow-batch-runner/dag/run/task/-1/abc/"


def test_an_s3_input_is_read_as_itself_and_content_as_its_staged_object_once_there_is_a_bucket_path() -> None:
    inputs = {"a.txt": "s3://data/in/a.txt", "b.txt": "content\n"}
    assert lineage.read(JobFiles(input_files=inputs)) == ["s3://data/in/a.txt"]
    files = JobFiles(input_files=inputs, project_files=["lib/run.py"], bucket_path=PATH)
    assert lineage.read(files) == ["s3://data/in/a.txt", f"{PATH}inputs/b.txt", f"{PATH}inputs/lib/run.py"]


def test_array_children_read_their_own_staged_inputs_and_shared_sources_once() -> None:
    children = [{"p.txt": "s3://data/p.txt"}, {"p.txt": "one"}, {"p.txt": "s3://data/p.txt"}]
    assert lineage.read(JobFiles(child_inputs=children, bucket_path=PATH)) == [
        "s3://data/p.txt", f"{PATH}children/1/inputs/p.txt"]


def test_an_array_writes_one_dataset_per_child_that_wrote_files_at_any_size() -> None:
    children = [{"index": i, "output_files": {"o.txt": "s3://x"} if i % 2 == 0 else {}} for i in range(10_000)]
    prefixes = lineage.child_prefixes(PATH, children)
    assert len(prefixes) == 5_000
    assert prefixes[:2] == [f"{PATH}children/0/", f"{PATH}children/2/"]
    assert lineage.inline_children({"children": {"3": {"output_files": {}}}}) == [{"output_files": {}, "index": 3}]
    assert lineage.inline_children({"manifest": "s3://m"}) is None


def test_datasets_are_named_as_the_amazon_providers_s3_operators_name_them() -> None:
    assert lineage.dataset("s3://bucket/a/b.txt") == ("s3://bucket", "a/b.txt")


def test_the_container_gets_its_tasks_openlineage_run_as_parent_and_the_dag_run_as_root() -> None:
    env = lineage.identity_env("default", "dag.task", "run-1", ("default", "dag", "dag-run-1"))
    assert env["OPENLINEAGE_PARENT_ID"] == "default/dag.task/run-1"
    assert env["OPENLINEAGE_ROOT_PARENT_ID"] == "default/dag/dag-run-1"
    assert (env["OPENLINEAGE_PARENT_JOB_NAMESPACE"], env["OPENLINEAGE_PARENT_JOB_NAME"],
            env["OPENLINEAGE_PARENT_RUN_ID"]) == ("default", "dag.task", "run-1")
    parent = json.loads(env["OPENLINEAGE_CONTEXT"])["parent"]
    assert parent["run"]["runId"] == "run-1" and parent["root"]["job"]["name"] == "dag"


def test_a_single_job_makes_an_asset_event_per_output_file_and_an_array_one_for_its_manifest() -> None:
    single = {"job_id": "j", "job_name": "n", "output_files": {"b.txt": "s3://x/b.txt", "a.txt": "s3://x/a.txt"}}
    assert asset_events.events(single) == [
        ("s3://x/a.txt", {"job_id": "j", "job_name": "n", "output": "a.txt"}),
        ("s3://x/b.txt", {"job_id": "j", "job_name": "n", "output": "b.txt"}),
    ]
    array = {"job_id": "j", "job_name": "n", "array_size": 10_000, "succeeded": 9_999, "failed": 1,
             "manifest": "s3://x/manifest.json"}
    assert asset_events.events(array) == [("s3://x/manifest.json", {
        "job_id": "j", "job_name": "n", "array_size": 10_000, "succeeded": 9_999, "failed": 1})]


def test_a_file_airflow_would_read_as_another_uri_gets_no_event() -> None:
    from airflow.sdk import AssetAlias

    class Accessors:  # Airflow's outlet_events, keyed by the alias's name (an AssetAlias is unhashable on 3.1)
        def __init__(self):
            self.by_name: dict[str, Added] = {}

        def __getitem__(self, alias):
            return self.by_name.setdefault(alias.name, Added())

    class Added(list):
        def add(self, asset, extra):
            self.append((asset.uri, extra))

    class Log:
        warnings: list[str] = []

        def info(self, *args):
            pass

        def warning(self, event, *args):
            self.warnings.append(event % args)

    alias, accessors, log = AssetAlias("files"), Accessors(), Log()
    result = {"job_id": "j", "output_files": {"a#1.txt": "s3://x/a#1.txt", "ok.txt": "s3://x/ok.txt"}}
    assert asset_events.emit({"outlet_events": accessors}, [alias], result, log) == 1
    assert [uri for uri, _ in accessors.by_name["files"]] == ["s3://x/ok.txt"]
    assert log.warnings == ["No asset event for s3://x/a#1.txt: Airflow reads that URI as s3://x/a (a '?' or '#' "
                            "in the name)"]


def test_an_array_too_big_for_its_xcom_has_its_child_prefixes_read_from_the_manifest() -> None:
    from types import SimpleNamespace
    from typing import Any, cast

    from airflow_batch_runner.operators import lineage_view

    manifest = {"children": [{"index": i, "status": "SUCCEEDED" if i else "FAILED",
                              "output_files": {"o.txt": f"{PATH}children/{i}/output/o.txt"} if i != 5 else {}}
                             for i in range(150)]}
    read: list[str] = []

    def read_text(uri: str, max_bytes: int) -> str:
        read.append(uri)
        return json.dumps(manifest)

    task = SimpleNamespace(
        array_size=150, array_input_files=None, allowed_failures=0, input_files={}, _project_file_paths=dict,
        _result={"job_id": "j", "array_size": 150, "manifest": f"{PATH}manifest.json"},
        hook=SimpleNamespace(read_text=read_text),
    )
    files = lineage_view.job_files(cast(Any, task), PATH)
    assert read == [f"{PATH}manifest.json"]
    # Every child the manifest lists files for, whatever its status; child 5 wrote none.
    assert lineage.written(files) == [f"{PATH}children/{i}/" for i in range(150) if i != 5]
