"""Batch's events on EventBridge, as the AWS Batch user guide's "event stream" pages describe them, delivered to
an SQS queue by a rule (EventBridge user guide: an SQS target needs a queue policy for events.amazonaws.com)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_batch_runner.emulator.testing import control
from tests.emulator import helpers
from tests.emulator.helpers import container
from tests.emulator.test_stuck import fargate_definition, small_fargate_queue


def _queue_with_rule(
    emulator_url: str, pattern: dict[str, Any], policy: bool = True, source_arn: str | None = None
) -> tuple[Any, str]:
    """An SQS queue that a rule of the default bus targets; the queue policy lets EventBridge send to it
    (for that rule, or ``source_arn``) unless ``policy`` is False."""
    sqs, events = helpers.client(emulator_url, "sqs"), helpers.client(emulator_url, "events")
    url = sqs.create_queue(QueueName=helpers.unique("events"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = helpers.unique("rule")
    rule_arn = events.put_rule(Name=rule, EventPattern=json.dumps(pattern))["RuleArn"]
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": arn}])
    if policy:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                           "Action": "sqs:SendMessage", "Resource": arn,
                           "Condition": {"ArnEquals": {"aws:SourceArn": source_arn or rule_arn}}}],
        })})
    return sqs, url


def _received(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    for message in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return [json.loads(m["Body"]) for m in messages]


def _collect_until(sqs: Any, url: str, done: Any, timeout: float = 60) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []

    def enough() -> bool:
        got.extend(_received(sqs, url))
        return bool(done(got))

    helpers.wait_until(enough, timeout=timeout, interval=0.1)
    return got


STATE_CHANGES = {"source": ["aws.batch"], "detail-type": ["Batch Job State Change"]}


def test_each_status_change_after_the_submission_is_an_event_with_the_job_as_describe_jobs_gives_it(
    emulator_url: str, batch: Any, ec2_queue: str
) -> None:
    sqs, url = _queue_with_rule(emulator_url, STATE_CHANGES)
    definition = helpers.register_ecs(batch, [container("main", ["sh", "-c", "exit 0"])])["jobDefinitionArn"]
    job_id = helpers.submit(batch, ec2_queue, definition)
    got = _collect_until(sqs, url, lambda g: any(e["detail"]["status"] == "SUCCEEDED" for e in g))
    mine = [e for e in got if e["detail"]["jobId"] == job_id]
    assert [e["detail"]["status"] for e in mine] == ["PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"]
    event = mine[-1]
    described = batch.describe_jobs(jobs=[job_id])["jobs"][0]
    assert {k: event[k] for k in ("version", "detail-type", "source", "account", "region")} == {
        "version": "0", "detail-type": "Batch Job State Change", "source": "aws.batch",
        "account": described["jobArn"].split(":")[4], "region": "us-east-1"}
    assert event["resources"] == [described["jobArn"]]
    assert len({e["id"] for e in mine}) == 5
    assert event["time"].endswith("Z") and "T" in event["time"]
    for key in ("jobArn", "jobName", "jobQueue", "jobDefinition", "stoppedAt", "attempts", "ecsProperties"):
        assert event["detail"][key] == described[key], key


def test_a_rule_filtered_on_a_job_queue_delivers_only_that_queues_jobs(
    emulator_url: str, batch: Any, ec2_queue: str
) -> None:
    other = helpers.create_queue_for(batch, "EC2")
    sqs, url = _queue_with_rule(emulator_url, {**STATE_CHANGES, "detail": {"jobQueue": [ec2_queue]}})
    definition = helpers.register_ecs(batch, [container("main", ["true"])])["jobDefinitionArn"]
    theirs = helpers.submit(batch, other, definition)
    mine = helpers.submit(batch, ec2_queue, definition)
    for job_id in (theirs, mine):
        helpers.wait_for_status(batch, job_id, helpers.TERMINAL, timeout=60)
    got = _collect_until(sqs, url, lambda g: any(e["detail"]["status"] == "SUCCEEDED" for e in g))
    assert {e["detail"]["jobId"] for e in got} == {mine}


@pytest.mark.parametrize("policy", ["none", "another rule"])
def test_without_a_queue_policy_for_the_rule_nothing_reaches_the_queue(
    emulator_url: str, batch: Any, ec2_queue: str, policy: str
) -> None:
    sqs, url = _queue_with_rule(emulator_url, STATE_CHANGES, policy=policy != "none",
                                source_arn="arn:aws:events:us-east-1:123456789012:rule/another")
    before = control(emulator_url, "events")
    definition = helpers.register_ecs(batch, [container("main", ["true"])])["jobDefinitionArn"]
    helpers.wait_for_status(batch, helpers.submit(batch, ec2_queue, definition), helpers.TERMINAL, timeout=60)
    helpers.wait_until(lambda: control(emulator_url, "events")["failed"] >= before["failed"] + 5)
    assert _received(sqs, url) == []


def test_a_disabled_rule_delivers_nothing(emulator_url: str, batch: Any, ec2_queue: str) -> None:
    sqs, url = _queue_with_rule(emulator_url, STATE_CHANGES)
    events = helpers.client(emulator_url, "events")
    for rule in events.list_rules()["Rules"]:
        events.disable_rule(Name=rule["Name"])
    before = control(emulator_url, "events")["sent"]
    definition = helpers.register_ecs(batch, [container("main", ["true"])])["jobDefinitionArn"]
    helpers.wait_for_status(batch, helpers.submit(batch, ec2_queue, definition), helpers.TERMINAL, timeout=60)
    helpers.wait_until(lambda: control(emulator_url, "events")["sent"] >= before + 5)
    assert _received(sqs, url) == []


def test_a_job_that_blocks_its_queue_sends_a_queue_blocked_event_with_the_reason(
    emulator_url: str, batch: Any
) -> None:
    sqs, url = _queue_with_rule(emulator_url, {"source": ["aws.batch"], "detail-type": ["Batch Job Queue Blocked"]})
    queue = small_fargate_queue(batch)
    job_id = helpers.submit(batch, queue, fargate_definition(batch, "2", "4096"))
    (event,) = _collect_until(sqs, url, lambda g: g)
    assert event["detail-type"] == "Batch Job Queue Blocked"
    assert event["detail"]["jobId"] == job_id and event["detail"]["status"] == "RUNNABLE"
    assert event["detail"]["statusReason"].startswith("MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE - ")
    assert event["resources"] == [event["detail"]["jobArn"], queue]
    batch.terminate_job(jobId=job_id, reason="done")


def test_delivery_can_drop_or_duplicate_events(emulator_url: str, batch: Any, ec2_queue: str) -> None:
    sqs, url = _queue_with_rule(emulator_url, STATE_CHANGES)
    definition = helpers.register_ecs(batch, [container("main", ["true"])])["jobDefinitionArn"]
    try:
        control(emulator_url, "events", {"drop_rate": 1.0})
        sent = control(emulator_url, "events")["sent"]
        helpers.wait_for_status(batch, helpers.submit(batch, ec2_queue, definition), helpers.TERMINAL, timeout=60)
        helpers.wait_until(lambda: control(emulator_url, "events")["sent"] >= sent + 5)
        assert _received(sqs, url) == []
        control(emulator_url, "events", {"duplicate_rate": 1.0, "jitter": 0.2})
        job_id = helpers.submit(batch, ec2_queue, definition)
        # Jittered, the copies come in any order: until all ten are there.
        got = _collect_until(sqs, url, lambda g: len([e for e in g if e["detail"]["jobId"] == job_id]) >= 10)
        statuses = sorted(e["detail"]["status"] for e in got if e["detail"]["jobId"] == job_id)
        assert statuses == sorted(["PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"] * 2)
    finally:
        control(emulator_url, "events", {})


@pytest.mark.parametrize("spec", [{"drop_rate": 2}, {"delay": -1}, {"lose": 1}, {"jitter": "1"}])
def test_bad_delivery_settings_are_refused(emulator_url: str, spec: dict[str, Any]) -> None:
    with pytest.raises(Exception, match="400"):
        control(emulator_url, "events", spec)
