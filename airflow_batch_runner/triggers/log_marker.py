"""Whether an earlier instance of a trigger already showed its job's lines: a marker kept in Airflow.

A trigger cannot change its kwargs (Airflow writes them when the task defers), so what it showed does not
survive a triggerer restart or a move to another triggerer: the trigger that takes over reads the job's log
from its start again. To say so only when it is so, the first instance to show a line leaves a marker, an
XCom of the task instance (``MARKER_KEY``: the job id), through the triggerer's Task SDK supervisor; an
instance that finds it was revived. The worker creates the XCom empty as it defers (so that asking never
misses: Airflow logs a missing XCom as an error) and removes it when the task resumes, so the task's XComs do
not keep it. Anything that fails here only leaves the notice out: the lines are shown all the same.
"""

from __future__ import annotations

import asyncio
from typing import Any

from airflow_batch_runner.triggers.task_state import ASK_TIMEOUT
from airflow_batch_runner.triggers.timeouts import within

MARKER_KEY = "batch_runner_log_shown"


def prepare(context: Any) -> None:
    """In the worker, as the task defers: the marker, empty (no trigger has shown a line yet)."""
    context["ti"].xcom_push(key=MARKER_KEY, value="")


def clear(context: Any) -> None:
    """In the worker, as the task resumes: the marker goes (a failure to delete it fails nothing)."""
    ti = context["ti"]
    try:
        from airflow.sdk.execution_time.xcom import XCom

        XCom.delete(key=MARKER_KEY, dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id, map_index=ti.map_index)
    except Exception:
        pass


class LogMarker:
    def __init__(self, task_instance: Any, job_id: str) -> None:
        self.task_instance = task_instance
        self.job_id = job_id
        self._leaving: asyncio.Task[None] | None = None

    def _where(self) -> dict[str, Any]:
        ti = self.task_instance
        return {"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id, "map_index": ti.map_index}

    async def _call(self, method: str, **kwargs: Any) -> Any:
        from airflow.sdk.execution_time.xcom import XCom

        call = getattr(XCom, method)
        return await within(asyncio.to_thread(call, key=MARKER_KEY, **kwargs, **self._where()), ASK_TIMEOUT)

    async def left_before(self) -> bool:
        """An earlier instance of this trigger showed lines of this job (False too when it cannot be known)."""
        if self.task_instance is None:
            return False
        try:
            return bool(await self._call("get_one") == self.job_id)
        except Exception:
            return False

    def leave(self) -> None:
        """Leave the marker (once, in the background): this instance has shown lines."""
        if self.task_instance is not None and self._leaving is None:
            self._leaving = asyncio.get_running_loop().create_task(self._set())

    async def _set(self) -> None:
        try:
            await self._call("set", value=self.job_id)
        except Exception:
            pass  # a revived trigger will not say that lines repeat; they are shown all the same
