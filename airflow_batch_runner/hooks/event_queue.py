"""The AWS calls that set up Batch's events for the triggerer: an SQS queue (and its dead-letter queue) that an
EventBridge rule fills with the Batch events of some job queues. Every call is idempotent: running the
setup again updates what exists and creates what is missing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

EVENT_TYPES = ("Batch Job State Change", "Batch Job Queue Blocked")
TARGET_ID = "batch-runner-events"
# A message no triggerer claims (a job of a task that does not defer, or of another tool) goes to the
# dead-letter queue after this many receives (each about a second apart): enough that, with a few triggerers
# reading the queue, a message reaches its owner before it is moved there.
MAX_RECEIVE_COUNT = 30
QUEUE_RETENTION = 3600  # s: an event older than an hour is of no use (the sweep has seen the change)
DLQ_RETENTION = 1_209_600  # s (14 days, SQS's longest): kept for inspection
VISIBILITY = 60


@dataclass(frozen=True)
class EventQueue:
    queue_url: str
    queue_arn: str
    dead_letter_url: str
    rule_arn: str
    job_queues: tuple[str, ...]


def event_pattern(job_queue_arns: Sequence[str]) -> dict[str, Any]:
    return {"source": ["aws.batch"], "detail-type": list(EVENT_TYPES), "detail": {"jobQueue": list(job_queue_arns)}}


def queue_policy(queue_arn: str, rule_arn: str) -> dict[str, Any]:
    """Only EventBridge, and only for this rule, may send to the queue."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "BatchRunnerEvents",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
        }],
    }


class EventQueueSetup:
    def __init__(self, aws_conn_id: str | None, region_name: str | None) -> None:
        kwargs: dict[str, Any] = {"aws_conn_id": aws_conn_id, "region_name": region_name}
        self.batch: Any = AwsBaseHook(client_type="batch", **kwargs).conn
        self.sqs: Any = AwsBaseHook(client_type="sqs", **kwargs).conn
        self.events: Any = AwsBaseHook(client_type="events", **kwargs).conn

    def job_queue_arns(self, names: Sequence[str]) -> list[str]:
        """Each job queue (name or ARN) as its ARN, which Batch's events name; a missing one is an error."""
        found = self.batch.describe_job_queues(jobQueues=list(names))["jobQueues"]
        arns = {q["jobQueueName"]: q["jobQueueArn"] for q in found}
        arns.update({q["jobQueueArn"]: q["jobQueueArn"] for q in found})
        missing = [n for n in names if n not in arns]
        if missing:
            raise ValueError(f"--job-queue: no job queue {', '.join(missing)} in this account and Region; give the "
                             "name or ARN of the job queues the deferred tasks use")
        return [arns[n] for n in names]

    def _queue(self, name: str, attributes: dict[str, str]) -> tuple[str, str]:
        url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        self.sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return str(url), str(arn)

    def ensure(self, name: str, job_queues: Sequence[str]) -> EventQueue:
        arns = self.job_queue_arns(job_queues)
        dlq_url, dlq_arn = self._queue(f"{name}-dlq", {"MessageRetentionPeriod": str(DLQ_RETENTION)})
        url, arn = self._queue(name, {
            "MessageRetentionPeriod": str(QUEUE_RETENTION),
            "VisibilityTimeout": str(VISIBILITY),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}),
        })
        rule_arn = str(self.events.put_rule(Name=name, EventPattern=json.dumps(event_pattern(arns)), State="ENABLED",
                                            Description="AWS Batch events for airflow-batch-runner's triggerer")
                       ["RuleArn"])
        self.sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(queue_policy(arn, rule_arn))})
        self.events.put_targets(Rule=name, Targets=[{"Id": TARGET_ID, "Arn": arn}])
        return EventQueue(url, arn, dlq_url, rule_arn, tuple(arns))
