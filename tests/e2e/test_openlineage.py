"""OpenLineage: the events a real Airflow worker sends for the operator's tasks (the provider's listener, its
transport writing to a file), and the lineage identity the container gets.

Each run is a process of its own, as a worker is: the provider reads its configuration and registers its listener
once per process, so a transport set in this test process would reach neither an earlier-started listener nor a
later test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import AwsWorld, dags_folder, xcom_value

pytest.importorskip("airflow.providers.openlineage", reason="the OpenLineage provider is not installed")

DAG_ID = "lineage_tasks"
DAG = f"""
from datetime import datetime

from airflow.sdk import DAG

from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

COMMON = dict(compute_environment_arn="{{{{ var.value.compute_environment_arn }}}}",
              execution_role_arn="{{{{ var.value.execution_role_arn }}}}", bucket="{{{{ var.value.bucket }}}}",
              region_name="us-east-1", completion_check_interval=0.2)

with DAG(dag_id="{DAG_ID}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    BatchRunnerOperator(
        task_id="single", deferrable=False, output_files=["parent.txt", "copy.txt"],
        input_files={{"note.txt": "hello\\n", "source.txt": "{{{{ params.source }}}}"}},
        commands=["printenv OPENLINEAGE_PARENT_ID > parent.txt", "cp source.txt copy.txt"], **COMMON)
    BatchRunnerOperator(
        task_id="deferred", deferrable=True, output_files=["out.txt"], commands=["echo done > out.txt"], **COMMON)
    BatchRunnerOperator(
        task_id="array", deferrable=False,
        array_input_files=[{{"part.txt": "zero"}}, {{"part.txt": "{{{{ params.source }}}}"}}, {{"part.txt": "two"}}],
        commands=["test $AWS_BATCH_JOB_ARRAY_INDEX = 2 || cp part.txt {{{{ output_dir }}}}/part.txt"], **COMMON)
    BatchRunnerOperator(
        task_id="failing", deferrable=False, input_files={{"source.txt": "{{{{ params.source }}}}"}},
        commands=["exit 3"], **COMMON)
"""

def run_in_worker_process(events_file: Path, source: str) -> str:
    """``dag.test()`` of the DAG in a new process with OpenLineage's transport writing to ``events_file``; the
    run's id."""
    (dags_folder() / f"{DAG_ID}.py").write_text(DAG)
    script = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('lineage_dag', {str(dags_folder() / f'{DAG_ID}.py')!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        f"run = module.dag.test(run_conf={{'source': {source!r}}})\n"
        "print('RUN_ID=' + run.run_id)\n"
    )
    env = {**os.environ, "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
        {"type": "file", "log_file_path": str(events_file), "append": True})}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=400)
    found = [line for line in done.stdout.splitlines() if line.startswith("RUN_ID=")]
    assert found, (done.stdout + done.stderr)[-4000:]
    return found[0].removeprefix("RUN_ID=")


def task_events(events_file: Path) -> dict[str, list[dict[str, Any]]]:
    """The events of each task of the DAG (job name ``<dag_id>.<task_id>``), in the order sent."""
    by_task: dict[str, list[dict[str, Any]]] = {}
    for line in events_file.read_text().splitlines():
        event = json.loads(line)
        name = event.get("job", {}).get("name", "")
        if name.startswith(f"{DAG_ID}."):
            by_task.setdefault(name.removeprefix(f"{DAG_ID}."), []).append(event)
    return by_task


def uris(datasets: list[dict[str, Any]]) -> list[str]:
    return sorted(f"{d['namespace']}/{d['name']}" for d in datasets)


def last(events: list[dict[str, Any]], event_type: str) -> dict[str, Any]:
    found = [e for e in events if e["eventType"] == event_type]
    assert found, [e["eventType"] for e in events]
    return found[-1]


def test_events_name_what_each_job_read_and_wrote(aws: AwsWorld, tmp_path: Path) -> None:
    s3 = aws.client("s3")
    s3.put_object(Bucket=aws.bucket, Key="data/source.txt", Body=b"from s3\n")
    source = f"s3://{aws.bucket}/data/source.txt"
    events_file = tmp_path / "events.jsonl"
    run_id = run_in_worker_process(events_file, source)
    events = task_events(events_file)
    bucket = f"s3://{aws.bucket}"

    # One job, waited for in the worker: the s3:// input from the start; at the end its staged content input
    # too, each output file, and the job's run facet.
    single = xcom_value(DAG_ID, run_id, "single")
    assert single is not None
    start, complete = last(events["single"], "START"), last(events["single"], "COMPLETE")
    assert uris(start["inputs"]) == [source]
    assert uris(complete["inputs"]) == sorted([source, f"{single['bucket_path']}inputs/note.txt"])
    assert uris(complete["outputs"]) == sorted(single["output_files"].values())
    assert all(d["namespace"] == bucket for d in complete["inputs"] + complete["outputs"])
    facet = complete["run"]["facets"]["awsBatchJob"]
    job = aws.client("batch").describe_jobs(jobs=[single["job_id"]])["jobs"][0]
    assert {k: facet[k] for k in ("jobId", "jobArn", "jobName", "jobQueue", "status", "attempts")} == {
        "jobId": job["jobId"], "jobArn": job["jobArn"], "jobName": job["jobName"], "jobQueue": job["jobQueue"],
        "status": "SUCCEEDED", "attempts": 1,
    }
    assert facet["consoleUrl"] == (
        f"https://console.aws.amazon.com/batch/home?region=us-east-1#jobs/detail/{single['job_id']}")
    # The container knew its task's OpenLineage run: the parent id is the task's namespace/job/run.
    parent = aws.read(single["output_files"]["parent.txt"]).strip()
    assert parent == f"{complete['job']['namespace']}/{DAG_ID}.single/{complete['run']['runId']}"
    assert aws.read(single["output_files"]["copy.txt"]) == "from s3\n"

    # Deferred: the resumed task sends the COMPLETE event with the job's outputs.
    deferred = xcom_value(DAG_ID, run_id, "deferred")
    assert deferred is not None
    complete = last(events["deferred"], "COMPLETE")
    assert uris(complete["outputs"]) == [deferred["output_files"]["out.txt"]]
    assert complete["run"]["facets"]["awsBatchJob"]["jobId"] == deferred["job_id"]

    # An array: each child's inputs (its s3:// one as itself), one output dataset per child that wrote files.
    array = xcom_value(DAG_ID, run_id, "array")
    assert array is not None
    complete = last(events["array"], "COMPLETE")
    path = array["bucket_path"]
    assert uris(complete["inputs"]) == sorted([f"{path}children/0/inputs/part.txt", source,
                                               f"{path}children/2/inputs/part.txt"])
    assert uris(complete["outputs"]) == [f"{path}children/0/", f"{path}children/1/"]
    assert complete["run"]["facets"]["awsBatchJob"]["arraySize"] == 3

    # A failed job: the FAIL event names its input, no output, and the failed job.
    fail = last(events["failing"], "FAIL")
    assert uris(fail["inputs"]) == [source]
    assert fail["outputs"] == []
    assert fail["run"]["facets"]["awsBatchJob"]["status"] == "FAILED"



RESUMED = """
from datetime import datetime

from airflow.sdk import DAG, AssetAlias

from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

with DAG(dag_id="lineage_resumed", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    BatchRunnerOperator(
        task_id="shell", compute_environment_arn="{{ var.value.compute_environment_arn }}",
        execution_role_arn="{{ var.value.execution_role_arn }}", bucket="{{ var.value.bucket }}",
        region_name="us-east-1", completion_check_interval=0.2, outlets=[AssetAlias("resumed_files")],
        output_files=["parent.txt", "out.txt"],
        commands=["printenv OPENLINEAGE_PARENT_ID > parent.txt", "sleep 3", "echo resumed > out.txt"])
"""


def test_a_retry_that_reattaches_reports_the_job_of_the_first_try(
    aws: AwsWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.e2e.test_asset_events import asset_events
    from tests.e2e.test_resume import FIRST_TRY, RETRY, _running, _start, _until

    events_file = tmp_path / "events.jsonl"
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT",
                       json.dumps({"type": "file", "log_file_path": str(events_file), "append": True}))
    dag_id = "lineage_resumed"
    (dags_folder() / f"{dag_id}.py").write_text(RESUMED)
    first = _start(dag_id, FIRST_TRY)  # the worker dies while the job runs
    try:
        _until(lambda: _running(aws, dag_id))
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert _start(dag_id, RETRY).wait(timeout=180) == 0

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        (run_id,) = [run.run_id for run in session.query(DagRun).filter(DagRun.dag_id == dag_id)]
    xcom = xcom_value(dag_id, run_id, "shell")
    assert xcom is not None
    events = [e for e in json.loads("[" + ",".join(events_file.read_text().splitlines()) + "]")
              if e["job"]["name"] == f"{dag_id}.shell"]
    first_start, retry_start = [e for e in events if e["eventType"] == "START"]
    complete = last(events, "COMPLETE")
    assert complete["run"]["runId"] == retry_start["run"]["runId"] != first_start["run"]["runId"]
    assert uris(complete["outputs"]) == sorted(xcom["output_files"].values())
    assert complete["run"]["facets"]["awsBatchJob"]["jobId"] == xcom["job_id"]
    # The job started in the first try: its container names that try's run, the retry reports the same job.
    parent = aws.read(xcom["output_files"]["parent.txt"]).strip()
    assert parent == f"{first_start['job']['namespace']}/{dag_id}.shell/{first_start['run']['runId']}"
    assert asset_events(dag_id) == {"shell": sorted(
        (uri, {"job_id": xcom["job_id"], "job_name": xcom["job_name"], "output": name})
        for name, uri in xcom["output_files"].items())}
