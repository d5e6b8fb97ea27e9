"""Fan-out of N items on a running Airflow: N mapped tasks, one array task, or Airflow's BatchOperator.

    .venv/bin/python -m bench.fan_out [--sizes 200 1000] [--modes expand array batch_operator]

Starts the emulator (quotas on) and a real Airflow (LocalExecutor, scheduler, DAG processor, triggerer and
API server, as the system tests run it: ``tests/system/cluster.py``), then for each N and mode, one run at
a time, triggers a DAG and waits for it to succeed:

- ``expand``: ``BatchRunnerOperator.partial(...).expand(input_files=...)``, N mapped tasks, deferred, each
  a job with one small file in (``item.txt``) and out (``out.txt``);
- ``array``: one ``BatchRunnerOperator`` with ``array_input_files``, one array job of N children with the
  same files, deferred;
- ``batch_operator``: Airflow's ``BatchOperator`` with ``array_properties={"size": N}``, deferred (poll
  interval 5 s as ours), on a container job definition whose children echo their index: it has no way to
  give each child a file, nor to return any.

Figures per run: wall time from the trigger to the DAG run's success; the emulator's AWS calls by
operation during the run (``/_emulator/stats``: every caller's, the containers' sidecars included);
metadata rows written (task instances and XComs of the run; triggers, as the distinct rows of the
trigger table seen once a second during the run); CPU seconds of the
scheduler (with its LocalExecutor workers), the triggerer, and the API server (the workers' execution API).
Results go to stdout as a Markdown table and to ``bench/out/fan_out.json``. Exit status 1 when a run fails
or (with both ``expand`` and ``array`` at an N) a target is missed: the array makes at most 1/50 of the
expand runs' Batch calls and finishes sooner, and returns every child's output.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
import psutil

from airflow_batch_runner.emulator.testing import control, running_emulator
from bench.emulator_capacity import until_valid
from tests.system.cluster import Cluster, running_airflow

OUT = Path(__file__).resolve().parent / "out"
MODES = ("expand", "array", "batch_operator")
REGION = "us-east-1"
RUN_TIMEOUT = 3600.0

COMMON = """
import datetime
from airflow.sdk import DAG, task
from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator
from airflow.providers.amazon.aws.operators.batch import BatchOperator

ARGS = dict(
    compute_environment_arn="{{ var.value.compute_environment_arn }}",
    job_queue_arn="{{ var.value.job_queue_arn }}",
    bucket="{{ var.value.bucket }}",
    output_files=["out.txt"],
    commands=["cp item.txt out.txt"],
    completion_check_interval=5,
    deferrable=True,
    region_name="us-east-1",
    # Airflow 3.3.2 can fail a deferred task whose job ends within the scheduler's loop (docs/how-to/events.md, "Known
    # Airflow issues", apache/airflow#67287): its retry reattaches to the job and collects its outputs.
    retries=2,
    retry_delay=datetime.timedelta(seconds=1),
)
"""
DAGS = {
    "expand": """
with DAG("fan_out_expand_{n}", schedule=None, start_date=datetime.datetime(2026, 1, 1), max_active_tasks=1024) as dag:
    @task
    def items() -> list[dict[str, str]]:
        return [{{"item.txt": f"item {{i}}\\n"}} for i in range({n})]

    BatchRunnerOperator.partial(task_id="child", **ARGS).expand(input_files=items())
""",
    "array": """
with DAG("fan_out_array_{n}", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:
    @task
    def items() -> list[dict[str, str]]:
        return [{{"item.txt": f"item {{i}}\\n"}} for i in range({n})]

    BatchRunnerOperator(task_id="array", array_input_files=items(), **ARGS)
""",
    "batch_operator": """
with DAG("fan_out_batch_operator_{n}", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:
    BatchOperator(
        task_id="batch", job_name="fan-out-batch-operator", job_queue="{{{{ var.value.job_queue_arn }}}}",
        job_definition="{{{{ var.value.batch_operator_definition }}}}", array_properties={{"size": {n}}},
        deferrable=True, poll_interval=5, region_name="us-east-1", aws_conn_id="aws_default",
        retries=2, retry_delay=datetime.timedelta(seconds=1),
    )
""",
}


def client(url: str, service: str) -> Any:
    make: Any = boto3.client
    return make(service, endpoint_url=url, region_name=REGION, aws_access_key_id="testing",
                aws_secret_access_key="testing")


def setup_aws(url: str) -> dict[str, str]:
    batch = client(url, "batch")
    ce = batch.create_compute_environment(
        computeEnvironmentName="fan-out", type="MANAGED",
        computeResources={"type": "EC2", "minvCpus": 0, "maxvCpus": 10_000, "instanceTypes": ["optimal"],
                          "subnets": ["subnet-1"], "securityGroupIds": ["sg-1"], "instanceRole": "ecsInstanceRole"},
    )["computeEnvironmentArn"]
    until_valid(batch, compute_environment=ce)
    queue = batch.create_job_queue(jobQueueName="fan-out", state="ENABLED", priority=1,
                                   computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}])["jobQueueArn"]
    definition = batch.register_job_definition(
        jobDefinitionName="fan-out-batch-operator", type="container", platformCapabilities=["EC2"],
        containerProperties={"image": "ubuntu:24.04", "command": ["sh", "-c", "echo child $AWS_BATCH_JOB_ARRAY_INDEX"],
                             "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                      {"type": "MEMORY", "value": "2048"}]},
    )["jobDefinitionArn"]
    bucket = f"fan-out-{uuid.uuid4().hex[:6]}"
    client(url, "s3").create_bucket(Bucket=bucket)
    until_valid(batch, queue=queue)
    return {"compute_environment_arn": ce, "job_queue_arn": queue, "batch_operator_definition": definition,
            "bucket": bucket}


def dag_files(directory: Path, sizes: Sequence[int], modes: Sequence[str]) -> list[Path]:
    paths = []
    for n in sizes:
        for mode in modes:
            path = directory / f"fan_out_{mode}_{n}.py"
            path.write_text(textwrap.dedent(COMMON) + textwrap.dedent(DAGS[mode].format(n=n)))
            paths.append(path)
    return paths


def cpu_seconds(pid: int) -> float:
    """The process's CPU and its descendants', live (LocalExecutor's workers, their task processes) or
    ended and reaped (counted in their parent's children times)."""
    try:
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            total += sum(proc.cpu_times()[:4])
        except psutil.NoSuchProcess:
            pass
    return total


def rows(cluster: Cluster, dag_id: str, run_id: str) -> dict[str, int]:
    db = sqlite3.connect(cluster.home / "airflow.db")
    try:
        found = {
            table: db.execute(f"SELECT count(*) FROM {table} WHERE dag_id = ? AND run_id = ?",
                              (dag_id, run_id)).fetchone()[0]
            for table in ("task_instance", "xcom")
        }
        found["retried"] = db.execute("SELECT count(*) FROM task_instance WHERE dag_id = ? AND run_id = ? "
                                      "AND try_number > 1", (dag_id, run_id)).fetchone()[0]
        return found
    finally:
        db.close()


def trigger_ids(cluster: Cluster) -> set[int]:
    """The trigger rows now: a trigger lives from its task's deferral to its event (seconds at least)."""
    db = sqlite3.connect(cluster.home / "airflow.db", timeout=30)
    try:
        return {row[0] for row in db.execute("SELECT id FROM 'trigger'")}
    finally:
        db.close()


def wait_sampling_triggers(cluster: Cluster, dag_id: str, run_id: str) -> tuple[str, set[int]]:
    """Wait for the run's end, counting the distinct triggers seen meanwhile (each second)."""
    seen: set[int] = set()
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        seen |= trigger_ids(cluster)
        state = str(cluster.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])
        if state in ("success", "failed"):
            return state, seen
        time.sleep(1)
    raise AssertionError(f"run {run_id} of {dag_id} did not finish within {RUN_TIMEOUT} s")


def batch_calls(stats: dict[str, Any]) -> dict[str, int]:
    return {f"{service}:{op}": n for service, ops in stats["calls"].items() for op, n in ops.items()}


def measure(cluster: Cluster, url: str, mode: str, n: int) -> dict[str, Any]:
    dag_id = f"fan_out_{mode}_{n}"
    cluster.wait_for_dag(dag_id, timeout=600)
    triggers_before = trigger_ids(cluster)
    calls_before = batch_calls(control(url, "stats"))
    cpu_before = {name: cpu_seconds(proc.pid) for name, proc in cluster.procs.items()}
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    run_id = cluster.trigger(dag_id)
    state, seen = wait_sampling_triggers(cluster, dag_id, run_id)
    wall = time.monotonic() - started
    cpu = {name: cpu_seconds(proc.pid) - cpu_before[name] for name, proc in cluster.procs.items()}
    after = batch_calls(control(url, "stats"))
    calls = {op: after[op] - calls_before.get(op, 0) for op in after if after[op] != calls_before.get(op, 0)}
    written = rows(cluster, dag_id, run_id)
    written["triggers"] = len(seen - triggers_before)
    outputs = None
    if state == "success" and mode == "array":
        xcom = cluster.xcom(dag_id, run_id, "array")
        document = json.loads(client(url, "s3").get_object(
            Bucket=xcom["manifest"][5:].split("/", 1)[0], Key=xcom["manifest"][5:].split("/", 1)[1])["Body"].read())
        outputs = sum(1 for c in document["children"] if "out.txt" in c["output_files"])
    elif state == "success" and mode == "expand":
        outputs = n  # each mapped XCom has its output_files (checked by the e2e tests); counted, not read
    return {
        "mode": mode, "n": n, "state": state, "wall_seconds": round(wall, 1), "calls": calls,
        "batch_calls": sum(v for k, v in calls.items() if k.startswith("batch:")),
        "rows": written, "cpu_seconds": {k: round(v, 1) for k, v in cpu.items()},
        "outputs_returned": outputs, "load_average_at_start": round(load_before, 2),
    }


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| N | mode | wall s | Batch calls | SubmitJob | DescribeJobs | ListJobs | S3 calls | Logs calls | "
        "task instances | XComs | triggers | scheduler+workers CPU s | triggerer CPU s | API server CPU s | "
        "outputs returned | retried tasks | load at start |",
        "|" + "---|" * 18,
    ]
    for r in results:
        c = r["calls"]
        s3 = sum(v for k, v in c.items() if k.startswith("s3:"))
        logs = sum(v for k, v in c.items() if k.startswith("logs:"))
        lines.append(
            f"| {r['n']} | {r['mode']} | {r['wall_seconds']} | {r['batch_calls']} | {c.get('batch:SubmitJob', 0)} | "
            f"{c.get('batch:DescribeJobs', 0)} | {c.get('batch:ListJobs', 0)} | {s3} | {logs} | "
            f"{r['rows']['task_instance']} | {r['rows']['xcom']} | {r['rows']['triggers']} | "
            f"{r['cpu_seconds'].get('scheduler', 0)} | {r['cpu_seconds'].get('triggerer', 0)} | "
            f"{r['cpu_seconds'].get('api-server', 0)} | {r['outputs_returned']} | {r['rows']['retried']} | "
            f"{r['load_average_at_start']} |"
        )
    return "\n".join(lines)


def check_targets(results: list[dict[str, Any]]) -> list[str]:
    missed = []
    by = {(r["mode"], r["n"]): r for r in results}
    for r in results:
        if r["state"] != "success":
            missed.append(f"{r['mode']} at N = {r['n']} ended {r['state']}")
    for (mode, n), array in by.items():
        if mode != "array" or ("expand", n) not in by or n < 200:  # the targets are set at 200 and 1,000
            continue
        expand = by[("expand", n)]
        if array["batch_calls"] * 50 > expand["batch_calls"]:
            missed.append(f"N = {n}: the array made {array['batch_calls']} Batch calls, more than 1/50 of "
                          f"expand's {expand['batch_calls']}")
        if array["wall_seconds"] >= expand["wall_seconds"]:
            missed.append(f"N = {n}: the array took {array['wall_seconds']} s, expand {expand['wall_seconds']} s")
        if array["outputs_returned"] != n:
            missed.append(f"N = {n}: the array returned {array['outputs_returned']} outputs")
    return missed


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.fan_out", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    OUT.mkdir(exist_ok=True)
    results: list[dict[str, Any]] = []
    with running_emulator(step_delay=0.2) as url, tempfile.TemporaryDirectory(prefix="fan-out-dags-") as tmp:
        variables = setup_aws(url)
        with running_airflow(url, variables, dag_files(Path(tmp), args.sizes, args.modes)) as cluster:
            # The longest run (expand at the largest N) last: the others' figures are in hand if it overruns.
            runs = sorted(((n, mode) for n in args.sizes for mode in args.modes),
                          key=lambda run: (run[1] == "expand" and run[0] == max(args.sizes), run[0]))
            for n, mode in runs:
                result = measure(cluster, url, mode, n)
                results.append(result)
                print(json.dumps(result), flush=True)
                (OUT / "fan_out.json").write_text(json.dumps(results, indent=1))
    print(table(results))
    missed = check_targets(results)
    for line in missed:
        print(f"TARGET MISSED: {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
