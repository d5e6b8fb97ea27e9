"""Crash matrix: the worker dies (SIGKILL) at each step of a task; the retry finds the job again.

Each case runs the task with ``dag.test()`` in a child process and kills it at one point. A second
child then runs the same task instance again as the scheduler's retry would: the same run, the next
try number (and a new task instance id, as Airflow gives each try). In every case exactly one job
ran, to success, the XCom is complete, and no staged input is left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_batch_runner.emulator.testing import control
from tests.airflow_version import below
from tests.e2e.conftest import AwsWorld, dags_folder, xcom_value
from tests.e2e.test_failures import task_dag

LOAD = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("crash_dag", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
"""
FIRST_TRY = LOAD + "module.dag.test()\n"
RETRY = LOAD + """
from airflow.models.taskinstance import TaskInstance
from airflow.sdk.definitions.dag import _run_task
from airflow.utils.session import create_session

with create_session() as session:
    ti = session.query(TaskInstance).filter_by(dag_id=module.dag.dag_id, task_id="shell").one()
    ti.prepare_db_for_next_try(session)
    ti.try_number += 1
    ti.state = "scheduled"
    ti.next_method = ti.next_kwargs = None  # a failed try's deferral is not resumed by its retry
    session.commit()
    session.refresh(ti)
    session.expunge(ti)
_run_task(ti=ti, task=module.dag.task_dict["shell"], run_triggerer=True)
"""


def _start(dag_id: str, script: str) -> subprocess.Popen[bytes]:
    path = dags_folder() / f"{dag_id}.py"
    return subprocess.Popen([sys.executable, "-c", script, str(path)], env=os.environ.copy(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _calls(aws: AwsWorld, key: str) -> int:
    service, op = key.split(":")
    return int(control(aws.url, "stats")["calls"].get(service, {}).get(op, 0))


def _jobs(aws: AwsWorld, dag_id: str) -> list[dict[str, Any]]:
    batch = aws.client("batch")
    found = []
    for queue in batch.describe_job_queues()["jobQueues"]:
        pages = batch.get_paginator("list_jobs").paginate(
            jobQueue=queue["jobQueueArn"], filters=[{"name": "JOB_NAME", "values": [f"{dag_id}-shell-*"]}]
        )
        found += [job for page in pages for job in page["jobSummaryList"]]
    return found


def _until(condition: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s (the crash point, or the held calls answered)")


def _running(aws: AwsWorld, dag_id: str) -> bool:
    return any(job["status"] == "RUNNING" for job in _jobs(aws, dag_id))


# Each case: faults to set (to hold the worker at the crash point) and when to kill it.
CASES: dict[str, tuple[dict[str, Any], Callable[[AwsWorld, str, dict[str, int]], bool], bool]] = {
    "before_submit": (
        {"s3:PutObject": {"delay": 4, "count": 1}},
        lambda aws, dag_id, base: _calls(aws, "s3:PutObject") > base["s3:PutObject"], False),
    "after_submit_before_recorded": (
        # The first SubmitJob of a fresh account is refused (no queue, no definition yet); hold the second.
        {"batch:SubmitJob": {"delay": 3, "count": 2}},
        lambda aws, dag_id, base: _calls(aws, "batch:SubmitJob") >= base["batch:SubmitJob"] + 2, False),
    "while_running": ({}, lambda aws, dag_id, base: _running(aws, dag_id), False),
    "while_deferred": ({}, lambda aws, dag_id, base: _running(aws, dag_id), True),
    "after_success_before_outputs": (
        {"s3:ListObjectsV2": {"delay": 6, "count": 1}},
        lambda aws, dag_id, base: _calls(aws, "s3:ListObjectsV2") > base["s3:ListObjectsV2"], False),
}

# SubmitJob answered before the kill: the first try recorded the job id in the task state store.
RECORDED = {"while_running", "while_deferred", "after_success_before_outputs"}


@pytest.mark.parametrize("case", list(CASES))
def test_retry_after_worker_crash_runs_exactly_one_job(aws: AwsWorld, case: str) -> None:
    faults, crash_point, deferrable = CASES[case]
    dag_id = f"crash_{case}"
    task_dag(dag_id, deferrable=deferrable, input_files={"in.txt": f"data for {case}"}, output_files=["out.txt"],
             commands=["sleep 3", "cp in.txt out.txt"], completion_check_interval=0.3)
    base = {key: _calls(aws, key) for key in ("s3:PutObject", "batch:SubmitJob", "s3:ListObjectsV2")}
    control(aws.url, "faults", faults)
    first = _start(dag_id, FIRST_TRY)
    try:
        _until(lambda: crash_point(aws, dag_id, base))
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
        control(aws.url, "faults", {})
    _until(lambda: control(aws.url, "stats")["in_flight"] == 0, timeout=30)  # held calls complete

    listed_before = _calls(aws, "batch:ListJobs")
    retry = _start(dag_id, RETRY)
    assert retry.wait(timeout=180) == 0
    if case in RECORDED:
        # Airflow 3.3+ hands the retry the recorded job id; older Airflow has no task state store, and the
        # retry finds the job by name on the queue.
        assert (_calls(aws, "batch:ListJobs") > listed_before) == below("3.3"), "ListJobs calls by the retry"

    jobs = _jobs(aws, dag_id)
    assert [job["status"] for job in jobs] == ["SUCCEEDED"], jobs
    xcom = xcom_value(dag_id, _run_id(dag_id), "shell")
    assert xcom is not None
    assert xcom["job_id"] == jobs[0]["jobId"]
    assert xcom["status"] == "SUCCEEDED"
    assert aws.read(xcom["output_files"]["out.txt"]) == f"data for {case}"
    assert [k for k in aws.object_keys() if "/inputs/" in k] == []


def _run_id(dag_id: str) -> str:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id).one()
        return str(run.run_id)
