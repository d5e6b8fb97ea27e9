"""Several triggerers: a trigger that moves from one to another never ends its job."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_batch_runner.outcome import KILL_REASON
from airflow_batch_runner.triggers.log_marker import MARKER_KEY
from tests.system.cluster import Cluster, another_triggerer, stalled
from tests.system.conftest import World

pytestmark = pytest.mark.system

DAG_ID = "system_handover"
TASKS = [f"wait_{i}" for i in range(3)]
# s: the second triggerer takes the triggers of one that has not heartbeaten for this long (well above the
# 5 s between heartbeats, which a loaded machine stretches: at 10 s it took them before any stall)
THRESHOLD = 20


def _wait(what: str, condition: Callable[[], Any], timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.5)
    return found


def _triggerers(airflow: Cluster, run_id: str) -> dict[str, int | None] | None:
    """Each task's triggerer, or None while a task is not deferred."""
    found: dict[str, int | None] = {}
    for task_id in TASKS:
        ti = airflow.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}")
        if ti["state"] != "deferred":
            return None
        found[task_id] = (ti.get("trigger") or {}).get("triggerer_id")
    return found


def _marker_left(airflow: Cluster, run_id: str, task_id: str) -> bool:
    """The task's trigger recorded that it showed the job's lines (an XCom it sets in the background once a line
    was shown; empty until then)."""
    entry = airflow.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{MARKER_KEY}")
    return str(entry.get("value") or "").strip('"') != ""


def _on_kill_calls(airflow: Cluster) -> int:
    """How many triggers Airflow cancelled "by user action" so far, in every log of the cluster."""
    logs = [*airflow.home.glob("*.log"), *(airflow.home / "logs").rglob("*")]
    return sum(path.read_text(errors="replace").count("invoking on_kill") for path in logs if path.is_file())


def test_a_stalled_triggerer_whose_triggers_moved_away_terminates_no_job(
    airflow: Cluster, world: World, tmp_path: Path
) -> None:
    """Airflow 3.3 cancels a trigger that left a triggerer's assignment as if a user had acted on its task
    (apache/airflow#73454): the stalled triggerer, resumed, calls on_kill on every trigger the other took over.
    The jobs must go on, and every task succeed in its first try."""
    release = tmp_path / "release"
    run_id = airflow.trigger(DAG_ID, {"release": str(release)})
    first = airflow.procs["triggerer"]
    owners = _wait("every task deferred, its trigger taken by the triggerer",
                   lambda: (found := _triggerers(airflow, run_id)) and all(found.values()) and found)
    (first_id,) = set(owners.values())
    _wait("the first triggerer showed each job's first line",
          lambda: all("[main] waiting" in airflow.task_log(DAG_ID, run_id, task_id) for task_id in TASKS))
    # The marker is set after the line is shown: a stall before it is set (a loaded host) would leave the second
    # triggerer nothing to say why lines repeat.
    _wait("the first triggerer recorded that it showed them",
          lambda: all(_marker_left(airflow, run_id, task_id) for task_id in TASKS))
    kills_before = _on_kill_calls(airflow)
    with another_triggerer(airflow, triggerer_health_check_threshold=str(THRESHOLD)):
        with stalled(first):
            _wait("the second triggerer took every trigger over",
                  lambda: (found := _triggerers(airflow, run_id)) and first_id not in found.values())
        # Resumed, the first triggerer finds the triggers gone from its assignment and cancels them.
        _wait("the resumed triggerer cancelled the triggers it lost",
              lambda: _on_kill_calls(airflow) - kills_before >= len(TASKS), timeout=120)
        jobs = world.jobs(f"{DAG_ID}-")
        assert len(jobs) == len(TASKS)
        assert not [job for job in jobs if job["status"] in ("FAILED", "SUCCEEDED")], jobs
        release.touch()
        assert airflow.wait_for_run(DAG_ID, run_id, timeout=180) == "success"
    jobs = world.jobs(f"{DAG_ID}-")
    assert sorted(job["status"] for job in jobs) == ["SUCCEEDED"] * len(TASKS), jobs
    assert not [job for job in jobs if job.get("statusReason") == KILL_REASON]
    for task_id in TASKS:
        ti = airflow.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}")
        assert ti["try_number"] == 1, ti
        log = airflow.task_log(DAG_ID, run_id, task_id)
        assert "released" in log
        # The second triggerer read the job's log from its start again, and said why the first lines repeat.
        assert log.count("[main] waiting") == 2 and "took over from another instance" in log, log[-3000:]
