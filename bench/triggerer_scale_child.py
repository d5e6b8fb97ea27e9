"""The waiting side of bench.triggerer_scale: one asyncio loop that waits on N jobs, as a triggerer would.

Run by the parent as ``python -m bench.triggerer_scale --child ours|events|amazon --url URL --interval I
--sleep S``: it imports what the triggers need, prints ``ready``, reads the job ids (one JSON line on stdin),
runs one trigger per job in one loop until every trigger fired, and prints one JSON ``result`` line. Its own
CPU time, RSS and the arrival time of each event are measured here; the emulator's call counts are read
around the wait. For ``ours`` and ``events`` (the same trigger; the parent gave ``events`` the
``AIRFLOW__BATCH_RUNNER__EVENTS_*`` variables) it also times the shared poller's rounds and calls, the
events queue's reads, and when each trigger knew its job's end (``PollTrace``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import resource
import sys
import threading
import time
from typing import Any

REGION = "us-east-1"
CONN_ID = "aws_emu"  # the Airflow connection BatchJobTrigger uses, from AIRFLOW_CONN_AWS_EMU
PROTOCOL = "@@triggerer-scale "  # prefix of the child's lines meant for the parent
OURS = ("ours", "events")  # BatchRunnerTrigger: polling only, and with Batch's events from SQS
TERMINAL = ("SUCCEEDED", "FAILED")


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def make_trigger(impl: str, job_id: str, args: argparse.Namespace) -> Any:
    if impl in OURS:
        from airflow_batch_runner.triggers.batch_runner import BatchRunnerTrigger

        return BatchRunnerTrigger(
            job_id=job_id,
            deadline=time.time() + args.sleep + 3600,
            limit="1 h",
            poll_interval=args.interval,
            aws_conn_id=None,
            region_name=REGION,
            overrides={"endpoint_override": args.url},
        )
    from airflow.providers.amazon.aws.triggers.batch import BatchJobTrigger

    delay = max(1, round(args.interval))
    return BatchJobTrigger(
        job_id=job_id,
        aws_conn_id=CONN_ID,
        region_name=REGION,
        waiter_delay=delay,
        waiter_max_attempts=math.ceil((args.sleep + 600) / delay),
    )


def warm_imports(impl: str) -> None:
    """Load the modules a trigger needs before measuring: imports are no part of waiting."""
    from airflow_batch_runner.triggers import batch_runner  # noqa: F401

    if impl == "amazon":
        import aiobotocore.session  # noqa: F401
        from airflow.providers.amazon.aws.triggers import batch  # noqa: F401
        from airflow.providers.amazon.aws.utils import waiter_with_logging  # noqa: F401


class PollTrace:
    """Times the shared poller's rounds and AWS calls (``ours`` and ``events``), leaving its code as it is.

    The poller's ``poll_once`` (a round over every watched job: each interval when polling, each sweep with
    events), the trigger's final log read and the hook's calls are wrapped where they are looked up: the
    class attributes for the poller, the trigger and the hook, the boto3 client instance for DescribeJobs and
    FilterLogEvents. Each call is kept as (start, end, CPU of its thread, of which botocore's response
    parsing). For every job it keeps the start of the first DescribeJobs call that answered it SUCCEEDED or
    FAILED, and the moment its trigger knew the end (its final log read began): an event's delay splits into
    "job end -> seen", "seen -> known" and "known -> event" (the final log read, which waits for CloudWatch
    Logs' ingestion allowance after ``stoppedAt``). With events, each read of the queue is kept as (start,
    end, messages), and the end of the first read that brought a job's SUCCEEDED or FAILED event.
    """

    def __init__(self) -> None:
        self.polls: list[tuple[float, float, bool]] = []  # (start, end, a sweep while events flowed)
        self.describe_calls: list[tuple[float, float, float, float]] = []
        self.log_calls: list[tuple[float, float, float, float]] = []
        self.receives: list[tuple[float, float, int]] = []
        self.seen_terminal: dict[str, float] = {}
        self.event_terminal: dict[str, float] = {}
        self.known: dict[str, float] = {}
        self.local = threading.local()

    def install(self) -> None:
        from airflow_batch_runner.hooks.batch_runner import BatchRunnerHook
        from airflow_batch_runner.triggers.batch_runner import BatchRunnerTrigger
        from airflow_batch_runner.triggers.poller import SharedPoller

        trace = self
        poll_once = SharedPoller.poll_once
        describe_jobs = BatchRunnerHook.describe_jobs
        filter_log_events_page = BatchRunnerHook.filter_log_events_page
        receive_events = BatchRunnerHook.receive_events
        read_last_lines = BatchRunnerTrigger._read_last_lines

        async def traced_poll_once(poller: SharedPoller, *args: Any, **kwargs: Any) -> None:
            start = time.time()
            try:
                await poll_once(poller, *args, **kwargs)
            finally:
                trace.polls.append((start, time.time(), bool(kwargs.get("sweep", args[0] if args else False))))

        async def traced_read_last_lines(trigger: BatchRunnerTrigger, *args: Any, **kwargs: Any) -> None:
            trace.known.setdefault(trigger.job_id, time.time())
            await read_last_lines(trigger, *args, **kwargs)

        def traced_receive_events(hook: BatchRunnerHook, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
            start = time.time()
            messages = receive_events(hook, *args, **kwargs)
            end = time.time()
            trace.receives.append((start, end, len(messages)))
            for message in messages:
                try:
                    detail = json.loads(message["Body"])["detail"]
                except (KeyError, TypeError, ValueError):
                    continue
                if detail.get("status") in TERMINAL:
                    trace.event_terminal.setdefault(str(detail.get("jobId")), end)
            return messages

        def traced_describe_jobs(hook: BatchRunnerHook, ids: Any) -> dict[str, dict[str, Any]]:
            trace.wrap(hook.batch, "describe_jobs", trace.describe_calls, note_terminal=True)
            return describe_jobs(hook, ids)

        def traced_filter_log_events_page(
            hook: BatchRunnerHook, streams: Any, start_time: int, token: str | None = None
        ) -> tuple[list[dict[str, Any]], str | None]:
            trace.wrap(hook._logs_single_try, "filter_log_events", trace.log_calls)
            return filter_log_events_page(hook, streams, start_time, token)

        setattr(SharedPoller, "poll_once", traced_poll_once)  # noqa: B010
        setattr(BatchRunnerHook, "describe_jobs", traced_describe_jobs)  # noqa: B010
        setattr(BatchRunnerHook, "filter_log_events_page", traced_filter_log_events_page)  # noqa: B010
        setattr(BatchRunnerHook, "receive_events", traced_receive_events)  # noqa: B010
        setattr(BatchRunnerTrigger, "_read_last_lines", traced_read_last_lines)  # noqa: B010

    def wrap(
        self, client: Any, name: str, calls: list[tuple[float, float, float, float]], note_terminal: bool = False
    ) -> None:
        original = getattr(client, name)
        if getattr(original, "traced", False):
            return
        local = self.local

        def before_parse(**_: Any) -> None:
            local.parse_started = time.thread_time()

        def parsed(**_: Any) -> None:
            local.parse += time.thread_time() - local.parse_started

        def traced(**kwargs: Any) -> Any:
            start, cpu = time.time(), time.thread_time()
            local.parse = 0.0
            answer = original(**kwargs)
            calls.append((start, time.time(), time.thread_time() - cpu, local.parse))
            if note_terminal:
                for job in answer["jobs"]:
                    if job["status"] in TERMINAL:
                        self.seen_terminal.setdefault(job["jobId"], start)
            return answer

        client.meta.events.register("before-parse", before_parse)
        client.meta.events.register("response-received", parsed)
        traced.traced = True  # type: ignore[attr-defined]
        setattr(client, name, traced)

    def as_dict(self) -> dict[str, Any]:
        return {
            "polls": self.polls,
            "describe_calls": self.describe_calls,
            "log_calls": self.log_calls,
            "receives": self.receives,
            "seen_terminal": self.seen_terminal,
            "event_terminal": self.event_terminal,
            "known": self.known,
        }


class WarningsKept(logging.Handler):
    """The events source's warnings (queue down, a sweep that found an unannounced change), as they were said."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.said: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.said.append((record.created, record.getMessage()))


def events_counts() -> dict[str, Any]:
    """What this process's events source did (``events`` only): messages received, deleted, left for others."""
    from airflow_batch_runner.triggers import events

    sources = [s for per_loop in list(events._SOURCES.values()) for s in per_loop.values()]
    return {
        "sources": len(sources),
        "received": sum(s.received for s in sources),
        "deleted": sum(s.deleted for s in sources),
        "left": sum(s.left for s in sources),
        "down": [s.down for s in sources if s.down],
        "distrusted": any(s.distrust_until > 0 for s in sources),
    }


async def wait_all(impl: str, ids: list[str], args: argparse.Namespace) -> dict[str, Any]:
    from airflow_batch_runner.emulator.testing import control

    events: dict[str, dict[str, Any]] = {}
    samples: list[tuple[float, float, float]] = []
    lags: list[float] = []
    trace = PollTrace()
    waiting_since: list[float] = []  # amazon: when each trigger, its client made, starts its waiter
    warnings = WarningsKept()
    if impl in OURS:
        trace.install()
        logging.getLogger("airflow_batch_runner.triggers.events").addHandler(warnings)
    else:
        from airflow.providers.amazon.aws.triggers import base

        async_wait = base.async_wait

        async def noted_async_wait(*wait_args: Any, **wait_kwargs: Any) -> None:
            waiting_since.append(time.time())
            await async_wait(*wait_args, **wait_kwargs)

        setattr(base, "async_wait", noted_async_wait)  # noqa: B010

    async def one(job_id: str) -> None:
        trigger = make_trigger(impl, job_id, args)
        run = trigger.run()
        more = 0  # events after the first: a trigger must yield exactly one
        try:
            event = await run.__anext__()
            received = time.time()
            if impl in OURS:
                try:
                    while True:
                        await asyncio.wait_for(run.__anext__(), 5.0)
                        more += 1
                except (StopAsyncIteration, asyncio.TimeoutError):
                    pass
        finally:
            await run.aclose()  # as the triggerer does once a trigger fired: its cleanup runs
        payload = dict(event.payload)
        record: dict[str, Any] = {"t": received, "status": payload.get("status"), "more": more}
        if impl in OURS:
            record["job_status"] = (payload.get("description") or {}).get("status")
            record["last_lines"] = payload.get("last_lines", [])[-1:]
            record["message"] = payload.get("message")
        else:
            record["message"] = payload.get("message")
        events[job_id] = record

    async def sample(t0: float, cpu0: float) -> None:
        """CPU and RSS every second, and how late the loop wakes this task: the event loop's lag."""
        while True:
            samples.append((time.monotonic() - t0, time.process_time() - cpu0, rss_mib()))
            before = time.monotonic()
            await asyncio.sleep(1.0)
            lags.append(time.monotonic() - before - 1.0)

    stats_before = control(args.url, "stats")["calls"]
    rss_start = rss_mib()
    started_wall = time.time()
    t0 = time.monotonic()
    cpu0 = time.process_time()
    sampler = asyncio.get_running_loop().create_task(sample(t0, cpu0))
    waiting = [asyncio.ensure_future(one(job_id)) for job_id in ids]
    done, pending = await asyncio.wait(waiting, timeout=args.sleep + 30 * args.interval + 300)
    elapsed = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    samples.append((elapsed, cpu, rss_mib()))
    stats_after = control(args.url, "stats")["calls"]
    sampler.cancel()
    for task in pending:
        task.cancel()
    errors = [repr(task.exception()) for task in done if task.exception() is not None]
    return {
        "impl": impl,
        "jobs": len(ids),
        "interval": args.interval,
        "started": started_wall,
        "elapsed": elapsed,
        "cpu": cpu,
        "rss_start_mib": rss_start,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "stats_before": stats_before,
        "stats_after": stats_after,
        "events": events,
        "pending": len(pending),
        "errors": errors[:5],
        "samples": samples,
        "loop_lag_max": max(lags, default=0.0),
        "trace": trace.as_dict(),
        "waiting_since": waiting_since,
        "events_source": events_counts() if impl == "events" else None,
        "warnings": warnings.said,
    }


def child_main(args: argparse.Namespace) -> int:
    impl = args.child
    warm_imports(impl)
    print(f"{PROTOCOL}ready", flush=True)
    line = sys.stdin.readline()
    if not line:
        return 1  # the parent went away before submitting
    ids = json.loads(line)
    result = asyncio.run(wait_all(impl, ids, args))
    print(f"{PROTOCOL}result {json.dumps(result)}", flush=True)
    return 0
