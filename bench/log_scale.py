"""Container logs at scale: BatchRunnerTrigger's log reading beside the Amazon provider's BatchOperator.

    .venv/bin/python -m bench.log_scale [--jobs 100 1000] [--interval 5] [--duration 150]
        [--impl ours ours-throttled amazon-deferred amazon-worker]

For each N and implementation, on a fresh emulator (request-rate quotas and the 0.5 s Logs ingestion
delay on, as every test meets them): N jobs of D seconds, a tenth each ``i % 10`` of a mix of
chatty (0-1: bursts of 10 lines every 2 s, 5 lines a second), slow (2-4: a line every 15 s) and silent
(5-9: nothing). Once every container runs, this process waits on all of them in one asyncio loop, as
a triggerer would (or, ``amazon-worker``, one log-fetching thread per job, as N worker slots would).

- ``ours``: one ``BatchRunnerTrigger`` per job, all sharing one poller and its log reader
  (``[batch_runner] logs_calls_per_second``, default 2).
- ``ours-throttled``: the same with every FilterLogEvents answered ThrottlingException (the emulator's
  fault endpoint): the lines are lost, the job's end must not be.
- ``amazon-deferred``: ``BatchOperator(deferrable=True, awslogs_enabled=True)``: ``BatchJobTrigger``
  waits (reading no logs) and, once it fires, ``execute_complete`` reads the last 10,000 lines with one
  GetLogEvents (``AwsTaskLogFetcher.get_last_log_messages``), done here in a thread pool per event.
- ``amazon-worker``: ``BatchOperator(awslogs_enabled=True)`` on workers: one ``AwsTaskLogFetcher``
  thread per job (GetLogEvents with a continuation token every ``awslogs_fetch_interval``, set to the
  interval; its default is 30 s), stopped at the job's end (its final read). The jobs' ends are
  detected here by one DescribeJobs per 100 jobs, not by N workers' own polls.

Figures: lines delivered against lines written (loss), events read per event delivered, Logs calls a
second (mean, and the highest over any 5 s), throttled calls, the lag from a line's timestamp to its
delivery (p50, p99), job end -> event (or -> log fetch done) p50/max, and this process's CPU per
interval. Targets (ours, N = 1000): ratio <= 2, calls within the budget, end -> event <= one interval
+ 1 s with Logs healthy and throttled, p99 lag <= 3 intervals. The amazon peers need aiobotocore:
``.venv/bin/pip install --no-deps aiobotocore==3.10.0 aioitertools``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import logging
import math
import os
import platform
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bench.triggerer_scale import credentials_env
from bench.triggerer_scale_child import CONN_ID, REGION

TARGET_MIN_N = 100  # the performance targets are checked from this N on
IMPLEMENTATIONS = ("ours", "ours-throttled", "amazon-deferred", "amazon-worker")
KINDS = ("chatty",) * 2 + ("slow",) * 3 + ("silent",) * 5
LOG_GROUP = "/aws/batch/job"


def commands(duration: float) -> dict[str, str]:
    bursts, slow = max(1, int(duration // 2)), max(1, int(duration // 15))
    gap = min(15.0, duration)  # a line every 15 s; a shorter job (a smoke run) sleeps its duration once
    return {
        "chatty": f'for b in $(seq 1 {bursts}); do for i in 0 1 2 3 4 5 6 7 8 9; do echo "c $b-$i"; done; '
                  "sleep 2; done",
        "slow": f'for b in $(seq 1 {slow}); do echo "s $b"; sleep {gap:g}; done',
        "silent": f"sleep {duration:g}",
    }


def expected_lines(kind: str, duration: float) -> int:
    return {"chatty": 10 * max(1, int(duration // 2)), "slow": max(1, int(duration // 15)), "silent": 0}[kind]


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def fmt(value: float, digits: int = 2) -> str:
    return "—" if value != value else f"{value:.{digits}f}"


@dataclass
class Result:
    impl: str
    n: int
    interval: float
    load: float
    wait_s: float = float("nan")
    written: int = 0
    delivered: int = 0
    lost_jobs: int = 0
    out_of_order_jobs: int = 0
    events_read: int = 0
    log_calls: int = 0
    throttled: int = 0
    peak_calls_5s: float = float("nan")
    lags: list[float] = field(default_factory=list)  # of the lines written once the wait began
    wait_began: float = math.inf  # wall time
    backlog: int = 0  # lines written before the wait began (their lag says when the wait began, not how it reads)
    ingestion: list[float] = field(default_factory=list)  # the emulator's ingestion delay of each line (ours)
    end_to_event: list[float] = field(default_factory=list)
    end_to_seen: list[float] = field(default_factory=list)  # ours: job end -> the poller's DescribeJobs shows it
    seen_to_event: list[float] = field(default_factory=list)  # ours: -> the event (the final read's part)
    # ours: the slowest job's end -> event split in (end -> seen, seen -> event)
    worst_split: tuple[float, float] | None = None
    lags_by_stream: dict[str, list[float]] = field(default_factory=dict)  # ours
    lags_by_kind: dict[str, list[float]] = field(default_factory=dict)  # ours
    cpu_s: float = float("nan")
    warnings: int = 0
    problems: list[str] = field(default_factory=list)

    def add_lag(self, written: float, delivered: float, stream: str | None = None) -> None:
        """A line's lag, when it was written while watched: in Airflow a trigger or a worker waits from
        SubmitJob on, here the wait begins once every container runs (the first jobs' early lines are
        older than any watcher)."""
        if written < self.wait_began:
            self.backlog += 1
            return
        self.lags.append(delivered - written)
        if stream is not None:
            self.lags_by_stream.setdefault(stream, []).append(delivered - written)

    @property
    def calls_per_second(self) -> float:
        return self.log_calls / self.wait_s if self.wait_s == self.wait_s and self.wait_s > 0 else float("nan")

    @property
    def ratio(self) -> float:
        return self.events_read / self.delivered if self.delivered else float("nan")

    @property
    def cpu_per_interval(self) -> float:
        return self.cpu_s / (self.wait_s / self.interval) if self.wait_s == self.wait_s else float("nan")


class CallSampler:
    """Logs read calls (FilterLogEvents + GetLogEvents) counted by the emulator, twice a second."""

    def __init__(self, url: str) -> None:
        from airflow_batch_runner.emulator.testing import control

        self.control = control
        self.url = url
        self.samples: list[tuple[float, int]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def count(self) -> int:
        logs = self.control(self.url, "stats")["calls"].get("logs", {})
        return int(logs.get("FilterLogEvents", 0) + logs.get("GetLogEvents", 0))

    def _run(self) -> None:
        while not self.stopping.is_set():
            count = self.count()  # the time after the answer: a slow answer must not shrink a window
            self.samples.append((time.monotonic(), count))
            self.stopping.wait(0.5)

    def stop(self) -> float:
        """The highest call rate over any 5 s window."""
        self.stopping.set()
        self.thread.join(timeout=30)
        peak = 0.0
        for i, (t0, c0) in enumerate(self.samples):
            for t1, c1 in self.samples[i + 1:]:
                if t1 - t0 >= 5.0:
                    peak = max(peak, (c1 - c0) / (t1 - t0))
                    break
        return peak


def lines_of(messages: list[str]) -> tuple[int, bool]:
    """How many container lines, and whether they are in the order written."""
    ours = [m for m in messages if m[:2] in ("c ", "s ")]
    keys = []
    for m in ours:
        body = m[2:]
        keys.append(tuple(int(x) for x in body.split("-")) if "-" in body else (int(body),))
    return len(ours), keys == sorted(keys) and len(set(keys)) == len(keys)


# ours


async def wait_ours(ids: list[str], url: str, args: argparse.Namespace, r: Result) -> dict[str, Any]:
    from airflow_batch_runner import log_positions, task_log
    from airflow_batch_runner.triggers import poller as poller_module
    from airflow_batch_runner.triggers.batch_runner import BatchRunnerTrigger
    from airflow_batch_runner.triggers.poller import shared_poller

    accept = log_positions.accept
    job_state = poller_module.job_state
    seen: dict[str, float] = {}

    def timed_job_state(description: dict[str, Any]) -> Any:
        # When the poller first shows a job over: splits job end -> event into its two parts.
        if description.get("status") in ("SUCCEEDED", "FAILED"):
            seen.setdefault(description["jobId"], time.time())
        return job_state(description)

    def timed_accept(cursor: Any, events: Any) -> list[str]:
        events = list(events)
        before = set(cursor.seen)
        new = accept(cursor, events)
        now = time.time()
        for event in events:
            if str(event.get("eventId", "")) in cursor.seen and str(event.get("eventId", "")) not in before:
                r.add_lag(event["timestamp"] / 1000, now, cursor.stream)
                r.ingestion.append((event.get("ingestionTime", event["timestamp"]) - event["timestamp"]) / 1000)
        return new

    delivered: dict[str, list[str]] = defaultdict(list)
    events: dict[str, tuple[dict[str, Any], float]] = {}

    class Quiet:
        """The triggers' logger: lines kept by job instead of printed (a thousand jobs' lines would
        drown the output), and the final read's warnings counted."""

        def __init__(self) -> None:
            self.job_id = ""

        def info(self, message: str, *values: Any) -> None:
            if message == "[%s] %s" and values[0] == "main":  # task_log.show_lines
                delivered[self.job_id].append(str(values[1]))

        def warning(self, message: str, *values: Any) -> None:
            if "Could not read the last lines" in message:
                r.warnings += 1

    def quiet_log(trigger: BatchRunnerTrigger) -> Quiet:
        logger = trigger.__dict__.get("_bench_log")
        if logger is None:
            logger = trigger.__dict__["_bench_log"] = Quiet()
            logger.job_id = trigger.job_id
        return logger

    def trigger(job_id: str) -> BatchRunnerTrigger:
        return BatchRunnerTrigger(job_id=job_id, deadline=time.time() + 3600, limit="1 h",
                                  poll_interval=args.interval, aws_conn_id=None, region_name=REGION,
                                  overrides={"endpoint_override": url})

    original_log = BatchRunnerTrigger.__dict__.get("log")
    setattr(log_positions, "accept", timed_accept)  # noqa: B010
    setattr(poller_module, "job_state", timed_job_state)  # noqa: B010
    setattr(BatchRunnerTrigger, "log", property(quiet_log))  # noqa: B010
    async def one(job_id: str) -> None:
        waiting = trigger(job_id)
        run: Any = waiting.run()
        try:
            event = await run.__anext__()
        finally:
            await run.aclose()
        events[job_id] = (dict(event.payload), time.time())
        # What the trigger held back from the job's end on (its final read's lines, its warnings) is written
        # by the worker when the task resumes: count it as the task log would have it.
        task_log.replay(quiet_log(waiting), event.payload.get("held_log"))

    try:
        waiting = [asyncio.ensure_future(one(j)) for j in ids]
        await asyncio.wait(waiting, timeout=args.duration + 600)
        key = trigger(ids[0])._poller_key()
        reader = shared_poller(key, lambda: None).logs  # type: ignore[arg-type,return-value]
        r.events_read = reader.events_read
    finally:
        setattr(log_positions, "accept", accept)  # noqa: B010
        setattr(poller_module, "job_state", job_state)  # noqa: B010
        if original_log is None:
            delattr(BatchRunnerTrigger, "log")
        else:
            setattr(BatchRunnerTrigger, "log", original_log)  # noqa: B010
    return {"delivered": delivered, "events": events, "seen": seen}


# the Amazon provider's BatchOperator


def peer_hook() -> Any:
    from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook

    return AwsLogsHook(aws_conn_id=CONN_ID, region_name=REGION)


async def wait_amazon_deferred(ids: list[str], streams: dict[str, str], args: argparse.Namespace,
                               r: Result) -> dict[str, Any]:
    """BatchJobTrigger, then execute_complete's one GetLogEvents of the last 10,000 lines."""
    from airflow.providers.amazon.aws.triggers.batch import BatchJobTrigger

    delay = max(1, round(args.interval))
    delivered: dict[str, list[str]] = {}
    events: dict[str, tuple[dict[str, Any], float]] = {}
    pool = ThreadPoolExecutor(8)
    client = peer_hook().conn

    def fetch(job_id: str) -> None:
        # AwsTaskLogFetcher.get_last_log_messages(10000), with the events' timestamps kept for the lag
        try:
            page = client.get_log_events(logGroupName=LOG_GROUP, logStreamName=streams[job_id],
                                         startFromHead=False, limit=10000)
        except Exception:
            r.warnings += 1  # "Unable to retrieve CloudWatch logs"
            delivered[job_id] = []
            return
        now = time.time()
        r.events_read += len(page["events"])
        for e in page["events"]:
            r.add_lag(e["timestamp"] / 1000, now)
        delivered[job_id] = [e["message"] for e in page["events"]]

    async def one(job_id: str) -> None:
        trigger = BatchJobTrigger(job_id=job_id, aws_conn_id=CONN_ID, region_name=REGION, waiter_delay=delay,
                                  waiter_max_attempts=math.ceil((args.duration + 600) / delay))
        run: Any = trigger.run()
        try:
            event = await run.__anext__()
        finally:
            await run.aclose()
        await asyncio.get_running_loop().run_in_executor(pool, fetch, job_id)
        events[job_id] = (dict(event.payload), time.time())

    waiting = [asyncio.ensure_future(one(j)) for j in ids]
    await asyncio.wait(waiting, timeout=args.duration + 600)
    pool.shutdown(wait=False)
    return {"delivered": delivered, "events": events}


def wait_amazon_worker(ids: list[str], streams: dict[str, str], batch: Any, args: argparse.Namespace,
                       r: Result) -> dict[str, Any]:
    """One AwsTaskLogFetcher thread per job; each stopped (and joined: its final read) at its job's end."""
    from airflow.providers.amazon.aws.utils.task_log_fetcher import AwsTaskLogFetcher

    delivered: dict[str, list[str]] = defaultdict(list)
    events: dict[str, tuple[dict[str, Any], float]] = {}

    class Collecting(logging.Handler):
        def __init__(self, job_id: str) -> None:
            super().__init__()
            self.job_id = job_id

        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if message.startswith("[") and "] " in message:
                stamp, text = message[1:].split("] ", 1)
                written = datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").replace(
                    tzinfo=datetime.UTC).timestamp()
                r.add_lag(written, time.time())
                r.events_read += 1
                delivered[self.job_id].append(text)
            elif "Error on retrieving" in message:
                r.warnings += 1

    fetchers: dict[str, Any] = {}
    for job_id in ids:
        logger = logging.getLogger(f"bench.log_scale.worker.{job_id}")
        logger.handlers, logger.propagate = [Collecting(job_id)], False
        logger.setLevel(logging.INFO)
        fetcher = AwsTaskLogFetcher(aws_conn_id=CONN_ID, region_name=REGION, log_group=LOG_GROUP,
                                    log_stream_name=streams[job_id],
                                    fetch_interval=datetime.timedelta(seconds=args.interval),
                                    logger=logger)  # type: ignore[arg-type]
        fetcher.start()
        fetchers[job_id] = fetcher
    pending = set(ids)
    deadline = time.monotonic() + args.duration + 600
    stopper = ThreadPoolExecutor(16)

    def stop(job_id: str, job: dict[str, Any]) -> None:
        fetchers[job_id].stop()
        fetchers[job_id].join()
        events[job_id] = ({"status": "success", "description": job}, time.time())

    while pending and time.monotonic() < deadline:
        started = time.monotonic()
        chunk = sorted(pending)
        for i in range(0, len(chunk), 100):
            for job in batch.describe_jobs(jobs=chunk[i:i + 100])["jobs"]:
                if job["status"] in ("SUCCEEDED", "FAILED"):
                    pending.discard(job["jobId"])
                    stopper.submit(stop, job["jobId"], job)
        time.sleep(max(0.0, args.interval - (time.monotonic() - started)))
    stopper.shutdown(wait=True)
    return {"delivered": delivered, "events": events}


# one measurement


def measure(impl: str, n: int, args: argparse.Namespace) -> Result:
    import boto3

    from airflow_batch_runner.emulator.testing import control, running_emulator
    from airflow_batch_runner.outcome import job_state
    from bench.emulator_capacity import (
        EmulatorProcesses,
        batch_client,
        run_parallel,
        setup_sleep_jobs,
        submit_within_quota,
        wait_for,
    )

    r = Result(impl=impl, n=n, interval=args.interval, load=os.getloadavg()[0])
    emu: EmulatorProcesses | None = None
    url = ""
    try:
        with running_emulator(step_delay=args.step_delay) as emulator_url:
            url = emulator_url
            emu = EmulatorProcesses()
            os.environ.update(credentials_env(url))
            session = boto3.session.Session()
            clients = [batch_client(url, session) for _ in range(8)]
            setups = {kind: setup_sleep_jobs(clients[0], f"log-scale-{kind}", cmd)
                      for kind, cmd in commands(args.duration).items()}
            kinds = [KINDS[i % 10] for i in range(n)]

            def submit(client: Any, i: int) -> str:
                queue, definition = setups[kinds[i]]
                return submit_within_quota(client, jobName=f"log-scale-{i:05d}", jobQueue=queue,
                                           jobDefinition=definition)

            ids = run_parallel(submit, range(n), clients)
            kind_of = dict(zip(ids, kinds, strict=True))
            wait_for("all containers started", lambda: emu.count("sh") + emu.count("sleep") >= n,
                     timeout=300, interval=0.5)
            streams: dict[str, str] = {}
            for i in range(0, n, 100):
                for job in clients[0].describe_jobs(jobs=ids[i:i + 100])["jobs"]:
                    containers = job["ecsProperties"]["taskProperties"][0]["containers"]
                    streams[job["jobId"]] = containers[0].get("logStreamName", "")
            if impl == "ours-throttled":
                control(url, "faults", {"logs:FilterLogEvents": {"throttle_rate": 1.0}})
            print(f"  {n} jobs running; {impl} waiting …", flush=True)
            sampler = CallSampler(url)
            calls0 = sampler.count()
            cpu0, t0 = time.process_time(), time.monotonic()
            r.wait_began = time.time()
            if impl.startswith("ours"):
                out = asyncio.run(wait_ours(ids, url, args, r))
            elif impl == "amazon-deferred":
                out = asyncio.run(wait_amazon_deferred(ids, streams, args, r))
            else:
                out = wait_amazon_worker(ids, streams, clients[0], args, r)
            r.wait_s = time.monotonic() - t0
            r.cpu_s = time.process_time() - cpu0
            r.log_calls = sampler.count() - calls0
            r.peak_calls_5s = sampler.stop()
            r.throttled = sum(v for k, v in control(url, "quotas")["throttled"].items() if k.startswith("logs:"))
            r.throttled += sum(v for k, v in control(url, "stats")["injected"].items() if k.startswith("logs:"))
            jobs: dict[str, dict[str, Any]] = {}
            for i in range(0, n, 100):
                for job in clients[0].describe_jobs(jobs=ids[i:i + 100])["jobs"]:
                    jobs[job["jobId"]] = job
            slowest = float("-inf")  # the end -> event of the job worst_split describes
            for job_id in ids:
                written = expected_lines(kind_of[job_id], args.duration)
                got, in_order = lines_of(out["delivered"].get(job_id, []))
                r.written += written
                r.delivered += got
                r.lost_jobs += got < written
                r.out_of_order_jobs += not in_order
                if job_id in out["events"] and jobs[job_id].get("stoppedAt"):
                    r.end_to_event.append(out["events"][job_id][1] - jobs[job_id]["stoppedAt"] / 1000)
                if job_id in out.get("seen", {}) and jobs[job_id].get("stoppedAt"):
                    r.end_to_seen.append(out["seen"][job_id] - jobs[job_id]["stoppedAt"] / 1000)
                    if job_id in out["events"]:
                        r.seen_to_event.append(out["events"][job_id][1] - out["seen"][job_id])
                        if r.end_to_event[-1] >= slowest:
                            slowest = r.end_to_event[-1]
                            r.worst_split = (r.end_to_seen[-1], r.seen_to_event[-1])
                stream = job_state(jobs[job_id]).log_stream
                if stream in r.lags_by_stream:
                    r.lags_by_kind.setdefault(kind_of[job_id], []).extend(r.lags_by_stream[stream])
            if len(out["events"]) < n:
                r.problems.append(f"{n - len(out['events'])} waits did not end")
    except Exception as exc:  # a broken measurement is reported, the others still run
        import traceback

        traceback.print_exc()
        r.problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        if emu is not None:
            emu.kill_leftovers(url)
    return r


def table(results: list[Result]) -> str:
    header = ["N", "implementation", "lines delivered / written", "jobs missing lines", "read / delivered",
              "Logs calls/s mean (peak 5 s)", "throttled", "line lag p50 / p99 s", "end → event p50 / max s",
              "CPU s / interval", "last lines unread"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        rows.append("| " + " | ".join([
            str(r.n), r.impl, f"{r.delivered} / {r.written}", str(r.lost_jobs), fmt(r.ratio),
            f"{fmt(r.calls_per_second)} ({fmt(r.peak_calls_5s)})", str(r.throttled),
            f"{fmt(pct(r.lags, 50), 1)} / {fmt(pct(r.lags, 99), 1)}",
            f"{fmt(pct(r.end_to_event, 50))} / {fmt(max(r.end_to_event, default=float('nan')))}",
            fmt(r.cpu_per_interval, 3), str(r.warnings),
        ]) + " |")
    return "\n".join(rows)


def check_targets(results: list[Result], interval: float, budget: float) -> list[tuple[str, bool]]:
    """Every line, at any N; the figures' targets from N = TARGET_MIN_N on (a smoke run's few jobs and short
    interval say nothing of them)."""
    checks: list[tuple[str, bool]] = []
    for r in results:
        if r.impl == "ours":
            checks.append(
                (f"ours N={r.n}: every line, once, in order ({r.delivered}/{r.written}, "
                 f"{r.out_of_order_jobs} jobs out of order)", r.delivered == r.written and not r.out_of_order_jobs))
        if r.n < TARGET_MIN_N:
            continue
        if r.impl == "ours":
            checks += [
                (f"ours N={r.n}: events read per event delivered {fmt(r.ratio)} <= 2", r.ratio <= 2),
                (f"ours N={r.n}: Logs calls {fmt(r.calls_per_second)}/s mean, {fmt(r.peak_calls_5s)}/s peak "
                 f"over 5 s, within the budget {budget:g}/s (two calls more per window: the reserve for a "
                 f"final read, and the window's edges)",
                 r.peak_calls_5s <= budget + 2 / 5),
                (f"ours N={r.n}: p99 line lag {fmt(pct(r.lags, 99), 1)} s <= 3 intervals",
                 pct(r.lags, 99) <= 3 * interval),
            ]
        if r.impl.startswith("ours"):
            worst = max(r.end_to_event, default=float("inf"))
            checks.append((f"{r.impl} N={r.n}: job end -> event max {fmt(worst)} s <= one interval + 1 s",
                           worst <= interval + 1 and len(r.end_to_event) == r.n))
    return checks


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.log_scale", description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=150.0, help="each job's length, s")
    parser.add_argument("--impl", nargs="+", choices=IMPLEMENTATIONS, default=list(IMPLEMENTATIONS))
    parser.add_argument("--step-delay", type=float, default=0.2)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from airflow_batch_runner.config import calls_per_second

    budget = calls_per_second()
    print(f"log scale: N = {' '.join(map(str, args.jobs))}, interval {args.interval:g} s, jobs of "
          f"{args.duration:g} s, budget {budget:g} Logs calls/s, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, load {os.getloadavg()[0]:.2f}", flush=True)
    results = []
    for n in args.jobs:
        for impl in args.impl:
            print(f"{impl}, N = {n} …", flush=True)
            r = measure(impl, n, args)
            results.append(r)
            print(f"  load {r.load:.2f}; " + json.dumps({
                "delivered": r.delivered, "written": r.written, "ratio": fmt(r.ratio),
                "calls_s": fmt(r.calls_per_second), "lag_p99": fmt(pct(r.lags, 99), 1),
                "end_event_max": fmt(max(r.end_to_event, default=float("nan"))), "cpu_interval": fmt(
                    r.cpu_per_interval, 3), "could_not_read_last_lines": r.warnings,
                "ingestion_delay_p99_max": f"{fmt(pct(r.ingestion, 99))} / "
                                           f"{fmt(max(r.ingestion, default=float('nan')))}",
                "end_seen_p50_max": f"{fmt(pct(r.end_to_seen, 50))} / "
                                    f"{fmt(max(r.end_to_seen, default=float('nan')))}",
                "seen_to_event_p50_p99_max": f"{fmt(pct(r.seen_to_event, 50))} / {fmt(pct(r.seen_to_event, 99))} / "
                                             f"{fmt(max(r.seen_to_event, default=float('nan')))}",
                "slowest_end_event_split_seen_event": " / ".join(map(fmt, r.worst_split or ())) or "\u2014",
                "lines_written_before_the_wait": r.backlog,
                "lag_p50_p99_by_kind": {kind: f"{fmt(pct(lags, 50), 1)} / {fmt(pct(lags, 99), 1)}"
                                        for kind, lags in sorted(r.lags_by_kind.items())},
                "problems": r.problems}),
                flush=True)
    print(f"\n## Log scale ({datetime.date.today().isoformat()}, {os.cpu_count()} CPUs)\n")
    print(table(results))
    print("\nLoad average (1 min) at each start: " + ", ".join(f"{r.impl}@{r.n} {r.load:.2f}" for r in results))
    failed = any(r.problems for r in results)
    for r in results:
        for problem in r.problems:
            print(f"PROBLEM ({r.impl}, N = {r.n}): {problem}")
    for text, ok in check_targets(results, args.interval, budget):
        failed = failed or not ok
        print(f"  {'PASS' if ok else 'FAIL'}: {text}")
    if any(r.n < TARGET_MIN_N for r in results):
        print(f"  the other targets are not checked below N = {TARGET_MIN_N}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
