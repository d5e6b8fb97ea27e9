"""Task overhead: BatchRunnerOperator against the Amazon provider's BatchOperator, on the emulator.

    .venv/bin/python -m bench.task_overhead [--runs 10] [--interval 1] [--step-delay 0.05]
        [--provider-default-delays] [--no-gc-freeze]

Starts the emulator, gives a real Airflow its own home and database, creates an EC2 compute
environment and a bucket, and for BatchOperator a job queue and a ``containerProperties`` job
definition running ``echo hello`` (both by hand, with boto3). Then runs the same small job through
each operator with ``dag.test()``: one warm-up task each (ours creates its queue and job definition
there), then ``--runs`` measured tasks each, alternating. Ours stages one input file and collects
one output file. Both wait with the same interval (see ``task_overhead_operators.make_dags``).
Before each task the benchmark process is ``gc.freeze()``-d, as Airflow's executors do before they
fork task processes: otherwise a full collection of the whole in-process Airflow lands, at random,
in a task's path to SubmitJob.

Measured inside ``execute()`` by the instrumented subclasses of ``bench.task_overhead_operators``:
1. execute start -> SubmitJob sent (median, p90), and the calls on the way;
2. AWS calls per task by operation: the task's own (client side) and the emulator's count around the
   task, which also includes the calls the job's containers make (the staging sidecars' S3 calls);
3. the job's ``stoppedAt`` (DescribeJobs) -> execute returning.
Then the targets are checked; exit status 1 if one fails.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from airflow_batch_runner.emulator.testing import running_emulator

REPO = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
OURS = "BatchRunnerOperator"  # the same names as in bench.task_overhead_operators,
PROVIDER = "BatchOperator"  # which cannot be imported before Airflow's home is set
IMPLEMENTATIONS = (OURS, PROVIDER)
MIN_TIMED_RUNS = 5  # the time-to-SubmitJob target is checked from this many runs on
MAX_BATCH_CALLS_BEFORE_SUBMIT = 2
MAX_SUBMIT_RATIO = 1.5
DAG_FILE = '''\
"""Airflow DAGs of bench.task_overhead (written by it): the instrumented operators."""
from bench.task_overhead_operators import make_dags

dags = make_dags({settings!r})
ours_dag, provider_dag = dags["{ours}"], dags["{provider}"]
'''


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


# The world: Airflow home, emulator resources


def prepare_airflow_home() -> Path:
    """A throw-away Airflow home with its DAGs folder; must run before anything imports Airflow."""
    if "airflow" in sys.modules:
        raise RuntimeError("Airflow was imported before its home was set")
    home = Path(tempfile.mkdtemp(prefix="abr-task-overhead-"))
    os.environ.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "False",  # both operators wait in execute()
        "AWS_ACCESS_KEY_ID": "testing",  # placeholders: nothing may reach a real account
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        # The DAG file imports bench.task_overhead_operators, wherever Airflow parses it.
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
    })
    os.environ.pop("AWS_PROFILE", None)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    (home / "dags").mkdir()
    return home


def migrate_database() -> None:
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)


@dataclass(frozen=True)
class World:
    url: str
    compute_environment_arn: str
    job_queue_arn: str
    job_definition_arn: str
    bucket: str


def _client(url: str, service: str) -> Any:
    make: Any = boto3.client
    return make(service, endpoint_url=url, region_name=REGION)


def _wait_valid(describe: Any, key: str, name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while describe()[key][0]["status"] != "VALID":
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} not VALID within {timeout:g} s")
        time.sleep(0.05)


def create_world(url: str) -> World:
    """What both operators run on, and what BatchOperator needs made by hand."""
    batch, suffix = _client(url, "batch"), uuid.uuid4().hex[:6]
    ce = batch.create_compute_environment(
        computeEnvironmentName=f"overhead-{suffix}",
        type="MANAGED",
        computeResources={"type": "EC2", "minvCpus": 0, "maxvCpus": 64, "instanceTypes": ["optimal"],
                          "subnets": ["subnet-1"], "securityGroupIds": ["sg-1"], "instanceRole": "ecsInstanceRole"},
    )["computeEnvironmentArn"]
    _wait_valid(lambda: batch.describe_compute_environments(computeEnvironments=[ce]), "computeEnvironments", ce)
    queue = batch.create_job_queue(
        jobQueueName=f"overhead-by-hand-{suffix}", state="ENABLED", priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}],
    )["jobQueueArn"]
    _wait_valid(lambda: batch.describe_job_queues(jobQueues=[queue]), "jobQueues", queue)
    definition = batch.register_job_definition(
        jobDefinitionName=f"overhead-echo-hello-{suffix}",
        type="container",
        platformCapabilities=["EC2"],
        containerProperties={
            "image": "public.ecr.aws/docker/library/busybox:latest",
            "command": ["echo", "hello"],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}],
        },
    )["jobDefinitionArn"]
    bucket = f"overhead-{suffix}"
    _client(url, "s3").create_bucket(Bucket=bucket)
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps({
        "conn_type": "aws", "login": "testing", "password": "testing",
        "extra": {"endpoint_url": url, "region_name": REGION},
    })
    return World(url, ce, queue, definition, bucket)


def load_dags(world: World, records: Path, interval: float, provider_default_delays: bool) -> dict[str, Any]:
    """Write the DAG file into the DAGs folder (where dag.test() needs it) and import it."""
    settings = {
        "emulator_url": world.url,
        "records": str(records),
        "interval": interval,
        "provider_default_delays": provider_default_delays,
        "compute_environment_arn": world.compute_environment_arn,
        "bucket": world.bucket,
        "job_queue_arn": world.job_queue_arn,
        "job_definition_arn": world.job_definition_arn,
    }
    path = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / "task_overhead_dags.py"
    path.write_text(DAG_FILE.format(settings=settings, ours=OURS, provider=PROVIDER))
    spec = importlib.util.spec_from_file_location("task_overhead_dags", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.dags)


@contextmanager
def quiet(log: Path) -> Iterator[None]:
    """Airflow's and the task's output go to a log file, not the report.

    Redirected at the file descriptors: Airflow's logging keeps the ``sys.stdout`` it first saw.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with open(log, "ab") as out:
            os.dup2(out.fileno(), 1)
            os.dup2(out.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        for fd in saved:
            os.close(fd)


def run_task(dag: Any, log: Path, freeze: bool) -> None:
    if freeze:
        # As Airflow's executors do before forking task processes: what exists now is never scanned by
        # a collection during the task. Without it, a full collection walks all of the in-process
        # Airflow that dag.test() runs in, 0.6-0.9 s on the 2-core machine, in whichever task triggers it.
        gc.collect()
        gc.freeze()
    with quiet(log):
        state = str(dag.test().state)
    if state != "success":
        raise RuntimeError(f"DAG {dag.dag_id} ended {state}; see {log}")


# Analysis


@dataclass
class Task:
    implementation: str
    warm_up: bool
    start: float
    end: float
    job_id: str
    calls: list[tuple[float, float, str, str]]  # sent, answered, service, operation
    emulator_delta: Counter[str]
    gc_pauses: list[tuple[float, float]]  # full collections: started, seconds
    stopped_at: float = 0.0  # the job's stoppedAt, seconds

    @property
    def submit_at(self) -> float:
        return next(sent for sent, _, service, op in self.calls if (service, op) == ("batch", "SubmitJob"))

    @property
    def to_submit(self) -> float:
        return self.submit_at - self.start

    @property
    def end_lag(self) -> float:
        return self.end - self.stopped_at

    @property
    def after_seen(self) -> float:
        """From the first DescribeJobs made after the job stopped to execute returning."""
        polls = [sent for sent, _, service, op in self.calls if (service, op) == ("batch", "DescribeJobs")]
        return self.end - min(sent for sent in polls if sent > self.stopped_at)

    @property
    def own_calls(self) -> Counter[str]:
        return Counter(f"{service}:{op}" for _, _, service, op in self.calls)

    @property
    def path_to_submit(self) -> list[tuple[float, float, str, str]]:
        """The calls up to the first SubmitJob included."""
        return [call for call in self.calls if call[0] <= self.submit_at]

    @property
    def pauses_before_submit(self) -> list[float]:
        return [seconds for started, seconds in self.gc_pauses if started < self.submit_at]

    @property
    def batch_before_submit(self) -> list[str]:
        return [op for sent, _, service, op in self.path_to_submit if service == "batch" and sent < self.submit_at]


def _flatten(stats: Mapping[str, Mapping[str, int]]) -> Counter[str]:
    return Counter({f"{service}:{op}": n for service, ops in stats.items() for op, n in ops.items()})


def read_tasks(records: Path, seen: int, warm_up: bool) -> list[Task]:
    """Records written after the first ``seen`` lines."""
    tasks = []
    for line in records.read_text().splitlines()[seen:]:
        raw = json.loads(line)
        if "error" in raw:
            raise RuntimeError(f"{raw['implementation']} failed: {raw['error']}")
        delta = _flatten(raw["stats_after"])
        delta.subtract(_flatten(raw["stats_before"]))
        tasks.append(Task(
            implementation=raw["implementation"], warm_up=warm_up, start=raw["start"], end=raw["end"],
            job_id=raw["job_id"], calls=[tuple(c) for c in raw["calls"]], emulator_delta=+delta,
            gc_pauses=[tuple(p) for p in raw["gc_pauses"]],
        ))
    return tasks


def add_stopped_at(url: str, tasks: Sequence[Task]) -> None:
    batch = _client(url, "batch")
    by_id = {task.job_id: task for task in tasks}
    ids = list(by_id)
    for start in range(0, len(ids), 100):
        for job in batch.describe_jobs(jobs=ids[start : start + 100])["jobs"]:
            by_id[job["jobId"]].stopped_at = job["stoppedAt"] / 1000


@dataclass
class Summary:
    implementation: str
    tasks: list[Task]

    @property
    def to_submit(self) -> list[float]:
        return [t.to_submit for t in self.tasks]

    @property
    def end_lag(self) -> list[float]:
        return [t.end_lag for t in self.tasks]

    @property
    def after_seen(self) -> list[float]:
        return [t.after_seen for t in self.tasks]

    @property
    def job_run(self) -> list[float]:
        return [t.stopped_at - t.submit_at for t in self.tasks]

    @property
    def execute_time(self) -> list[float]:
        return [t.end - t.start for t in self.tasks]

    def per_task(self, key: str, emulator: bool) -> str:
        """Calls of one operation per task: ``n``, or ``mean (min-max)`` where the runs differ."""
        values = [(t.emulator_delta if emulator else t.own_calls).get(key, 0) for t in self.tasks]
        low, high = min(values), max(values)
        return f"{low}" if low == high else f"{statistics.mean(values):.1f} ({low}-{high})"

    def collections(self) -> str:
        """How many runs a full garbage collection paused before SubmitJob, and for how long."""
        pauses = [p for t in self.tasks for p in t.pauses_before_submit]
        hit = sum(1 for t in self.tasks if t.pauses_before_submit)
        return f"{hit}/{len(self.tasks)} runs" + (f", median pause {ms(statistics.median(pauses))}" if pauses else "")

    def path(self) -> str:
        """The calls on the way to SubmitJob: median instant each was made (and its median round trip)."""
        sequences = {tuple(f"{s}:{op}" for _, _, s, op in t.path_to_submit) for t in self.tasks}
        if len(sequences) != 1:
            return f"differs between runs: {sorted(sequences)}"
        steps = []
        for i, name in enumerate(sequences.pop()):
            sent = statistics.median(t.path_to_submit[i][0] - t.start for t in self.tasks)
            took = statistics.median(t.path_to_submit[i][1] - t.path_to_submit[i][0] for t in self.tasks)
            steps.append(f"{name} at {ms(sent)}" + ("" if name == "batch:SubmitJob" else f" (+{ms(took)})"))
        return " -> ".join(steps)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def check_targets(ours: Summary, provider: Summary) -> list[tuple[bool, str]]:
    def total(key: str) -> int:
        return sum(t.own_calls[key] + t.emulator_delta[key] for t in ours.tasks)

    before = max(len([op for op in t.batch_before_submit if op != "SubmitJob"]) for t in ours.tasks)
    ours_median, provider_median = (statistics.median(s.to_submit) for s in (ours, provider))
    ratio = ours_median / provider_median
    checks = [
        (total("batch:RegisterJobDefinition") == 0, f"{OURS}: no RegisterJobDefinition call in steady state"),
        (total("batch:CreateJobQueue") == 0, f"{OURS}: no CreateJobQueue call in steady state"),
        (before <= MAX_BATCH_CALLS_BEFORE_SUBMIT,
         f"{OURS}: at most {MAX_BATCH_CALLS_BEFORE_SUBMIT} other Batch calls before SubmitJob (most seen: {before})"),
    ]
    timing = (f"{OURS}: median time to SubmitJob at most {MAX_SUBMIT_RATIO:g}x {PROVIDER}'s "
              f"({ms(ours_median)} vs {ms(provider_median)}: {ratio:.2f}x)")
    if len(ours.tasks) < MIN_TIMED_RUNS:  # a smoke run: one task's time is the host's load, not a median
        print(f"not checked below {MIN_TIMED_RUNS} runs: {timing}")
        return checks
    return [*checks, (ratio <= MAX_SUBMIT_RATIO, timing)]


def report(summaries: Mapping[str, Summary], warm_up: Mapping[str, Task], args: argparse.Namespace) -> bool:
    ours, provider = summaries[OURS], summaries[PROVIDER]
    delays = "random 1-10 s (provider default)" if args.provider_default_delays else f"{args.interval:g} s"
    lines = [
        f"Task overhead: {args.runs} measured tasks per implementation after one warm-up each; "
        f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, {os.cpu_count()} CPUs, "
        f"{platform.system()} {platform.machine()}, Python {platform.python_version()}.",
        f"Emulator step delay {args.step_delay:g} s. {OURS}: completion_check_interval {args.interval:g} s. "
        f"{PROVIDER}: deferrable=False, poll_interval {max(1, round(args.interval))} (unused unless deferred), "
        f"BatchClientHook polling delays {delays}. gc.freeze() before each task: {not args.no_gc_freeze}.",
        "",
    ]
    rows = [
        ("execute start -> SubmitJob", ours.to_submit, provider.to_submit),
        ("job stoppedAt -> execute end", ours.end_lag, provider.end_lag),
        ("(first DescribeJobs after stoppedAt -> execute end)", ours.after_seen, provider.after_seen),
        ("(SubmitJob -> job stoppedAt)", ours.job_run, provider.job_run),
        ("(execute start -> end)", ours.execute_time, provider.execute_time),
    ]
    lines += table(
        ("median / p90", OURS, PROVIDER),
        ((name, *(f"{ms(statistics.median(v))} / {ms(percentile(v, 90))}" for v in (a, b))) for name, a, b in rows),
    )
    lines += [
        "",
        "Path to SubmitJob (median instant each call is made after execute starts, +its round trip):",
        *(f"- {s.implementation}: {s.path()}" for s in (ours, provider)),
        "",
        "Full (generation 2) garbage collections before SubmitJob: "
        + "; ".join(f"{s.implementation} {s.collections()}" for s in (ours, provider)) + ".",
        "",
        "AWS calls per task (`mean (min-max)` where the runs differ). *task*: made by execute() itself; "
        "*emulator*: every call the emulator counted meanwhile, the job containers' own included "
        "(the staging sidecars' S3 calls).",
        "",
    ]
    keys = sorted(set().union(*(t.own_calls | t.emulator_delta for s in (ours, provider) for t in s.tasks)))
    lines += table(
        ("service:operation", f"{OURS} task", f"{OURS} emulator", f"{PROVIDER} task", f"{PROVIDER} emulator"),
        ((key, *(s.per_task(key, emulator) for s in (ours, provider) for emulator in (False, True)))
         for key in keys),
    )
    first = warm_up[OURS]
    created = {k.split(":", 1)[1]: v for k, v in sorted(first.own_calls.items()) if k.startswith("batch:")}
    lines += [
        "",
        f"{OURS} warm-up task (creates the queue and the job definition): SubmitJob at {ms(first.to_submit)}; "
        f"Batch calls {created}.",
        "",
    ]
    targets = check_targets(ours, provider)
    lines += [f"{'PASS' if ok else 'FAIL'}  {text}" for ok, text in targets]
    print("\n".join(lines))
    return all(ok for ok, _ in targets)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10, help="measured tasks per implementation (default 10)")
    parser.add_argument("--interval", type=float, default=1.0, help="poll interval of both operators, seconds")
    parser.add_argument("--step-delay", type=float, default=0.05, help="emulator seconds per job status step")
    parser.add_argument("--provider-default-delays", action="store_true",
                        help="leave BatchClientHook's random 1-10 s polling delays as they are (slow)")
    parser.add_argument("--no-gc-freeze", action="store_true",
                        help="do not gc.freeze() the benchmark process before each task (noisier)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.interval <= 0:
        parser.error("--runs must be at least 1 and --interval positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    home = prepare_airflow_home()
    log, records = home / "tasks.log", home / "records.jsonl"
    records.touch()
    began = time.monotonic()
    with running_emulator(step_delay=args.step_delay) as url:
        migrate_database()
        world = create_world(url)
        dags = load_dags(world, records, args.interval, args.provider_default_delays)
        tasks: list[Task] = []
        print(f"Airflow home {home}; task logs in {log}", file=sys.stderr)
        for name in IMPLEMENTATIONS:
            run_task(dags[name], log, freeze=not args.no_gc_freeze)
        tasks += read_tasks(records, 0, warm_up=True)
        for run in range(args.runs):
            for name in IMPLEMENTATIONS if run % 2 == 0 else IMPLEMENTATIONS[::-1]:
                run_task(dags[name], log, freeze=not args.no_gc_freeze)
            print(f"run {run + 1}/{args.runs} done", file=sys.stderr)
        tasks += read_tasks(records, len(tasks), warm_up=False)
        add_stopped_at(url, tasks)
    summaries = {
        name: Summary(name, [t for t in tasks if t.implementation == name and not t.warm_up])
        for name in IMPLEMENTATIONS
    }
    warm_up = {t.implementation: t for t in tasks if t.warm_up}
    passed = report(summaries, warm_up, args)
    print(f"\n({time.monotonic() - began:.0f} s in all)", file=sys.stderr)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
