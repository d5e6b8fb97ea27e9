"""Triggerer at scale: BatchRunnerTrigger (one shared poller), polling or with Batch's events, against the
Amazon provider's BatchJobTrigger.

    .venv/bin/python -m bench.triggerer_scale [--jobs 100 500 1000] [--interval 5] [--sleep 100]
        [--impl ours events amazon] [--events-faults none drop duplicate] [--events-sweep S]

For each N and each implementation, one measurement at a time, each on a fresh emulator: this (parent)
process starts the emulator, creates a compute environment, a queue and an ecsProperties job definition
whose main container runs ``sleep <S>; echo "done $AWS_BATCH_JOB_ID"; exit ${BENCH_EXIT:-0}`` with the
awslogs driver (S: 20 intervals unless ``--sleep``), starts the waiting child (``--child ours|events|amazon``,
the "triggerer", see ``bench/triggerer_scale_child.py``), submits the N jobs from 8 threads, waits until every
container runs, and hands the ids to the child. ``events`` is BatchRunnerTrigger with ``[batch_runner]
events_queue_url``: before the child starts, the parent sets up the queue, its DLQ and the EventBridge rule
on the job queue with ``python -m airflow_batch_runner.event_setup`` (as a user does) and gives the child
``AIRFLOW__BATCH_RUNNER__EVENTS_QUEUE_URL`` and ``..._EVENTS_SWEEP_INTERVAL``. Each ``--events-faults`` scenario
is a measurement of its own: ``none`` (events delivered once, in order), ``drop`` (the emulator drops
every event: the sweep finds the ends, then polling takes over; the sweep is 20 s unless ``--events-sweep``)
and ``duplicate`` (every event delivered twice, each copy up to 1 s late: out of order); in ``drop`` and
``duplicate`` every fourth job exits 1, so that each outcome is checked.

The child waits on the jobs in one asyncio loop, one trigger per job, and prints JSON: emulator call counts
around the wait, its CPU time and RSS, when each event arrived and (ours, events) when each trigger knew its
job's end, before its final log read. Meanwhile this process samples the emulator's call counts twice a
second. Then it reads every job's ``stoppedAt``, computes the figures, stops the emulator and every process
it started (also on a failure, Ctrl-C or SIGTERM), prints the tables, checks each fault scenario and the
targets at N = 1000. Exit status 1 when a check or target is missed or something went wrong. Each child's
log and JSON, and the jobs' ends and call counts the parent read, go to ``bench/out/``.

Per interval means per *interval begun* during the wait (``ceil(wait / interval)``) for call counts, and
per interval of wall time for CPU. S is 20 intervals so that at N = 1000 every BatchJobTrigger has made
its own client and polls for a few intervals before the first job ends (the "steady state" table).

The Amazon provider's trigger needs aiobotocore, which this project does not depend on:
``.venv/bin/pip install --no-deps aiobotocore==3.10.0 aioitertools`` (``--no-deps``: aiobotocore pins an
older botocore than the one installed; the calls used here work with it).
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import math
import os
import platform
import queue
import statistics
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bench.triggerer_scale_child import CONN_ID, OURS, PROTOCOL, REGION, child_main

NAME = "triggerer-scale"
IMPLEMENTATIONS = ("ours", "events", "amazon")
LABELS = {"ours": "BatchRunnerTrigger, polling", "events": "BatchRunnerTrigger, events", "amazon": "BatchJobTrigger"}
FAULTS = {  # --events-faults: what POST /_emulator/events is given before the jobs are submitted
    "none": {},
    "drop": {"drop_rate": 1.0},
    "duplicate": {"duplicate_rate": 1.0, "jitter": 1.0},
}
FAULT_LABELS = {"none": "", "drop": ", 100 % dropped", "duplicate": ", duplicated + reordered"}
DEFAULT_SWEEP = 60.0  # the product's default events_sweep_interval
DROP_SWEEP = 20.0  # the sweep with every event dropped, unless --events-sweep: the fallback is what is measured
FAIL_EVERY = 4  # with faults, every fourth job exits 1: each trigger must still report its own job's outcome
TARGET_N = 1000
OUT_DIR = Path(__file__).resolve().parent / "out"
CHILD_START_TIMEOUT = 180.0


def credentials_env(url: str) -> dict[str, str]:
    """The child's environment: dummy credentials, and the Airflow connection the Amazon trigger (and the events
    setup) uses."""
    conn = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": url, "region_name": REGION},
    }
    return {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(conn),
    }


# The parent: emulator, jobs, one child per measurement, figures


def label(impl: str, faults: str) -> str:
    return LABELS[impl] + (FAULT_LABELS[faults] if impl == "events" else "")


@dataclass
class Measurement:
    impl: str
    n: int
    interval: float
    load: float  # the machine's 1-minute load average when the measurement started
    faults: str = "none"  # events only: --events-faults scenario
    sweep: float = float("nan")  # events only: events_sweep_interval given to the child
    wait_s: float = float("nan")
    intervals: int = 0
    describe_calls: int = 0
    log_calls: int = 0
    cpu_s: float = float("nan")
    cpu_per_interval: float = float("nan")
    cpu_first_interval: float = float("nan")
    cpu_per_interval_after_first: float = float("nan")
    rss_start_mib: float = float("nan")
    peak_rss_mib: float = float("nan")
    delays: list[float] = field(default_factory=list)
    events_ok: int = 0
    loop_lag_max: float = float("nan")
    # steady state: from the moment every trigger polls (ours: first round done; amazon: every trigger's
    # client made and its waiter started) to the first job's end
    all_polling_s: float = float("nan")  # from the start of the wait
    steady_s: float = float("nan")
    steady_describe_per_interval: float = float("nan")
    steady_cpu_per_interval: float = float("nan")
    # ours only, from PollTrace: poll rounds, and each event's delay split at the DescribeJobs that saw the end
    polls: list[float] = field(default_factory=list)  # duration of each round (with events: each sweep)
    describe_phases: list[float] = field(default_factory=list)  # round start -> last DescribeJobs answered
    logs_phases: list[float] = field(default_factory=list)  # first FilterLogEvents sent -> last answered
    end_to_seen: list[float] = field(default_factory=list)
    seen_to_event: list[float] = field(default_factory=list)
    worst: str = ""
    cpu_describe: float = float("nan")  # CPU s per interval in DescribeJobs calls (their thread)
    cpu_describe_parse: float = float("nan")  # of which botocore parsing the answers
    cpu_logs: float = float("nan")  # CPU s per interval in FilterLogEvents calls
    # ours and events: job end -> its trigger knows it (its final log read begins), then that read -> the event
    known: list[float] = field(default_factory=list)
    final_reads: list[float] = field(default_factory=list)
    more_events: int = 0  # triggers that yielded more than one event
    # events only
    end_to_message: list[float] = field(default_factory=list)  # job end -> its terminal event read from SQS
    message_to_known: list[float] = field(default_factory=list)
    receives: int = 0  # ReceiveMessage calls during the wait
    sqs_calls: dict[str, int] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)  # what the events source counted
    warnings: list[str] = field(default_factory=list)  # what the events source said in the triggerer log
    problems: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return label(self.impl, self.faults)

    @property
    def key(self) -> str:
        return f"events-{self.faults}" if self.impl == "events" and self.faults != "none" else self.impl

    @property
    def steady_describe_per_minute(self) -> float:
        return self.steady_describe_per_interval * 60 / self.interval

    @property
    def describe_per_interval(self) -> float:
        return self.describe_calls / self.intervals if self.intervals else float("nan")

    @property
    def logs_per_interval(self) -> float:
        return self.log_calls / self.intervals if self.intervals else float("nan")

    @property
    def delay_median(self) -> float:
        return statistics.median(self.delays) if self.delays else float("nan")

    @property
    def delay_max(self) -> float:
        return max(self.delays) if self.delays else float("nan")

    @property
    def known_median(self) -> float:
        return statistics.median(self.known) if self.known else float("nan")

    @property
    def known_max(self) -> float:
        return max(self.known) if self.known else float("nan")


def setup_batch(client: Any, sleep: float) -> tuple[str, str]:
    from bench.emulator_capacity import setup_sleep_jobs

    return setup_sleep_jobs(client, NAME, f'sleep {sleep:g}; echo "done $AWS_BATCH_JOB_ID"; exit ${{BENCH_EXIT:-0}}')


def setup_events(url: str, job_queue: str, faults: str, log: IO[str]) -> str:
    """The events queue, its DLQ and the EventBridge rule for the bench's job queue, made as a user makes them
    (``python -m airflow_batch_runner.event_setup``, through the Airflow connection the child's BatchJobTrigger
    uses; what it logs goes to the child's log); then the delivery faults. Returns the queue URL."""
    from airflow_batch_runner.emulator.testing import control

    made = subprocess.run(
        [sys.executable, "-m", "airflow_batch_runner.event_setup", "--job-queue", job_queue, "--name", NAME,
         "--aws-conn-id", CONN_ID, "--region", REGION],
        stdout=subprocess.PIPE, stderr=log, text=True, env=credentials_env(url), timeout=CHILD_START_TIMEOUT,
        check=True,
    ).stdout
    log.write(made)
    log.flush()
    control(url, "events", FAULTS[faults])
    return made.split("events_queue_url = ", 1)[1].split()[0]


class StartEvents:
    """The EventBridge rule is disabled while the parent submits the jobs and waits for their containers, and
    enabled before the child's triggers start: the events of the jobs' start (PENDING to RUNNING), which a
    triggerer watching them from their submission on would have consumed as they came, are not delivered.

    Queued, 4 events per job would pile up before the child reads any. The emulator delivers each event with
    moto's SQS SendMessage, which walks every message of the queue (the queue's ``ApproximateNumberOf...``
    attributes) while the emulator's Batch holds its lock, and moto's ReceiveMessage does so for every message
    it returns: at N = 1000 the emulator slowed down so much that the jobs did not all start within 2 minutes,
    even with this process reading and deleting the messages as they came.
    """

    def __init__(self, url: str) -> None:
        import boto3

        self.events = boto3.session.Session().client(
            "events", endpoint_url=url, region_name=REGION, aws_access_key_id="testing",
            aws_secret_access_key="testing")
        self.events.disable_rule(Name=NAME)

    def flow(self) -> None:
        self.events.enable_rule(Name=NAME)


class StatsSampler:
    """The emulator's DescribeJobs and Logs call counts twice a second, read from this (parent) process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.samples: list[tuple[float, int, int]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from airflow_batch_runner.emulator.testing import control

        while not self.stopping.is_set():
            calls = control(self.url, "stats")["calls"]
            describe = calls.get("batch", {}).get("DescribeJobs", 0)
            self.samples.append((time.time(), describe, sum(calls.get("logs", {}).values())))
            self.stopping.wait(0.5)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=30)


def interpolate(points: Sequence[tuple[float, float]], t: float) -> float:
    """The value at ``t`` of the piecewise-linear curve through ``points`` (sorted by time)."""
    if not points or t < points[0][0] or t > points[-1][0]:
        return float("nan")
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        if t0 <= t <= t1:
            return v0 if t1 == t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)
    return points[-1][1]


def read_steady(
    m: Measurement, result: dict[str, Any], jobs: dict[str, dict[str, Any]], stats: list[tuple[float, int, int]]
) -> None:
    """Figures per interval while every trigger polls and no job has ended yet: no start-up, no wind-down.

    With events, the steady state begins once the events are trusted (the first read of the queue answered)
    and the events that came before the wait were read (the last read that brought messages before the first
    job's end; see ``StartEvents``)."""
    ends = [job["stoppedAt"] / 1000 for job in jobs.values() if job.get("stoppedAt")]
    if m.impl in OURS:
        polls = result["trace"]["polls"]
        all_polling = polls[0][1] if polls else float("nan")
        receives = result["trace"]["receives"]
        if m.impl == "events" and ends and receives:
            # Until its first read of the queue has answered, the poller does not trust the events yet and
            # polls every interval: the steady state begins after that read and the round under way then.
            read = receives[0][1]
            starting = [end for start, end, _ in polls if start <= read]
            backlog = [end for _, end, count in receives if count and end < min(ends)]
            all_polling = max([all_polling, read, *starting, *backlog])
    else:
        since = result["waiting_since"]
        all_polling = max(since) if len(since) == m.n else float("nan")
    if not ends or math.isnan(all_polling):
        return
    m.all_polling_s = all_polling - result["started"]
    first_end = min(ends)
    m.steady_s = first_end - all_polling
    if m.steady_s < m.interval:
        return  # no whole interval in which every trigger polls: the jobs ended first
    cpu = [(result["started"] + t, c) for t, c, _ in result["samples"]]
    describe = [(t, float(d)) for t, d, _ in stats]
    intervals = m.steady_s / m.interval
    m.steady_cpu_per_interval = (interpolate(cpu, first_end) - interpolate(cpu, all_polling)) / intervals
    m.steady_describe_per_interval = (
        interpolate(describe, first_end) - interpolate(describe, all_polling)
    ) / intervals


class Child:
    """The waiting process; its stdout lines are read by a thread so that reads can time out."""

    def __init__(
        self, impl: str, n: int, url: str, args: argparse.Namespace, log: IO[str], env: dict[str, str]
    ) -> None:
        cmd = [
            sys.executable, "-m", "bench.triggerer_scale", "--child", impl, "--url", url,
            "--jobs", str(n), "--interval", f"{args.interval:g}", "--sleep", f"{args.sleep:g}",
        ]
        self.log = log
        self.impl = impl
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
            env={**credentials_env(url), **env},
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(PROTOCOL):
                self.lines.put(line[len(PROTOCOL):].rstrip("\n"))
            else:
                self.log.write(line)  # anything else the child printed goes to its log
        self.lines.put(None)

    def expect(self, word: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"child {self.impl}: no {word!r} within {timeout:.0f} s")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"child exited with {self.proc.wait()} before {word!r}; see {self.log.name}")
            if line.split(" ", 1)[0] == word:
                return line[len(word):].strip()

    def send(self, payload: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(payload) + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdin:
            self.proc.stdin.close()


def measure(impl: str, n: int, args: argparse.Namespace, faults: str = "none") -> Measurement:
    import boto3

    from airflow_batch_runner.emulator.testing import running_emulator
    from bench.emulator_capacity import EmulatorProcesses, batch_client, run_parallel, submit_within_quota, wait_for

    m = Measurement(impl=impl, n=n, interval=args.interval, load=os.getloadavg()[0], faults=faults)
    OUT_DIR.mkdir(exist_ok=True)
    log_path = OUT_DIR / f"triggerer_scale-{m.key}-{n}.log"
    emu: EmulatorProcesses | None = None
    url = ""
    child: Child | None = None
    try:
        with open(log_path, "w") as log, running_emulator(step_delay=args.step_delay) as emulator_url:
            url = emulator_url
            emu = EmulatorProcesses()
            try:
                session = boto3.session.Session()
                clients = [batch_client(url, session) for _ in range(args.threads)]
                job_queue, definition = setup_batch(clients[0], args.sleep)
                env: dict[str, str] = {}
                start_events: StartEvents | None = None
                if impl == "events":
                    m.sweep = args.events_sweep or (DROP_SWEEP if faults == "drop" else DEFAULT_SWEEP)
                    queue_url = setup_events(url, job_queue, faults, log)
                    env = {
                        "AIRFLOW__BATCH_RUNNER__EVENTS_QUEUE_URL": queue_url,
                        "AIRFLOW__BATCH_RUNNER__EVENTS_SWEEP_INTERVAL": f"{m.sweep:g}",
                    }
                    start_events = StartEvents(url)
                child = Child(impl, n, url, args, log, env)
                child.expect("ready", CHILD_START_TIMEOUT)

                def submit(client: Any, i: int) -> str:
                    request: dict[str, Any] = {"jobName": f"{NAME}-{i:05d}", "jobQueue": job_queue,
                                               "jobDefinition": definition}
                    if fails(m, i):
                        request["ecsPropertiesOverride"] = {"taskProperties": [{"containers": [
                            {"name": "main", "environment": [{"name": "BENCH_EXIT", "value": "1"}]}]}]}
                    return submit_within_quota(client, **request)

                t0 = time.monotonic()
                ids = run_parallel(submit, range(n), clients)
                submitted_s = time.monotonic() - t0
                # The triggers start once every container runs. The emulator's Logs is moto's, whose
                # FilterLogEvents walks the streams dict unlocked: a stream created meanwhile (a container
                # starting) fails the call with a 500 ("dictionary changed size during iteration"), botocore
                # retries it after a backoff, and that delay is the emulator's, not the trigger's.
                wait_for("all containers started", lambda: emu.count("sleep") >= n, timeout=120, interval=0.25)
                if start_events is not None:
                    start_events.flow()
                print(
                    f"  {n} jobs submitted in {submitted_s:.1f} s, all running after {time.monotonic() - t0:.1f} s; "
                    f"{m.label} waiting …",
                    flush=True,
                )
                stats = StatsSampler(url)
                child.send(ids)
                try:
                    raw = child.expect("result", args.sleep + 30 * args.interval + 600)
                finally:
                    stats.stop()
                (OUT_DIR / f"triggerer_scale-{m.key}-{n}.json").write_text(raw)
                result = json.loads(raw)
                child.proc.wait(timeout=60)
                jobs: dict[str, dict[str, Any]] = {}
                for start in range(0, n, 100):
                    for job in clients[0].describe_jobs(jobs=ids[start:start + 100])["jobs"]:
                        jobs[job["jobId"]] = job
                (OUT_DIR / f"triggerer_scale-{m.key}-{n}-parent.json").write_text(json.dumps({
                    "jobs": {i: {k: jobs.get(i, {}).get(k) for k in ("status", "stoppedAt")} for i in ids},
                    "stats": stats.samples,
                }))
                read_result(m, result, ids, jobs)
                read_steady(m, result, jobs, stats.samples)
            except Exception as exc:
                traceback.print_exc()
                m.problems.append(f"{type(exc).__name__}: {exc}")
            finally:
                if child is not None:
                    child.stop()
                emu.descendants()  # remember every container process, to kill any the emulator leaves
    finally:
        if emu is not None:  # the emulator is stopped: none of its container processes may outlive it
            leftovers = emu.kill_leftovers(url)
            if leftovers:
                m.problems.append(f"{leftovers} container processes outlived the emulator")
    return m


def fails(m: Measurement, i: int) -> bool:
    """Whether the i-th job of this measurement exits 1."""
    return m.impl == "events" and m.faults != "none" and i % FAIL_EVERY == FAIL_EVERY - 1


def read_result(m: Measurement, result: dict[str, Any], ids: list[str], jobs: dict[str, dict[str, Any]]) -> None:
    before, after = result["stats_before"], result["stats_after"]
    m.wait_s = result["elapsed"]
    m.intervals = max(1, math.ceil(m.wait_s / m.interval))
    m.describe_calls = after["batch"].get("DescribeJobs", 0) - before["batch"].get("DescribeJobs", 0)
    m.log_calls = sum(after.get("logs", {}).values()) - sum(before.get("logs", {}).values())
    m.sqs_calls = {op: count - before.get("sqs", {}).get(op, 0) for op, count in after.get("sqs", {}).items()}
    m.cpu_s = result["cpu"]
    m.cpu_per_interval = m.cpu_s / (m.wait_s / m.interval)
    first = [(t, cpu) for t, cpu, _ in result["samples"] if t <= m.interval + 0.5]
    if first:
        t_first, m.cpu_first_interval = first[-1]
        if m.wait_s > t_first:
            m.cpu_per_interval_after_first = (m.cpu_s - m.cpu_first_interval) / ((m.wait_s - t_first) / m.interval)
    m.rss_start_mib = result["rss_start_mib"]
    m.peak_rss_mib = result["peak_rss_mib"]
    if result["pending"]:
        m.problems.append(f"{result['pending']} triggers fired no event in time")
    if result["errors"]:
        m.problems.append(f"trigger errors: {result['errors']}")
    events: dict[str, dict[str, Any]] = result["events"]
    wrong: list[str] = []
    for i, job_id in enumerate(ids):
        event, job = events.get(job_id), jobs.get(job_id, {})
        if event is None:
            continue
        expected = "FAILED" if fails(m, i) else "SUCCEEDED"
        m.more_events += bool(event.get("more"))
        ok = job.get("status") == expected and (
            (event["status"] == "done" and event.get("job_status") == expected
             and event.get("last_lines") == [f"done {job_id}"] and not event.get("more"))
            if m.impl in OURS else event["status"] == "success"
        )
        if ok:
            m.events_ok += 1
        elif len(wrong) < 3:
            wrong.append(f"{job_id}: event {event}, job {job.get('status')}")
        if job.get("stoppedAt"):
            m.delays.append(event["t"] - job["stoppedAt"] / 1000)
    if m.events_ok != m.n:
        m.problems.append(f"{m.n - m.events_ok} of {m.n} events wrong or missing, e.g. {wrong}")
    m.loop_lag_max = result["loop_lag_max"]
    if m.more_events:
        m.problems.append(f"{m.more_events} triggers yielded more than one event")
    if m.impl in OURS:
        read_trace(m, result["trace"], events, jobs)
    if m.impl == "events":
        m.source = result["events_source"] or {}
        m.warnings = [said for _, said in result["warnings"]]


def read_trace(
    m: Measurement, trace: dict[str, Any], events: dict[str, dict[str, Any]], jobs: dict[str, dict[str, Any]]
) -> None:
    intervals = m.wait_s / m.interval
    m.cpu_describe = sum(call[2] for call in trace["describe_calls"]) / intervals
    m.cpu_describe_parse = sum(call[3] for call in trace["describe_calls"]) / intervals
    m.cpu_logs = sum(call[2] for call in trace["log_calls"]) / intervals
    for start, end, _sweep in trace["polls"]:
        m.polls.append(end - start)
        describes = [e for s, e, *_ in trace["describe_calls"] if start <= s <= end]
        logs = [(s, e) for s, e, *_ in trace["log_calls"] if start <= s <= end]
        if describes:
            m.describe_phases.append(max(describes) - start)
        if logs:
            m.logs_phases.append(max(e for _, e in logs) - min(s for s, _ in logs))
    worst = (-1.0, "")
    m.receives = len(trace["receives"])
    for job_id, event in events.items():
        stopped = jobs.get(job_id, {}).get("stoppedAt", 0) / 1000
        seen, known = trace["seen_terminal"].get(job_id), trace["known"].get(job_id)
        message = trace["event_terminal"].get(job_id)
        if not stopped:
            continue
        if seen is not None:
            m.end_to_seen.append(seen - stopped)
            m.seen_to_event.append(event["t"] - seen)
        if known is not None:
            m.known.append(known - stopped)
            m.final_reads.append(event["t"] - known)
        if message is not None and known is not None:
            m.end_to_message.append(message - stopped)
            m.message_to_known.append(known - message)
        if seen is not None and event["t"] - stopped > worst[0]:
            split = (f"{seen - stopped:.2f} s job end -> DescribeJobs call that saw it + "
                     + (f"{known - seen:.2f} s that call -> trigger knows + {event['t'] - known:.2f} s final log read"
                        if known is not None else f"{event['t'] - seen:.2f} s that call -> event"))
            worst = (event["t"] - stopped, f"{event['t'] - stopped:.2f} s = {split}")
    m.worst = worst[1]

def fmt(value: float, digits: int = 1) -> str:
    return "—" if math.isnan(value) else f"{value:.{digits}f}"


def med_max(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} / {max(values):.2f}" if values else "—"


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def table(results: list[Measurement]) -> str:
    header = [
        "N", "trigger", "wait s (intervals)", "DescribeJobs / interval", "log calls / interval",
        "CPU s / interval", "CPU s: 1st interval / per later interval", "RSS at start / peak MiB",
        "job end -> trigger knows s, median / max", "job end -> event s, median / max", "events OK",
    ]
    rows = [
        [
            str(m.n), m.label, f"{fmt(m.wait_s)} ({m.intervals})",
            f"{fmt(m.describe_per_interval)} ({m.describe_calls})", f"{fmt(m.logs_per_interval)} ({m.log_calls})",
            fmt(m.cpu_per_interval, 3),
            f"{fmt(m.cpu_first_interval, 2)} / {fmt(m.cpu_per_interval_after_first, 3)}",
            f"{fmt(m.rss_start_mib, 0)} / {fmt(m.peak_rss_mib, 0)}",
            med_max(m.known), f"{fmt(m.delay_median, 2)} / {fmt(m.delay_max, 2)}", f"{m.events_ok}/{m.n}",
        ]
        for m in results
    ]
    return markdown(header, rows)


def details(results: list[Measurement]) -> str:
    """Where the time goes: the shared poller's rounds, and the event loop's lag, per measurement."""
    header = [
        "N", "trigger", "load avg at start", "loop lag max s",
        "CPU s / interval: DescribeJobs calls (parsing) / FilterLogEvents calls / the rest",
        "poll round (with events: sweep) s", "DescribeJobs phase s", "FilterLogEvents phase s",
        "job end -> seen s", "seen -> event s", "final log read s", "slowest event",
    ]
    rows = []
    for m in results:
        row = [str(m.n), m.label, fmt(m.load, 2), fmt(m.loop_lag_max, 2)]
        row.append(
            "—" if math.isnan(m.cpu_describe) else
            f"{m.cpu_describe:.3f} ({m.cpu_describe_parse:.3f}) / {m.cpu_logs:.3f} / "
            f"{m.cpu_per_interval - m.cpu_describe - m.cpu_logs:.3f}"
        )
        row += [med_max(m.polls), med_max(m.describe_phases), med_max(m.logs_phases)]
        row += [med_max(m.end_to_seen), med_max(m.seen_to_event), med_max(m.final_reads), m.worst or "—"]
        rows.append(row)
    return markdown(header, rows)


def events_table(results: list[Measurement]) -> str:
    """The events source at work: the queue's reads, the messages, the fallback."""
    header = [
        "N", "trigger", "sweep s", "sweeps (full rounds)", "ReceiveMessage calls", "SQS calls",
        "messages received / deleted / left for others", "job end -> its event read s", "event read -> trigger knows s",
        "what the triggerer log said",
    ]
    rows = []
    for m in results:
        if m.impl != "events":
            continue
        said = "; ".join(sorted({w.split(";")[0][:90] for w in m.warnings})) or "nothing"
        rows.append([
            str(m.n), m.label, fmt(m.sweep, 0), str(len(m.polls)), str(m.receives),
            ", ".join(f"{op} {count}" for op, count in sorted(m.sqs_calls.items()) if count) or "—",
            f"{m.source.get('received', 0)} / {m.source.get('deleted', 0)} / {m.source.get('left', 0)}",
            med_max(m.end_to_message), med_max(m.message_to_known), f"{len(m.warnings)}: {said}",
        ])
    return markdown(header, rows)


def steady_table(results: list[Measurement]) -> str:
    header = [
        "N", "trigger", "steady from s (all triggers polling; events: queued events read)", "steady window s",
        "DescribeJobs / interval", "DescribeJobs / minute", "CPU s / interval",
    ]
    rows = [
        [
            str(m.n), m.label, fmt(m.all_polling_s), fmt(m.steady_s), fmt(m.steady_describe_per_interval),
            fmt(m.steady_describe_per_minute), fmt(m.steady_cpu_per_interval, 3),
        ]
        for m in results
    ]
    return markdown(header, rows)


def check_targets(results: list[Measurement], interval: float) -> list[tuple[str, bool]]:
    """The performance targets, at N = TARGET_N."""
    by = {(m.key, m.n): m for m in results}
    ours, amazon, events = (by.get((key, TARGET_N)) for key in ("ours", "amazon", "events"))
    checks: list[tuple[str, bool]] = []
    if ours is not None:
        limit = math.ceil(TARGET_N / 100)
        checks.append((
            f"polling: DescribeJobs calls per interval {fmt(ours.describe_per_interval)} <= {limit}",
            ours.describe_per_interval <= limit,
        ))
        checks.append((
            f"polling: every event within one interval ({interval:g} s) of the job's end: "
            f"max {fmt(ours.delay_max, 2)} s, {ours.events_ok}/{TARGET_N} events",
            ours.events_ok == TARGET_N and len(ours.delays) == TARGET_N and ours.delay_max <= interval,
        ))
    if ours is not None and amazon is not None:
        checks.append((
            f"polling: CPU per interval {fmt(ours.cpu_per_interval, 3)} s <= a tenth of BatchJobTrigger's "
            f"{fmt(amazon.cpu_per_interval, 3)} s",
            ours.cpu_per_interval <= amazon.cpu_per_interval / 10,
        ))
    if events is not None and ours is not None:
        window = events.steady_s >= events.sweep
        checks.append((
            f"events: DescribeJobs calls per minute in steady state {fmt(events.steady_describe_per_minute)} <= a "
            f"tenth of polling's {fmt(ours.steady_describe_per_minute)}"
            + ("" if window else f" (steady window {fmt(events.steady_s)} s is under one sweep: use a longer --sleep)"),
            window and events.steady_describe_per_minute <= ours.steady_describe_per_minute / 10,
        ))
        checks.append((
            f"events: CPU per interval in steady state {fmt(events.steady_cpu_per_interval, 3)} s <= polling's "
            f"{fmt(ours.steady_cpu_per_interval, 3)} s (whole wait: {fmt(events.cpu_per_interval, 3)} vs "
            f"{fmt(ours.cpu_per_interval, 3)} s)",
            events.steady_cpu_per_interval <= ours.steady_cpu_per_interval,
        ))
    if events is not None:
        checks.append((
            f"events: job end -> its trigger knows it (final log read excluded) median {fmt(events.known_median, 2)}"
            f" s <= 1 s, max {fmt(events.known_max, 2)} s <= 2 s, {events.events_ok}/{TARGET_N} events",
            events.events_ok == TARGET_N and len(events.known) == TARGET_N
            and events.known_median <= 1.0 and events.known_max <= 2.0,
        ))
    return checks


def check_scenarios(results: list[Measurement]) -> list[tuple[str, bool]]:
    """What each events fault scenario must keep, at every N."""
    checks: list[tuple[str, bool]] = []
    for m in results:
        if m.impl != "events" or m.faults == "none":
            continue
        right = m.events_ok == m.n
        if m.faults == "drop":
            bound = m.sweep + m.interval
            checks.append((
                f"N = {m.n}, events 100 % dropped: every task ends within one sweep + one interval ({bound:g} s) of "
                f"its job's end (final log read excluded): max {fmt(m.known_max, 2)} s; {m.events_ok}/{m.n} events "
                f"with the right outcome",
                right and len(m.known) == m.n and m.known_max <= bound,
            ))
        else:
            checks.append((
                f"N = {m.n}, events duplicated and reordered: each trigger yields exactly one event with its job's "
                f"outcome: {m.events_ok}/{m.n} ({m.more_events} triggers with more than one)",
                right and m.more_events == 0,
            ))
    return checks


def write_figures(args: argparse.Namespace, results: list[Measurement], today: str) -> None:
    """The figures the docs site plots (docs/hooks.py), with what they were measured on."""
    rows = [
        {"trigger": m.label, "n": m.n, "describe_jobs_per_interval": round(m.describe_per_interval, 2),
         "event_delay_median_s": round(m.delay_median, 2), "event_delay_max_s": round(m.delay_max, 2)}
        for m in results if not m.problems
    ]
    args.figures.write_text(json.dumps({
        "source": f"python -m bench.triggerer_scale {' '.join(sys.argv[1:])}, {today}, {os.cpu_count()} CPUs, "
                  f"Python {platform.python_version()}",
        "interval_s": args.interval,
        "rows": rows,
    }, indent=2) + "\n")


def measurements(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(implementation, faults) to measure at each N, in this order."""
    return [(impl, faults) for impl in args.impl for faults in (args.events_faults if impl == "events" else ["none"])]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.triggerer_scale", description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[100, 500, 1000], help="N, one or more")
    parser.add_argument("--interval", type=float, default=5.0, help="poll interval and waiter_delay, s")
    parser.add_argument("--sleep", type=float, help="each job's sleep, s (default 20 intervals)")
    parser.add_argument("--impl", nargs="+", choices=IMPLEMENTATIONS, default=list(IMPLEMENTATIONS))
    parser.add_argument("--events-faults", nargs="+", choices=list(FAULTS), default=["none"],
                        help="events only: one measurement per scenario (default none)")
    parser.add_argument("--events-sweep", type=float,
                        help=f"events only: events_sweep_interval, s (default {DEFAULT_SWEEP:g}, {DROP_SWEEP:g} "
                        "with every event dropped)")
    parser.add_argument("--step-delay", type=float, default=0.2, help="emulator --step-delay")
    parser.add_argument("--threads", type=int, default=8, help="threads submitting the jobs")
    parser.add_argument("--figures", type=Path,
                        help="also write the figures the docs plot (DescribeJobs per interval and job end -> event "
                        "against N, per trigger) to this JSON file, e.g. docs/data/triggerer_scale.json")
    parser.add_argument("--child", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sleep is None:
        args.sleep = 20 * args.interval
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    from bench.emulator_capacity import sigterm_as_interrupt

    if "amazon" in args.impl:
        try:
            import aiobotocore  # noqa: F401
        except ImportError:
            print("BatchJobTrigger needs aiobotocore: .venv/bin/pip install --no-deps aiobotocore==3.10.0 "
                  "aioitertools", file=sys.stderr)
            return 2
    print(
        f"triggerer at scale: N = {' '.join(map(str, args.jobs))}, interval {args.interval:g} s, jobs of "
        f"`sleep {args.sleep:g}`, emulator step delay {args.step_delay:g} s, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    results: list[Measurement] = []
    started = time.monotonic()
    try:
        with sigterm_as_interrupt():
            for n in args.jobs:
                for impl, faults in measurements(args):
                    print(f"{label(impl, faults)}, N = {n} …", flush=True)
                    m = measure(impl, n, args, faults)
                    results.append(m)
                    print(
                        f"  wait {fmt(m.wait_s)} s, DescribeJobs/interval {fmt(m.describe_per_interval)}, "
                        f"CPU s/interval {fmt(m.cpu_per_interval, 3)}, job end -> trigger knows max "
                        f"{fmt(m.known_max, 2)} s, -> event max {fmt(m.delay_max, 2)} s",
                        flush=True,
                    )
    except KeyboardInterrupt:
        print("interrupted; emulator and children stopped", file=sys.stderr)
        return 130
    today = datetime.date.today().isoformat()
    if args.figures:
        write_figures(args, results, today)
    print(f"\n## Triggerer at scale ({today}, {os.cpu_count()} CPUs, total {time.monotonic() - started:.0f} s)\n")
    print(table(results))
    print("\n'Trigger knows': its final log read begins, i.e. the job's end reached the trigger; the event comes after "
          "that read, which waits for CloudWatch Logs' ingestion allowance after stoppedAt.")
    print("\nSteady state: from the moment every trigger polls to the first job's end (— if under one interval):\n")
    print(steady_table(results))
    print("\nWhere the time goes (median / max):\n")
    print(details(results))
    if any(m.impl == "events" for m in results):
        print("\nThe events queue (median / max):\n")
        print(events_table(results))
    failed = False
    for m in results:
        for problem in m.problems:
            failed = True
            print(f"\nPROBLEM ({m.label}, N = {m.n}): {problem}")
    scenarios = check_scenarios(results)
    if scenarios:
        print("\nEvents fault scenarios:")
        for text, ok in scenarios:
            failed = failed or not ok
            print(f"  {'PASS' if ok else 'FAIL'}: {text}")
    checks = check_targets(results, args.interval)
    if checks:
        print(f"\nTargets at N = {TARGET_N}:")
        for text, ok in checks:
            failed = failed or not ok
            print(f"  {'PASS' if ok else 'FAIL'}: {text}")
    else:
        print(f"\ntargets not checked: they are for N = {TARGET_N}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
