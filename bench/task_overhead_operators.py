"""Instrumented operators and DAGs for ``bench.task_overhead`` (imported by the DAG file it writes).

Neither operator is mocked or changed: each subclass only wraps ``execute()`` to record when it starts
and when it returns, every AWS API call made meanwhile (service, operation, when it was made and when
it returned: a wrapper around botocore's ``BaseClient._make_api_call``, so that every client of the
task is seen, those the hooks create lazily included), the full garbage collections meanwhile
(``gc.callbacks``), and the emulator's ``/_emulator/stats`` before and after, read outside the timed
window. One JSON line per task goes to the records file.
The only setting touched is BatchClientHook's polling delay (see ``make_dags``).
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import botocore.client
from airflow.providers.amazon.aws.hooks.batch_client import BatchClientHook
from airflow.providers.amazon.aws.operators.batch import BatchOperator
from airflow.sdk import DAG, Context

from airflow_batch_runner.emulator.testing import control
from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

OURS = "BatchRunnerOperator"
PROVIDER = "BatchOperator"
DAG_IDS = {OURS: "overhead_batch_runner", PROVIDER: "overhead_batch_operator"}
TASK_ID = "job"

Call = tuple[float, float, str, str]  # (time.time() sent, time.time() answered, service, operation)
Pause = tuple[float, float]  # a full (generation 2) garbage collection: (time.time() started, seconds)


class _Recorder:
    """Every botocore API call, and every full garbage collection, of this process while a task is measured."""

    calls: list[Call] | None = None
    pauses: list[Pause] | None = None
    _collection_started = 0.0

    @classmethod
    def install(cls) -> None:
        client_class: Any = botocore.client.BaseClient
        if getattr(client_class, "_task_overhead_wrapped", False):
            return
        original: Callable[..., Any] = client_class._make_api_call

        def _make_api_call(client: Any, operation_name: str, api_params: Any) -> Any:
            calls = cls.calls
            if calls is None:
                return original(client, operation_name, api_params)
            sent = time.time()
            try:
                return original(client, operation_name, api_params)
            finally:
                calls.append((sent, time.time(), client.meta.service_model.service_name, operation_name))

        client_class._make_api_call = _make_api_call
        client_class._task_overhead_wrapped = True
        gc.callbacks.append(cls._on_collection)

    @classmethod
    def _on_collection(cls, phase: str, info: Mapping[str, int]) -> None:
        if cls.pauses is None or info["generation"] != 2:
            return
        if phase == "start":
            cls._collection_started = time.time()
        else:
            cls.pauses.append((cls._collection_started, time.time() - cls._collection_started))


_Recorder.install()


@contextmanager
def _measured(settings: Mapping[str, Any], implementation: str) -> Iterator[dict[str, Any]]:
    """Record one execute(): its start and end, its AWS calls and the emulator's counts around it."""
    record: dict[str, Any] = {"implementation": implementation}
    record["stats_before"] = control(settings["emulator_url"], "stats")["calls"]
    calls: list[Call] = []
    pauses: list[Pause] = []
    _Recorder.calls, _Recorder.pauses = calls, pauses
    record["start"] = time.time()
    try:
        yield record
    except BaseException as exc:
        record["error"] = repr(exc)
        raise
    finally:
        record["end"] = time.time()
        _Recorder.calls = _Recorder.pauses = None
        record["calls"], record["gc_pauses"] = calls, pauses
        record["stats_after"] = control(settings["emulator_url"], "stats")["calls"]
        with open(settings["records"], "a") as out:
            out.write(json.dumps(record) + "\n")


class TimedBatchRunnerOperator(BatchRunnerOperator):
    def __init__(self, *, bench_settings: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bench_settings = dict(bench_settings)

    def execute(self, context: Context) -> dict[str, Any]:
        with _measured(self.bench_settings, OURS) as record:
            result = super().execute(context)
            record["job_id"] = result["job_id"]
        return result


class TimedBatchOperator(BatchOperator):
    def __init__(self, *, bench_settings: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bench_settings = dict(bench_settings)

    def execute(self, context: Context) -> str | None:
        if not self.bench_settings.get("provider_default_delays"):
            # Class attributes, as BatchClientHook's documentation says to set them; only this
            # operator's wait reads them (BatchRunnerOperator never calls BatchClientHook.delay).
            interval = float(self.bench_settings["interval"])
            BatchClientHook.DEFAULT_DELAY_MIN = BatchClientHook.DEFAULT_DELAY_MAX = interval  # type: ignore[assignment]
        with _measured(self.bench_settings, PROVIDER) as record:
            job_id = super().execute(context)
            record["job_id"] = job_id
        return job_id


def make_dags(settings: Mapping[str, Any]) -> dict[str, DAG]:
    """One single-task DAG per implementation, both polling every ``settings["interval"]`` seconds.

    BatchOperator with ``deferrable=False`` waits in ``BatchClientHook.wait_for_job``, which ignores
    ``poll_interval`` (the trigger's delay): its pauses come from ``BatchClientHook.DEFAULT_DELAY_MIN``
    and ``DEFAULT_DELAY_MAX`` (random 1-10 s by default), the knob its documentation gives for this.
    Unless ``settings["provider_default_delays"]``, TimedBatchOperator sets both to the interval, the
    nearest the sync path gets to polling at the same interval as ours.
    """
    interval = float(settings["interval"])
    start = datetime(2026, 1, 1)
    with DAG(DAG_IDS[OURS], schedule=None, start_date=start, catchup=False) as ours:
        TimedBatchRunnerOperator(
            task_id=TASK_ID,
            bench_settings=settings,
            compute_environment_arn=settings["compute_environment_arn"],
            bucket=settings["bucket"],
            input_files={"in.txt": "hello from the input file\n"},
            output_files=["out.txt"],
            commands=["cp in.txt out.txt", "echo hello"],
            completion_check_interval=interval,
            aws_conn_id="aws_default",
        )
    with DAG(DAG_IDS[PROVIDER], schedule=None, start_date=start, catchup=False) as provider:
        TimedBatchOperator(
            task_id=TASK_ID,
            bench_settings=settings,
            job_name="overhead-batch-operator",
            job_definition=settings["job_definition_arn"],
            job_queue=settings["job_queue_arn"],
            poll_interval=max(1, round(interval)),
            deferrable=False,
            aws_conn_id="aws_default",
        )
    return {OURS: ours, PROVIDER: provider}
