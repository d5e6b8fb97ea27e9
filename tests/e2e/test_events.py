"""The triggerer with AWS Batch's events (EventBridge -> SQS, set up by ``airflow_batch_runner.event_setup``):
jobs end as soon as Batch announces it, and polling stays the safety net when events are lost or the queue
goes away."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest

from airflow_batch_runner import event_setup
from airflow_batch_runner.emulator.testing import control
from airflow_batch_runner.triggers.batch_runner import BatchRunnerTrigger
from tests.e2e.conftest import AwsWorld
from tests.e2e.test_trigger import _trigger

EVENTS_LOGGER = "airflow_batch_runner.triggers.events"


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
                "name": "main", "image": "busybox", "command": ["/bin/sh", "-c", "sleep $SECONDS_; exit $CODE"],
                "resourceRequirements": [{"type": "VCPU", "value": "0.25"}, {"type": "MEMORY", "value": "256"}],
            }]}]},
        )["jobDefinitionArn"]

    def submit(self, seconds: float = 1, codes: list[int] | None = None, count: int = 1) -> list[str]:
        batch = self.aws.client("batch")
        codes = codes or [0] * count
        return [batch.submit_job(
            jobName=f"e{i}", jobQueue=self.queue, jobDefinition=self.definition,
            ecsPropertiesOverride={"taskProperties": [{"containers": [{"name": "main", "environment": [
                {"name": "SECONDS_", "value": str(seconds)}, {"name": "CODE", "value": str(code)}]}]}]},
        )["jobId"] for i, code in enumerate(codes)]

    def remaining_statuses(self) -> list[str]:
        """The statuses the queue's messages still announce (once none is hidden by a reader any more)."""
        sqs = self.aws.client("sqs")
        deadline = time.monotonic() + 60
        while int(sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
                  ["Attributes"]["ApproximateNumberOfMessagesNotVisible"]):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        statuses = []
        while messages := sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", []):
            statuses += [json.loads(m["Body"])["detail"]["status"] for m in messages]
        return statuses


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
    aws: AwsWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world = EventsWorld(aws, monkeypatch, capsys, sweep=600)
    job_ids = world.submit(seconds=2, count=6)
    before = _describe_calls(aws)
    results = asyncio.run(_ends([_trigger(aws, j, poll_interval=30) for j in job_ids]))
    calls = _describe_calls(aws) - before
    for event, received in results:
        assert event["status"] == "done" and event["description"]["status"] == "SUCCEEDED"
        assert _end_to_event(event, received) < 15, "not at the next 30 s poll: the event woke the poller"
    # No 30 s round came: the jobs were described when they were watched and when events named them.
    assert calls <= 1 + 5 * 6, calls
    # Each job's end was read from its event, and that message deleted once handled. Only events that came
    # before a job was watched (left for another triggerer) may remain.
    assert "SUCCEEDED" not in world.remaining_statuses()


def test_when_every_event_is_lost_a_sweep_finds_the_end_and_polling_takes_over(
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
    told = [r.getMessage() for r in caplog.records if "no event" in r.getMessage()]
    assert len(told) == 1, told  # said once


def test_a_deleted_queue_sends_the_poller_back_to_its_interval_and_says_so_once(
    aws: AwsWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = EventsWorld(aws, monkeypatch, capsys, sweep=600)
    aws.client("sqs").delete_queue(QueueUrl=world.url)
    job_ids = world.submit(seconds=3, count=3)
    with caplog.at_level(logging.WARNING, logger=EVENTS_LOGGER):
        results = asyncio.run(_ends([_trigger(aws, j, poll_interval=1) for j in job_ids]))
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
