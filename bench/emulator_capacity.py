"""Emulator capacity: N concurrently running Batch jobs, and DescribeJobs(100) latency while they run.

    .venv/bin/python -m bench.emulator_capacity [--jobs 1000] [--sleep 120]

Starts the emulator in a child process, creates an EC2 compute environment and a queue, registers an
ecsProperties job definition whose one essential container runs ``/bin/sh -c "sleep <N>"``, submits the
jobs from a few threads, waits until every job is RUNNING and its ``sleep`` process exists, times
sequential DescribeJobs calls of 100 ids each spread over all jobs, reads the emulator's RSS and CPU
(its container processes excluded), then terminates every job and times how long until all are FAILED
and their processes are gone. The emulator and every process it started are stopped on any exit,
Ctrl-C included.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import http.client
import json
import os
import platform
import random
import signal
import statistics
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import boto3
import psutil
from botocore.config import Config
from botocore.exceptions import ClientError

from airflow_batch_runner.emulator.testing import control, running_emulator

REGION = "us-east-1"
NAME = "capacity"
TARGET_JOBS = 1000
TARGET_MEDIAN_MS = 50
T = TypeVar("T")
R = TypeVar("R")


# Small helpers


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def batch_client(url: str, session: boto3.session.Session, pool: int = 4) -> Any:
    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},  # no retry may hide a slow or failed call
        max_pool_connections=pool,
        connect_timeout=10,
        read_timeout=120,
    )
    return session.client(
        "batch",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )


def submit_within_quota(client: Any, **request: Any) -> str:
    """SubmitJob as a client of a real account makes it: over the 50-a-second quota (the emulator enforces it,
    as AWS does) a ``TooManyRequestsException`` is tried again after a growing, jittered pause."""
    for attempt in range(30):
        try:
            return str(client.submit_job(**request)["jobId"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TooManyRequestsException" or attempt == 29:
                raise
            time.sleep(min(1.0, 0.05 * (attempt + 1)) * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")


def run_parallel(fn: Callable[[Any, T], R], items: Sequence[T], clients: Sequence[Any]) -> list[R]:
    """``fn(client, item)`` for every item, each thread with its own client; stop early on any error."""
    local = threading.local()
    free = list(clients)
    free_lock = threading.Lock()

    def call(item: T) -> R:
        if not hasattr(local, "client"):
            with free_lock:
                local.client = free.pop()
        return fn(local.client, item)

    executor = ThreadPoolExecutor(max_workers=len(clients))
    futures: list[Future[R]] = []
    try:
        futures = [executor.submit(call, item) for item in items]
        return [f.result() for f in futures]
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def wait_for(what: str, check: Callable[[], bool], timeout: float, interval: float = 0.25) -> float:
    """Poll ``check`` until true; return the seconds it took."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{what}: not reached within {timeout:.0f} s")
        time.sleep(interval)
    return time.monotonic() - start


def until_valid(batch: Any, compute_environment: str | None = None, queue: str | None = None) -> None:
    """Until the compute environment and/or the job queue is VALID (one emulator step after creation)."""
    if compute_environment:
        wait_for("compute environment VALID", lambda: batch.describe_compute_environments(
            computeEnvironments=[compute_environment])["computeEnvironments"][0]["status"] == "VALID", 60, 0.05)
    if queue:
        wait_for("job queue VALID", lambda: batch.describe_job_queues(
            jobQueues=[queue])["jobQueues"][0]["status"] == "VALID", 60, 0.05)


def job_counts(url: str) -> dict[str, int]:
    return dict(control(url, "stats")["jobs"])


# The emulator process and its containers


class EmulatorProcesses:
    """The emulator's child process, and every process seen under it (so none can outlive the run)."""

    def __init__(self) -> None:
        candidates = [
            p for p in psutil.Process().children() if "airflow_batch_runner.emulator" in " ".join(p.cmdline())
        ]
        if len(candidates) != 1:
            raise RuntimeError(f"expected one emulator child process, found {len(candidates)}")
        self.proc = candidates[0]
        self.seen: dict[int, psutil.Process] = {}

    def descendants(self) -> list[psutil.Process]:
        procs = self.proc.children(recursive=True)
        for p in procs:
            self.seen.setdefault(p.pid, p)
        return procs

    def count(self, name: str) -> int:
        """Live processes called ``name`` under the emulator now."""
        return sum(_alive(p, name) for p in self.descendants())

    def count_seen(self, name: str) -> int:
        """Live processes called ``name`` ever seen under the emulator, orphans included."""
        self.descendants()
        return sum(_alive(p, name) for p in self.seen.values())

    def cpu_seconds(self) -> float:
        times = self.proc.cpu_times()
        return float(times.user + times.system)  # children excluded

    def rss_mib(self) -> float:
        return float(self.proc.memory_info().rss) / 2**20

    def peak_rss_mib(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def threads(self) -> int:
        return int(self.proc.num_threads())

    def fds(self) -> int:
        return int(self.proc.num_fds())

    def children_rss_mib(self) -> float:
        total = 0
        for p in self.descendants():
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total / 2**20

    def kill_leftovers(self, url: str) -> int:
        """SIGKILL every container process of this emulator that still runs.

        Those seen under it (pid reuse is checked by psutil), and any other whose environment points
        at this emulator's endpoint (its port is unique while it runs): one started too late to be seen.
        """
        ours = {p.pid: p for p in self.seen.values()}
        for p in psutil.process_iter():
            try:
                if p.pid not in ours and p.environ().get("AWS_ENDPOINT_URL") == url:
                    ours[p.pid] = p
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                pass
        killed = 0
        for p in ours.values():
            if _alive(p):
                try:
                    p.kill()
                    killed += 1
                except psutil.NoSuchProcess:
                    pass
        return killed


def _alive(p: psutil.Process, name: str | None = None) -> bool:
    """Running (a zombie only waits for its parent, or for init, to reap it), and called ``name``."""
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE and (name is None or p.name() == name)
    except psutil.NoSuchProcess:
        return False


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """A SIGTERM to the benchmark unwinds like Ctrl-C, so the emulator is always stopped."""

    def raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# The benchmark


@dataclass
class Figures:
    rows: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    describe_median_ms: float | None = None

    def add(self, label: str, value: str) -> None:
        self.rows.append((label, value))
        print(f"  {label}: {value}", flush=True)

    def table(self) -> str:
        width = max(len(label) for label, _ in self.rows)
        lines = [f"| {'figure'.ljust(width)} | value |", f"|{'-' * (width + 2)}|-------|"]
        lines += [f"| {label.ljust(width)} | {value} |" for label, value in self.rows]
        return "\n".join(lines)


def setup(client: Any, sleep: int) -> tuple[str, str]:
    return setup_sleep_jobs(client, NAME, f"sleep {sleep}")


def setup_sleep_jobs(client: Any, name: str, command: str) -> tuple[str, str]:
    """An EC2 compute environment, a queue and a one-container ECS job definition running ``command``
    with awslogs; returns (queue ARN, job definition ARN). Shared by the emulator benchmarks."""
    ce = client.create_compute_environment(
        computeEnvironmentName=name,
        type="MANAGED",
        computeResources={
            "type": "EC2",
            "minvCpus": 0,
            "maxvCpus": 4096,
            "instanceTypes": ["optimal"],
            "subnets": ["subnet-00000000"],
            "securityGroupIds": ["sg-00000000"],
            "instanceRole": "ecsInstanceRole",
        },
    )["computeEnvironmentArn"]
    wait_for(
        "compute environment VALID",
        lambda: client.describe_compute_environments(computeEnvironments=[ce])["computeEnvironments"][0]["status"]
        == "VALID",
        timeout=30,
    )
    queue = client.create_job_queue(
        jobQueueName=name, priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}]
    )["jobQueueArn"]
    wait_for(
        "job queue VALID",
        lambda: client.describe_job_queues(jobQueues=[queue])["jobQueues"][0]["status"] == "VALID",
        timeout=30,
    )
    main = {
        "name": "main",
        "image": "busybox",
        "essential": True,
        "command": ["/bin/sh", "-c", command],
        "resourceRequirements": [{"type": "VCPU", "value": "0.25"}, {"type": "MEMORY", "value": "512"}],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {"awslogs-group": "/aws/batch/job", "awslogs-stream-prefix": name},
        },
    }
    definition = client.register_job_definition(
        jobDefinitionName=name,
        type="container",
        platformCapabilities=["EC2"],
        ecsProperties={"taskProperties": [{"containers": [main]}]},
    )["jobDefinitionArn"]
    return queue, definition


def bench(url: str, args: argparse.Namespace, emu: EmulatorProcesses, figures: Figures) -> None:
    n = args.jobs
    figures.add("machine load average (1 min) at start", f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    session = boto3.session.Session()  # one session: the service model is loaded once
    clients = [batch_client(url, session) for _ in range(args.threads)]
    queue, definition = setup(clients[0], args.sleep)
    # The benchmark's own heap (boto3's models) is long-lived: keep its collections out of the timings.
    gc.collect()
    gc.freeze()
    cpu_idle_start = emu.cpu_seconds()

    # Submit
    def submit(client: Any, i: int) -> tuple[str, float]:
        start = time.perf_counter()
        job_id = client.submit_job(jobName=f"{NAME}-{i:05d}", jobQueue=queue, jobDefinition=definition)["jobId"]
        return str(job_id), time.perf_counter() - start

    print(f"submitting {n} jobs from {args.threads} threads …", flush=True)
    cpu0 = emu.cpu_seconds()
    t0 = time.monotonic()
    submitted = run_parallel(submit, range(n), clients)
    submit_s = time.monotonic() - t0
    ids = [job_id for job_id, _ in submitted]
    submit_ms = [seconds * 1000 for _, seconds in submitted]
    figures.add("jobs submitted", f"{n} in {submit_s:.1f} s ({n / submit_s:.0f}/s, {args.threads} threads)")
    figures.add(
        "SubmitJob latency median / p99",
        f"{statistics.median(submit_ms):.1f} / {percentile(submit_ms, 99):.1f} ms",
    )

    # All RUNNING, and their processes started
    timeout = max(60.0, args.sleep * 0.75)
    wait_for("all jobs RUNNING", lambda: job_counts(url).get("RUNNING", 0) >= n, timeout=timeout)
    all_running_s = time.monotonic() - t0
    wait_for("all sleep processes started", lambda: emu.count("sleep") >= n, timeout=timeout, interval=1.0)
    all_processes_s = time.monotonic() - t0
    cpu_ramp = emu.cpu_seconds() - cpu0
    figures.add("all RUNNING after (from first submit)", f"{all_running_s:.1f} s")
    figures.add("all sleep processes up after", f"{all_processes_s:.1f} s")
    figures.add("emulator CPU, submit to all running", f"{cpu_ramp:.1f} s")

    # Idle cost of holding N running jobs
    cpu1 = emu.cpu_seconds()
    time.sleep(args.idle_seconds)
    idle_pct = (emu.cpu_seconds() - cpu1) / args.idle_seconds * 100
    figures.add(f"emulator CPU while {n} jobs idle-run", f"{idle_pct:.1f} % of one core")

    # DescribeJobs latency, 100 ids a call, sequential, spread over every job
    client = clients[0]
    batch = min(100, n)
    for k in range(5):  # warm the connection and code paths
        client.describe_jobs(jobs=ids[k * batch % n :][:batch])
    latencies: list[float] = []
    wrong: list[str] = []
    cpu2 = emu.cpu_seconds()
    t2 = time.monotonic()
    for call in range(args.describe_calls):
        start = call * batch % n
        chunk = (ids[start:] + ids[:start])[:batch]
        t = time.perf_counter()
        jobs = client.describe_jobs(jobs=chunk)["jobs"]
        latencies.append((time.perf_counter() - t) * 1000)
        if len(jobs) != batch or any(job["status"] != "RUNNING" for job in jobs):
            wrong.append(f"call {call}: {len(jobs)} jobs, statuses {sorted({j['status'] for j in jobs})}")
    describe_s = time.monotonic() - t2
    describe_cpu = emu.cpu_seconds() - cpu2
    median = statistics.median(latencies)
    figures.add(
        f"DescribeJobs({batch} ids) x{len(latencies)}, boto3: median / p90 / p99 / max",
        f"**{median:.1f}** / {percentile(latencies, 90):.1f} / {percentile(latencies, 99):.1f} / "
        f"{max(latencies):.1f} ms",
    )
    figures.add(
        "DescribeJobs throughput, one client",
        f"{len(latencies) / describe_s:.0f} calls/s ({describe_cpu / describe_s * 100:.0f} % emulator CPU)",
    )
    if wrong:
        figures.problems.append(f"{len(wrong)} DescribeJobs answers were not {batch} RUNNING jobs: {wrong[:3]}")

    # The same calls without boto3: the emulator's part of the latency
    raw = raw_describe_latencies(url, ids, batch, args.describe_calls)
    figures.add(
        "same, raw HTTP (no boto3): median / p90 / p99 / max",
        f"{statistics.median(raw):.1f} / {percentile(raw, 90):.1f} / {percentile(raw, 99):.1f} / {max(raw):.1f} ms",
    )

    # Still running? Count the real processes.
    counts = job_counts(url)
    sleepers = emu.count("sleep")
    shells = emu.count("sh")
    figures.add("jobs RUNNING at the end of measuring", str(counts.get("RUNNING", 0)))
    figures.add("`sleep` processes under the emulator", f"{sleepers} (+ {shells} `sh`)")
    figures.add("emulator RSS now / peak (children excluded)", f"{emu.rss_mib():.0f} / {emu.peak_rss_mib():.0f} MiB")
    figures.add("container processes' RSS (sum)", f"{emu.children_rss_mib():.0f} MiB")
    figures.add("emulator threads / open fds", f"{emu.threads()} / {emu.fds()}")
    if counts.get("RUNNING", 0) != n:
        figures.problems.append(f"expected {n} RUNNING jobs, stats say {counts}")
    if sleepers < n:
        figures.problems.append(f"expected {n} sleep processes, found {sleepers}")

    # Terminate everything
    def terminate(client: Any, job_id: str) -> None:
        client.terminate_job(jobId=job_id, reason="capacity benchmark done")

    print(f"terminating {n} jobs …", flush=True)
    t3 = time.monotonic()
    run_parallel(terminate, ids, clients)
    terminate_calls_s = time.monotonic() - t3
    wait_for("all jobs stopped", lambda: sum(job_counts(url).get(s, 0) for s in ("FAILED", "SUCCEEDED")) >= n, 60)
    failed_s = time.monotonic() - t3
    counts = job_counts(url)
    if counts.get("FAILED", 0) != n:
        figures.problems.append(f"expected {n} FAILED jobs after TerminateJob, stats say {counts}")
    wait_for("all sleep processes gone", lambda: emu.count_seen("sleep") == 0, timeout=60, interval=0.5)
    gone_s = time.monotonic() - t3
    figures.add("TerminateJob calls", f"{n} in {terminate_calls_s:.1f} s")
    figures.add("all FAILED after (from first TerminateJob)", f"{failed_s:.1f} s")
    figures.add("all sleep processes gone after", f"{gone_s:.1f} s")
    figures.add("emulator CPU, first submit to the end", f"{emu.cpu_seconds() - cpu_idle_start:.1f} s")
    sample = clients[0].describe_jobs(jobs=ids[:1])["jobs"][0]
    if sample["status"] != "FAILED" or sample.get("statusReason") != "capacity benchmark done":
        figures.problems.append(f"terminated job reads {sample['status']} / {sample.get('statusReason')!r}")
    figures.describe_median_ms = median


def raw_describe_latencies(url: str, ids: list[str], batch: int, calls: int) -> list[float]:
    """DescribeJobs over one keep-alive connection, the JSON answer decoded but not turned into boto3 shapes.

    The emulator routes on the credential scope and does not check signatures, so an unsigned
    request with a well-formed Authorization header is enough.
    """
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/batch/aws4_request, "
        "SignedHeaders=host, Signature=0",
    }
    n = len(ids)
    latencies = []
    try:
        for call in range(calls + 5):
            start = call * batch % n
            body = json.dumps({"jobs": (ids[start:] + ids[:start])[:batch]})
            t = time.perf_counter()
            conn.request("POST", "/v1/describejobs", body=body, headers=headers)
            resp = conn.getresponse()
            jobs = json.loads(resp.read())["jobs"]
            elapsed = (time.perf_counter() - t) * 1000
            if resp.status != 200 or len(jobs) != batch:
                raise RuntimeError(f"raw DescribeJobs answered {resp.status} with {len(jobs)} jobs")
            if call >= 5:  # the first few warm up
                latencies.append(elapsed)
    finally:
        conn.close()
    return latencies


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.emulator_capacity", description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1000, help="jobs running at once (default %(default)s)")
    parser.add_argument("--sleep", type=int, default=120, help="seconds each job's container sleeps")
    parser.add_argument("--step-delay", type=float, default=0.2, help="emulator --step-delay (default %(default)s)")
    parser.add_argument("--threads", type=int, default=8, help="clients submitting and terminating in parallel")
    parser.add_argument("--describe-calls", type=int, default=200, help="DescribeJobs calls of 100 ids to time")
    parser.add_argument("--idle-seconds", type=float, default=5.0, help="seconds to sample idle CPU")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    figures = Figures()
    print(
        f"emulator capacity: {args.jobs} jobs of `sleep {args.sleep}`, step delay {args.step_delay} s, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
        flush=True,
    )
    emu: EmulatorProcesses | None = None
    url = ""
    try:
        # A raw capacity figure: AWS's request-rate quotas off (SubmitJob's 50 a second would set the pace).
        with sigterm_as_interrupt(), running_emulator(step_delay=args.step_delay, extra_args=["--no-quotas"]) as url:
            emu = EmulatorProcesses()
            print(f"emulator {url} (pid {emu.proc.pid})", flush=True)
            bench(url, args, emu, figures)
    except KeyboardInterrupt:
        print("interrupted; emulator stopped", file=sys.stderr)
        return 130
    except Exception as exc:  # report the figures so far, with what went wrong
        traceback.print_exc()
        figures.problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        if emu is not None:
            leftovers = emu.kill_leftovers(url)
            if leftovers:
                print(f"killed {leftovers} processes the emulator left behind", file=sys.stderr)
                figures.problems.append(f"{leftovers} container processes outlived the emulator")
    today = datetime.date.today().isoformat()
    print(f"\n## Emulator capacity ({today}, {os.cpu_count()} CPUs)\n")
    print(figures.table())
    median = figures.describe_median_ms
    if median is not None and median >= TARGET_MEDIAN_MS and args.jobs >= TARGET_JOBS:
        figures.problems.append(f"target missed: median DescribeJobs(100) is {median:.1f} ms")
    for problem in figures.problems:
        print(f"\nPROBLEM: {problem}")
    if median is None or figures.problems:
        return 1
    if args.jobs < TARGET_JOBS:
        print(f"\ntarget not checked: it is for {TARGET_JOBS} jobs, {args.jobs} ran here")
    else:
        print(
            f"\ntarget met: {args.jobs} jobs running at once, "
            f"median DescribeJobs(100) {median:.1f} ms < {TARGET_MEDIAN_MS} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
