"""The triggerer with AWS Batch's events (EventBridge -> SQS, set up by ``airflow_batch_runner.event_setup``):
jobs end as soon as Batch announces it, and polling stays the safety net when events are lost or the queue
goes away."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_batch_runner import event_setup
from airflow_batch_runner.emulator.testing import control
from airflow_batch_runner.triggers import events
from airflow_batch_runner.triggers.batch_runner import BatchRunnerTrigger
from tests.e2e.conftest import AwsWorld
from tests.e2e.test_trigger import _trigger
from tests.emulator.helpers import wait_until

EVENTS_LOGGER = "airflow_batch_runner.triggers.events"


# Sleeps $SECONDS_ and exits $CODE; with $GATE set, only once that file exists.
GATED_SLEEP = 'while [ -n "$GATE" ] && [ ! -e "$GATE" ]; do sleep 0.1; done; sleep $SECONDS_; exit $CODE'


class EventsWorld:
    """A job queue whose Batch events reach an SQS queue, the triggerer configured to read it."""

    def __init__(self, aws: AwsWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                 sweep: float) -> None:
        self.aws = aws
        stamp = time.monotonic_ns()
        self.queue = aws.job_queue(f"ev-{stamp}", aws.ec2_ce)
        assert event_setup.main(["--job-queue", self.queue, "--name", f"ev-{stamp}", "--region", "us-east-1"]) == 0
        printed = capsys.readouterr().out
        self.url = printed.split("events_queue_url = ", 1)[1].strip()
        monkeypatch.setenv("AIRFLOW__BATCH_RUNNER__EVENTS_QUEUE_URL", self.url)
        monkeypatch.setenv("AIRFLOW__BATCH_RUNNER__EVENTS_SWEEP_INTERVAL", str(sweep))
        batch = aws.client("batch")
        self.definition = batch.register_job_definition(
            jobDefinitionName=f"ev-{stamp}", type="container", platformCapabilities=["EC2"],
            ecsProperties={"taskProperties": [{"containers": [{
                "name": "main", "image": "busybox", "command": ["/bin/sh", "-c", GATED_SLEEP],
                "resourceRequirements": [{"type": "VCPU", "value": "0.25"}, {"type": "MEMORY", "value": "256"}],
            }]}]},
        )["jobDefinitionArn"]

    def submit(self, seconds: float = 1, codes: list[int] | None = None, count: int = 1,
               gate: Path | None = None) -> list[str]:
        """Jobs that sleep ``seconds`` and exit with each of ``codes``; with ``gate``, only once that file exists."""
        batch = self.aws.client("batch")
        codes = codes or [0] * count
        return [batch.submit_job(
            jobName=f"e{i}", jobQueue=self.queue, jobDefinition=self.definition,
            ecsPropertiesOverride={"taskProperties": [{"containers": [{"name": "main", "environment": [
                {"name": "SECONDS_", "value": str(seconds)}, {"name": "CODE", "value": str(code)},
                {"name": "GATE", "value": str(gate or "")}]}]}]},
        )["jobId"] for i, code in enumerate(codes)]


async def _ends(triggers: list[BatchRunnerTrigger], timeout: float = 120) -> list[tuple[dict[str, Any], float]]:
    """Each trigger's events (a trigger must yield exactly one) and when its first came."""

    async def one(trigger: BatchRunnerTrigger) -> tuple[dict[str, Any], float]:
        events = [dict(e.payload) async for e in trigger.run()]
        assert len(events) == 1, events
        return events[0], time.time()

    return list(await asyncio.wait_for(asyncio.gather(*map(one, triggers)), timeout))


def _end_to_event(event: dict[str, Any], received: float) -> float:
    return received - event["description"]["stoppedAt"] / 1000


def _describe_calls(aws: AwsWorld) -> int:
    return aws.calls().get("DescribeJobs", 0)


def test_with_events_a_jobs_end_reaches_its_task_long_before_its_poll_interval(
    aws: AwsWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    world = EventsWorld(aws, monkeypatch, capsys, sweep=600)
    # The jobs end only once the triggers watch them and the queue is read: on a loaded host, triggers that started
    # late would find the jobs ended at their first DescribeJobs, and no event would be needed.
    gate = tmp_path / "queue-read"
    job_ids = world.submit(seconds=2, count=6, gate=gate)
    before = _describe_calls(aws)

    async def run() -> tuple[list[tuple[dict[str, Any], float]], int]:
        ends = asyncio.ensure_future(_ends([_trigger(aws, j, poll_interval=30) for j in job_ids]))
        loop = asyncio.get_running_loop()

        def queue_read() -> bool:
            sources = events._SOURCES.get(loop, {})
            return bool(sources) and all(s.down is None for s in sources.values())

        await asyncio.to_thread(wait_until, queue_read, 60, 0.05)
        gate.touch()
        results = await ends
        (source,) = events._SOURCES[asyncio.get_running_loop()].values()
        return results, source.deleted

    results, deleted = asyncio.run(run())
    calls = _describe_calls(aws) - before
    for event, received in results:
        assert event["status"] == "done" and event["description"]["status"] == "SUCCEEDED"
        assert _end_to_event(event, received) < 15, "not at the next 30 s poll: the event woke the poller"
    # No 30 s round came: the jobs were described when they were watched and when events named them.
    assert calls <= 1 + 5 * 6, calls
    # The messages that woke the poller were deleted once the DescribeJobs they caused was handed over.
    assert deleted >= 6, deleted


def test_when_every_event_is_lost_the_jobs_are_polled_each_interval_and_the_log_says_why(
    aws: AwsWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = EventsWorld(aws, monkeypatch, capsys, sweep=4)
    control(aws.url, "events", {"drop_rate": 1.0})
    try:
        job_ids = world.submit(seconds=10, codes=[0, 3])  # they end after the queue was first read
        with caplog.at_level(logging.WARNING, logger=EVENTS_LOGGER):
            results = asyncio.run(_ends([_trigger(aws, j, poll_interval=1) for j in job_ids]))
    finally:
        control(aws.url, "events", {})
    assert sorted(e["description"]["status"] for e, _ in results) == ["FAILED", "SUCCEEDED"]
    for event, received in results:
        assert _end_to_event(event, received) < 4 + 1 + 10, "within a sweep and an interval (and room for load)"
    # No event ever came for the job queue: its jobs were polled each interval, and the log said so once.
    told = [r.getMessage() for r in caplog.records if "no event" in r.getMessage()]
    assert len(told) == 1 and world.queue in told[0], told


@pytest.mark.parametrize("when", ["before the wait", "mid-run"])
def test_a_deleted_queue_sends_the_poller_back_to_its_interval_and_says_so_once(
    aws: AwsWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture, when: str,
) -> None:
    world = EventsWorld(aws, monkeypatch, capsys, sweep=600)
    sqs = aws.client("sqs")
    if when == "before the wait":
        sqs.delete_queue(QueueUrl=world.url)
    job_ids = world.submit(seconds=3 if when == "before the wait" else 15, count=3)

    async def run() -> list[tuple[dict[str, Any], float]]:
        waiting = asyncio.ensure_future(_ends([_trigger(aws, j, poll_interval=1) for j in job_ids]))
        if when == "mid-run":  # once events flow (the reader trusts them), the queue goes
            deadline = time.monotonic() + 60
            while not any(s.trusted() for s in events._SOURCES.get(asyncio.get_running_loop(), {}).values()):
                assert time.monotonic() < deadline and not waiting.done()
                await asyncio.sleep(0.05)
            await asyncio.to_thread(sqs.delete_queue, QueueUrl=world.url)
        return await waiting

    with caplog.at_level(logging.WARNING, logger=EVENTS_LOGGER):
        results = asyncio.run(run())
    for event, received in results:
        assert event["description"]["status"] == "SUCCEEDED"
        assert _end_to_event(event, received) < 1 + 10  # the interval (and room for load), not the 600 s sweep
    told = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert len(told) == 1 and world.url in told[0], told


def test_duplicated_and_reordered_events_resume_each_task_once_with_its_outcome(
    aws: AwsWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world = EventsWorld(aws, monkeypatch, capsys, sweep=600)
    control(aws.url, "events", {"duplicate_rate": 1.0, "jitter": 1.0})
    try:
        codes = [0, 1, 0, 2, 0]
        job_ids = world.submit(seconds=1, codes=codes)
        results = asyncio.run(_ends([_trigger(aws, j, poll_interval=30) for j in job_ids]))
    finally:
        control(aws.url, "events", {})
    outcome = {e["job_id"]: e["description"]["status"] for e, _ in results}
    assert outcome == {j: "SUCCEEDED" if c == 0 else "FAILED" for j, c in zip(job_ids, codes, strict=True)}


def test_events_delayed_past_the_jobs_end_still_end_it_at_the_event(
    aws: AwsWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world = EventsWorld(aws, monkeypatch, capsys, sweep=600)
    control(aws.url, "events", {"delay": 3.0})
    try:
        (job_id,) = world.submit(seconds=1)
        ((event, received),) = asyncio.run(_ends([_trigger(aws, job_id, poll_interval=60)]))
    finally:
        control(aws.url, "events", {})
    assert event["description"]["status"] == "SUCCEEDED"
    assert _end_to_event(event, received) < 3.0 + 15  # an event, late, not the poll 60 s on


def test_a_deadline_is_judged_on_time_between_sweeps(
    aws: AwsWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Events flow, the sweep is 10 minutes away: the task's deadline still ends the wait within an interval."""
    world = EventsWorld(aws, monkeypatch, capsys, sweep=600)
    (job_id,) = world.submit(seconds=120)
    started = time.time()
    ((event, received),) = asyncio.run(_ends([_trigger(aws, job_id, poll_interval=1, deadline=started + 4,
                                                       limit="4 s")]))
    assert event["timed_out"] is True
    assert received - (started + 4) < 1 + 10
    assert aws.client("batch").describe_jobs(jobs=[job_id])["jobs"][0]["status"] in ("FAILED", "RUNNING")


def test_the_setup_is_one_idempotent_step_and_names_a_missing_job_queue(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    stamp = time.monotonic_ns()
    queue = aws.job_queue(f"setup-{stamp}", aws.ec2_ce)
    args = ["--job-queue", queue.rsplit("/", 1)[-1], "--name", f"setup-{stamp}", "--region", "us-east-1"]
    def printed() -> str:  # what the command prints (Airflow's own log lines may come before it)
        out = capsys.readouterr().out
        return out[out.index("Rule arn:"):]

    assert event_setup.main(args) == 0
    first = printed()
    assert event_setup.main(args) == 0  # again: the same queue, rule and policy, nothing duplicated
    assert printed() == first
    assert "[batch_runner]\nevents_queue_url = " in first
    sqs, events = aws.client("sqs"), aws.client("events")
    url = first.split("events_queue_url = ", 1)[1].strip()
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    rule = events.describe_rule(Name=f"setup-{stamp}")
    assert json.loads(rule["EventPattern"]) == {
        "source": ["aws.batch"], "detail-type": ["Batch Job State Change", "Batch Job Queue Blocked"],
        "detail": {"jobQueue": [queue]}}
    (statement,) = json.loads(attributes["Policy"])["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule["Arn"]}}
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(f":setup-{stamp}-dlq") and int(redrive["maxReceiveCount"]) == 30
    assert [t["Arn"] for t in events.list_targets_by_rule(Rule=f"setup-{stamp}")["Targets"]] == [
        attributes["QueueArn"]]
    assert event_setup.main(["--job-queue", "no-such-queue", "--name", "x", "--region", "us-east-1"]) == 2
    assert "--job-queue: no job queue no-such-queue" in capsys.readouterr().err


def test_an_arrays_end_comes_from_its_childrens_and_its_own_events(
    aws: AwsWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world = EventsWorld(aws, monkeypatch, capsys, sweep=600)
    batch = aws.client("batch")
    environment = [{"name": "SECONDS_", "value": "2"}, {"name": "CODE", "value": "0"}]
    parent = batch.submit_job(
        jobName="arr", jobQueue=world.queue, jobDefinition=world.definition, arrayProperties={"size": 4},
        ecsPropertiesOverride={"taskProperties": [{"containers": [{"name": "main", "environment": environment}]}]},
    )["jobId"]
    ((event, received),) = asyncio.run(_ends([_trigger(aws, parent, poll_interval=60)]))
    assert event["description"]["status"] == "SUCCEEDED"
    assert _end_to_event(event, received) < 15  # not at the next 60 s poll


def _blocking_queue(aws: AwsWorld) -> tuple[str, str, str]:
    """A queue on a 1-vCPU Fargate environment, a definition no environment of it can place (2 vCPUs), and
    one that fits."""
    from tests.emulator.test_stuck import fargate_definition, small_fargate_queue

    batch = aws.client("batch")
    return small_fargate_queue(batch), fargate_definition(batch, "2", "4096"), fargate_definition(batch, "0.25", "512")


def test_a_queue_blocked_event_tells_the_task_why_its_job_waits_without_waiting_for_a_poll(
    aws: AwsWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    queue, too_big, fits = _blocking_queue(aws)
    assert event_setup.main(["--job-queue", queue, "--name", f"blocked-{time.monotonic_ns()}",
                             "--region", "us-east-1"]) == 0
    url = capsys.readouterr().out.split("events_queue_url = ", 1)[1].strip()
    monkeypatch.setenv("AIRFLOW__BATCH_RUNNER__EVENTS_QUEUE_URL", url)
    batch = aws.client("batch")
    # The job waits in PENDING on a gate job until the test says so: the task's first DescribeJobs sees no reason.
    release = tmp_path / "release"
    gate = batch.submit_job(jobName="gate", jobQueue=queue, jobDefinition=fits, ecsPropertiesOverride={
        "taskProperties": [{"containers": [{"name": "main", "command": [
            "sh", "-c", f"while [ ! -e {release} ]; do sleep 0.1; done"]}]}]})["jobId"]
    job_id = batch.submit_job(jobName="big", jobQueue=queue, jobDefinition=too_big,
                              dependsOn=[{"jobId": gate}])["jobId"]
    trigger = _trigger(aws, job_id, poll_interval=60)
    said: list[tuple[float, str]] = []

    class Log:
        def info(self, event: Any, *args: Any, **kw: Any) -> None:
            said.append((time.time(), str(event) % args if args else str(event)))

        warning = error = info

    trigger._log = Log()  # type: ignore[assignment]

    described = aws.calls().get("DescribeJobs", 0)

    async def watch() -> float:
        waiting = asyncio.ensure_future(_ends([trigger]))
        deadline = time.monotonic() + 60
        while aws.calls().get("DescribeJobs", 0) == described:  # the task's first DescribeJobs, still PENDING
            assert time.monotonic() < deadline and not waiting.done()
            await asyncio.sleep(0.05)
        released = time.time()
        release.touch()
        deadline = time.monotonic() + 60
        while not any("MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE" in text for _, text in said):
            assert time.monotonic() < deadline and not waiting.done(), said
            await asyncio.sleep(0.05)
        waiting.cancel()
        return released

    try:
        released = asyncio.run(watch())
    finally:
        batch.terminate_job(jobId=job_id, reason="test over")
    told = next(at for at, text in said if "MISCONFIGURATION" in text)
    assert told - released < 30, said  # an event brought it: the next poll was 60 s away


def test_two_triggerers_share_one_queue_and_each_gets_its_jobs_ends(
    aws: AwsWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Each triggerer handles (and deletes) the events of its own jobs from the shared queue. A message that
    bounced between them until the DLQ took it would be found by the sweep (30 s here): every end arrives
    within a sweep, never at the 60 s poll. The jobs end only once both triggerers read the queue (on a loaded
    host, one that started late would find its jobs ended at its first look, and read nothing)."""
    import threading

    world = EventsWorld(aws, monkeypatch, capsys, sweep=30)
    gate = tmp_path / "both-triggerers-read"
    job_ids = world.submit(seconds=2, count=6, gate=gate)
    results: dict[int, list[tuple[dict[str, Any], float]]] = {}
    deleted: dict[int, int] = {}
    reading: dict[int, events.EventsSource] = {}

    def triggerer(number: int) -> None:  # a process of its own: its own event loop, poller and events reader
        async def run() -> None:
            async def note_source() -> None:
                while not events._SOURCES.get(asyncio.get_running_loop()):
                    await asyncio.sleep(0.05)
                (reading[number],) = events._SOURCES[asyncio.get_running_loop()].values()

            noted = asyncio.ensure_future(note_source())
            results[number] = await _ends([_trigger(aws, j, poll_interval=60) for j in job_ids[number::2]])
            await noted
            deleted[number] = reading[number].deleted

        asyncio.run(run())

    threads = [threading.Thread(target=triggerer, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    # Both readers have answered a receive (each is polling the queue) before any job ends.
    wait_until(lambda: len(reading) == 2 and all(s.down is None for s in reading.values()), timeout=60)
    gate.touch()
    for thread in threads:
        thread.join(timeout=180)
    assert sorted(results) == [0, 1]
    for event, received in results[0] + results[1]:
        assert event["description"]["status"] == "SUCCEEDED"
        assert _end_to_event(event, received) < 30 + 15, "within a sweep: not at the next 60 s poll"
    assert deleted[0] >= 1 and deleted[1] >= 1, deleted  # each read its own jobs' events from the shared queue


def test_a_triggerer_restart_with_messages_in_flight_loses_no_end(
    aws: AwsWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The first triggerer received the job's events and stopped before deleting them (they stay hidden for a
    minute); the job ends while no triggerer runs. The revived trigger finds the end at once, without them."""
    world = EventsWorld(aws, monkeypatch, capsys, sweep=600)
    release = tmp_path / "release"
    batch = aws.client("batch")
    (job_id,) = [batch.submit_job(
        jobName="gated", jobQueue=world.queue, jobDefinition=world.definition,
        ecsPropertiesOverride={"taskProperties": [{"containers": [{"name": "main", "command": [
            "sh", "-c", f"while [ ! -e {release} ]; do sleep 0.1; done"]}]}]})["jobId"]]
    trigger = _trigger(aws, job_id, poll_interval=60)

    async def first_instance() -> None:
        waiting = asyncio.ensure_future(_ends([trigger]))
        deadline = time.monotonic() + 60
        while not any(s.received for s in events._SOURCES.get(asyncio.get_running_loop(), {}).values()):
            assert time.monotonic() < deadline and not waiting.done()
            await asyncio.sleep(0.05)
        waiting.cancel()  # the triggerer stops with the messages it received not deleted

    asyncio.run(first_instance())
    release.touch()
    wait_until(lambda: batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"] == "SUCCEEDED", timeout=60)
    started = time.time()
    ((event, received),) = asyncio.run(_ends([BatchRunnerTrigger(**trigger.serialize()[1])]))
    assert event["description"]["status"] == "SUCCEEDED"
    assert received - started < 15  # its first DescribeJobs, not the messages (hidden) nor the 60 s poll


def test_a_job_that_never_starts_sends_no_more_events_and_its_runnable_limit_still_ends_it(
    aws: AwsWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A queue on a DISABLED environment: the job goes RUNNABLE (one event) and says nothing more. Between
    sweeps 10 minutes apart, the task's max_runnable_time still ends it, judged each interval."""
    queue = aws.queue_where_jobs_never_start(f"never-{time.monotonic_ns()}")
    assert event_setup.main(["--job-queue", queue, "--name", f"never-{time.monotonic_ns()}",
                             "--region", "us-east-1"]) == 0
    url = capsys.readouterr().out.split("events_queue_url = ", 1)[1].strip()
    monkeypatch.setenv("AIRFLOW__BATCH_RUNNER__EVENTS_QUEUE_URL", url)
    monkeypatch.setenv("AIRFLOW__BATCH_RUNNER__EVENTS_SWEEP_INTERVAL", "600")
    from tests.emulator.test_stuck import fargate_definition

    batch = aws.client("batch")
    job_id = batch.submit_job(jobName="never", jobQueue=queue, jobDefinition=fargate_definition(batch))["jobId"]
    started = time.time()
    ((event, received),) = asyncio.run(_ends([_trigger(aws, job_id, poll_interval=1, max_runnable_time=3)]))
    assert event["verdict"]["stuck_for"] == "3 s"
    assert received - started < 3 + 1 + 10  # the limit and an interval (and room for load), not the sweep
    job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
    assert job["status"] == "FAILED"


def test_events_lost_after_they_flowed_are_found_by_the_sweep_and_polling_takes_over(
    aws: AwsWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = EventsWorld(aws, monkeypatch, capsys, sweep=4)

    async def run() -> tuple[dict[str, Any], float]:
        (first,) = await asyncio.to_thread(world.submit, 1)
        await _ends([_trigger(aws, first, poll_interval=1)])  # events flow for the queue
        await asyncio.to_thread(control, aws.url, "events", {"drop_rate": 1.0})
        # The short job's end, found by a sweep with no event, counts as lost once the grace an unannounced
        # change gets (its event may be on its way) has passed: the long job still runs then.
        short, long = await asyncio.gather(asyncio.to_thread(world.submit, 2),
                                           asyncio.to_thread(world.submit, events.MISSED_GRACE + 15))
        results = await _ends([_trigger(aws, j, poll_interval=1) for j in short + long])
        return results[1]

    try:
        with caplog.at_level(logging.WARNING, logger=EVENTS_LOGGER):
            event, received = asyncio.run(run())
    finally:
        control(aws.url, "events", {})
    assert event["description"]["status"] == "SUCCEEDED"
    assert _end_to_event(event, received) < 1 + 10  # polled each interval once a sweep found a change unannounced
    told = [r.getMessage() for r in caplog.records if "no event from" in r.getMessage()]
    assert len(told) == 1, told
