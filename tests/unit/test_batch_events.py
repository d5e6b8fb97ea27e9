"""Pure parts of Batch's events: which job a queue message names (the triggerer), and whether a queue policy
lets EventBridge deliver to it (the emulator; EventBridge user guide, "Amazon SQS permissions")."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_batch_runner.emulator.batch.events import policy_allows
from airflow_batch_runner.triggers.events import Named, job_of

QUEUE = "arn:aws:sqs:us-east-1:123456789012:events"
RULE = "arn:aws:events:us-east-1:123456789012:rule/batch"


def message(body: Any) -> dict[str, Any]:
    return {"ReceiptHandle": "h", "Body": body if isinstance(body, str) else json.dumps(body)}


def test_a_batch_event_names_its_job_and_an_array_childs_names_the_parent() -> None:
    event = {"detail-type": "Batch Job State Change", "source": "aws.batch",
             "detail": {"jobId": "abc", "status": "RUNNING", "jobQueue": "arn:q"}}
    assert job_of(message(event)) == Named("abc", "arn:q", "Batch Job State Change")
    child = {**event, "detail": {"jobId": "abc:7", "status": "SUCCEEDED", "jobQueue": "arn:q"}}
    assert job_of(message(child)) == Named("abc", "arn:q", "Batch Job State Change")


@pytest.mark.parametrize("body", ["", "not json", "[]", {"detail": {}}, {"detail": "x"}, {"source": "aws.batch"}])
def test_anything_else_names_no_job(body: Any) -> None:
    assert job_of(message(body)) is None


def statement(**fields: Any) -> str:
    base = {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
            "Resource": QUEUE}
    return json.dumps({"Version": "2012-10-17", "Statement": [{**base, **fields}]})


def test_eventbridge_may_send_when_a_statement_allows_its_service_the_action_and_the_queue() -> None:
    assert policy_allows(statement(), QUEUE, RULE)
    assert policy_allows(statement(Condition={"ArnEquals": {"aws:SourceArn": RULE}}), QUEUE, RULE)
    assert policy_allows(statement(Action=["sqs:*"], Resource="*"), QUEUE, RULE)
    assert policy_allows(statement(Condition={"ArnLike": {"aws:SourceArn": "arn:aws:events:*:rule/b*"}}), QUEUE, RULE)


@pytest.mark.parametrize("policy", [
    None,
    "",
    "{not json",
    statement(Effect="Deny"),
    statement(Principal={"Service": "sns.amazonaws.com"}),
    statement(Action="sqs:ReceiveMessage"),
    statement(Resource="arn:aws:sqs:us-east-1:123456789012:other"),
    statement(Condition={"ArnEquals": {"aws:SourceArn": "arn:aws:events:us-east-1:123456789012:rule/other"}}),
])
def test_otherwise_nothing_is_delivered(policy: str | None) -> None:
    assert not policy_allows(policy, QUEUE, RULE)
