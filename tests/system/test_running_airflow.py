"""The path a user takes: a running Airflow, triggered through its REST API."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from tests.system.cluster import Cluster
from tests.system.conftest import World

pytestmark = pytest.mark.system


def test_rest_api_trigger_with_a_param_returns_the_file_through_xcom(airflow: Cluster, world: World) -> None:
    content = "from the REST API\nsecond line\n"
    run_id = airflow.trigger("container_with_input_files", {"file": content})
    assert airflow.wait_for_run("container_with_input_files", run_id) == "success"
    xcom = airflow.xcom("container_with_input_files", run_id, "shell")
    assert xcom["status"] == "SUCCEEDED"
    assert world.read(xcom["output_files"]["out.txt"]) == content


def test_deferred_task_waits_in_the_triggerer_and_logs_the_container_lines(airflow: Cluster, world: World) -> None:
    run_id = airflow.trigger("system_deferred")
    assert airflow.wait_for_run("system_deferred", run_id) == "success"
    log = airflow.task_log("system_deferred", run_id, "shell")
    positions = [log.find(f"deferred-container-line-{i}") for i in range(1, 6)]
    assert all(p >= 0 for p in positions), log[-3000:]
    assert positions == sorted(positions)
    assert log.count("[main] deferred-container-line-3") == 1  # once (the trigger event repeats it apart)
    assert "Pausing task as DEFERRED" in log  # the worker let go; the lines above came from the triggerer
    assert "from its start" not in log  # no triggerer restarted: nothing is read twice, nothing to explain
    ti = airflow.api("GET", f"/dags/system_deferred/dagRuns/{run_id}/taskInstances/shell")
    assert ti["try_number"] == 1


def _task_runner(ti_id: str) -> psutil.Process | None:
    """The process that runs the task's code: the Task SDK titles it ``airflow worker -- <ti id>``."""
    for proc in psutil.process_iter(["cmdline"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
        except psutil.Error:
            continue
        if cmdline.startswith("airflow worker -- ") and cmdline.endswith(ti_id):
            return proc
    return None


def test_killed_task_process_is_retried_and_reattaches_to_its_job(airflow: Cluster, world: World) -> None:
    run_id = airflow.trigger("system_retry")
    deadline = time.monotonic() + 180
    while not any(job["status"] == "RUNNING" for job in world.jobs("system_retry-shell-")):
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.5)
    ti_id = airflow.api("GET", f"/dags/system_retry/dagRuns/{run_id}/taskInstances/shell")["id"]
    victim = None
    while victim is None:
        assert time.monotonic() < deadline, f"no process runs task instance {ti_id}"
        victim = _task_runner(ti_id)
        time.sleep(0.2)
    os.kill(victim.pid, signal.SIGKILL)
    assert airflow.wait_for_run("system_retry", run_id, timeout=300) == "success"
    ti = airflow.api("GET", f"/dags/system_retry/dagRuns/{run_id}/taskInstances/shell")
    assert ti["try_number"] == 2
    jobs = world.jobs("system_retry-shell-")
    assert [job["status"] for job in jobs] == ["SUCCEEDED"], jobs
    xcom = airflow.xcom("system_retry", run_id, "shell")
    assert xcom["job_id"] == jobs[0]["jobId"]
    assert world.read(xcom["output_files"]["out.txt"]) == "survives a lost worker"


def test_marking_a_deferred_task_failed_terminates_its_job(airflow: Cluster, world: World) -> None:
    from airflow_batch_runner.outcome import KILL_REASON

    run_id = airflow.trigger("system_deferred_kill")
    path = f"/dags/system_deferred_kill/dagRuns/{run_id}/taskInstances/shell"
    deadline = time.monotonic() + 180
    # Deferred, its job running, and its trigger taken by the triggerer: a task marked failed before any
    # triggerer ran its trigger has no on_kill to call (Airflow removes the trigger unrun; a CI run hit it).
    while (ti := airflow.api("GET", path))["state"] != "deferred" or not (ti.get("trigger") or {}).get(
        "triggerer_id"
    ) or not any(job["status"] == "RUNNING" for job in world.jobs("system_deferred_kill-shell-")):
        assert time.monotonic() < deadline, "the task never deferred on a running job in a triggerer"
        time.sleep(0.5)
    airflow.api("PATCH", path, {"new_state": "failed"})
    while True:
        (job,) = world.jobs("system_deferred_kill-shell-")
        if job["status"] == "FAILED":
            break
        assert time.monotonic() < deadline, f"the job was not terminated: {job['status']}"
        time.sleep(0.5)
    assert job["statusReason"] == KILL_REASON


def test_with_events_a_deferred_task_resumes_at_its_jobs_end_not_at_its_poll(airflow: Cluster, world: World) -> None:
    run_id = airflow.trigger("system_events")
    assert airflow.wait_for_run("system_events", run_id, timeout=240) == "success"
    (job,) = world.jobs("system_events-shell-")
    ti = airflow.api("GET", f"/dags/system_events/dagRuns/{run_id}/taskInstances/shell")
    from datetime import datetime

    ended = datetime.fromisoformat(ti["end_date"].replace("Z", "+00:00")).timestamp()
    assert ended - job["stoppedAt"] / 1000 < 60, "the event resumed it: the poll interval is 300 s"
    assert "events-line" in airflow.task_log("system_events", run_id, "shell")
    triggerer_log = (airflow.home / "triggerer.log").read_text(errors="replace")
    assert "Batch events: reading" not in triggerer_log  # the queue was read all along
