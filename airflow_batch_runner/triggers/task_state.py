"""Whether a trigger's task instance still waits on it: asked of Airflow from the triggerer.

Airflow 3.3 calls a trigger's ``on_kill`` whenever the trigger leaves its triggerer's assignment: when a user
marked the deferred task failed or success, or cleared it, but also when another triggerer took the trigger
over (this one stalled past ``[triggerer] triggerer_health_check_threshold``, or two claimed the same new
trigger). Nothing in the call tells them apart (apache/airflow#73454); the task instance's state does: still
DEFERRED, the trigger was only moved, and the job is another triggerer's to wait on.
"""

from __future__ import annotations

import asyncio
from typing import Any

from airflow_batch_runner.triggers.timeouts import within

DEFERRED = "deferred"
ASK_TIMEOUT = 10.0  # s; the triggerer gives on_kill 30 s in all ([triggerer] on_kill_timeout)


class StateUnknown(Exception):
    """Airflow could not be asked (no task instance, no supervisor, an error or no answer in time)."""


async def current_state(task_instance: Any) -> str | None:
    """The state of ``task_instance`` in Airflow's database now (``None``: cleared, or gone). Asked through the
    Task SDK's supervisor (the triggerer's), in a thread: the call waits for the supervisor's answer."""
    if task_instance is None:
        raise StateUnknown("the trigger has no task instance")
    try:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        states = await within(
            asyncio.to_thread(
                RuntimeTaskInstance.get_task_states,
                dag_id=task_instance.dag_id,
                task_ids=[task_instance.task_id],
                run_ids=[task_instance.run_id],
                map_index=task_instance.map_index,
            ),
            ASK_TIMEOUT,
        )
    except asyncio.TimeoutError:
        raise StateUnknown(f"no answer from Airflow within {ASK_TIMEOUT:g} s") from None
    except Exception as exc:  # no supervisor (AttributeError), an API error, an older Task SDK
        raise StateUnknown(f"{type(exc).__name__}: {exc}") from exc
    # The execution API names a mapped task instance <task_id>_<map_index>.
    key = task_instance.task_id if task_instance.map_index < 0 else f"{task_instance.task_id}_{task_instance.map_index}"
    state = (states or {}).get(task_instance.run_id, {}).get(key)
    return None if state is None else str(getattr(state, "value", state))
