"""The waiting side of bench.triggerer_scale: one asyncio loop that waits on N jobs, as a triggerer would.

Run by the parent as ``python -m bench.triggerer_scale --child ours|amazon --url URL --interval I --sleep S``:
it imports what the triggers need, prints ``ready``, reads the job ids (one JSON line on stdin), runs one
trigger per job in one loop until every trigger fired, and prints one JSON ``result`` line. Its own CPU
time, RSS and the arrival time of each event are measured here; the emulator's call counts are read
around the wait. For ``ours`` it also times the shared poller's rounds and calls (``PollTrace``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
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


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def make_trigger(impl: str, job_id: str, args: argparse.Namespace) -> Any:
    if impl == "ours":
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
    """Times the shared poller's rounds and AWS calls (``ours`` only), leaving its code as it is.

    The poller's ``poll_once`` and the hook's two calls are wrapped where they are looked up: the class
    attribute for the poller, the boto3 client instance for DescribeJobs and FilterLogEvents. Each call is
    kept as (start, end, CPU of its thread, of which botocore's response parsing). For every job it keeps the
    start of the first DescribeJobs call that answered it SUCCEEDED or FAILED, so that an event's delay
    splits into "job end -> seen" and "seen -> event".
    """

    def __init__(self) -> None:
        self.polls: list[tuple[float, float]] = []
        self.describe_calls: list[tuple[float, float, float, float]] = []
        self.log_calls: list[tuple[float, float, float, float]] = []
        self.seen_terminal: dict[str, float] = {}
        self.local = threading.local()

    def install(self) -> None:
        from airflow_batch_runner.hooks.batch_runner import BatchRunnerHook
        from airflow_batch_runner.triggers.poller import SharedPoller

        trace = self
        poll_once = SharedPoller.poll_once
        describe_jobs = BatchRunnerHook.describe_jobs
        filter_log_events_page = BatchRunnerHook.filter_log_events_page

        async def traced_poll_once(poller: SharedPoller, *args: Any, **kwargs: Any) -> None:
            start = time.time()
            try:
                await poll_once(poller, *args, **kwargs)
            finally:
                trace.polls.append((start, time.time()))

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
                    if job["status"] in ("SUCCEEDED", "FAILED"):
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
            "seen_terminal": self.seen_terminal,
        }


async def wait_all(impl: str, ids: list[str], args: argparse.Namespace) -> dict[str, Any]:
    from airflow_batch_runner.emulator.testing import control

    events: dict[str, dict[str, Any]] = {}
    samples: list[tuple[float, float, float]] = []
    lags: list[float] = []
    trace = PollTrace()
    waiting_since: list[float] = []  # amazon: when each trigger, its client made, starts its waiter
    if impl == "ours":
        trace.install()
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
        try:
            event = await run.__anext__()
        finally:
            await run.aclose()  # as the triggerer does once a trigger fired: its cleanup runs
        received = time.time()
        payload = dict(event.payload)
        record: dict[str, Any] = {"t": received, "status": payload.get("status")}
        if impl == "ours":
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
