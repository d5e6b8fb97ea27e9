"""AWS Batch's events on EventBridge, delivered by the rules of moto's EventBridge to their SQS targets.

As the AWS Batch user guide's "event stream" pages describe them: every status change of a job that was
already submitted sends ``Batch Job State Change`` (a submission itself sends nothing), and a job that
blocks its queue in RUNNABLE sends ``Batch Job Queue Blocked`` (its ``statusReason`` says why). The
envelope is EventBridge's (``version``, ``id``, ``detail-type``, ``source: aws.batch``, ``account``,
``time``, ``region``, ``resources``) and ``detail`` is the job as DescribeJobs gives it (the blocked event
also names the job queue in ``resources``). EventBridge delivers each event to the targets of every
ENABLED rule of the default bus whose pattern matches it; an SQS target receives it only when the queue's
access policy lets ``events.amazonaws.com`` send to it (else AWS drops it, counting a failed invocation).

``POST /_emulator/events`` makes delivery unreliable, as EventBridge's at-least-once delivery allows:
``drop_rate`` (events never delivered), ``duplicate_rate`` (delivered twice), ``delay`` (seconds late) and
``jitter`` (up to that many seconds more, at random: events then arrive out of order).
"""

from __future__ import annotations

import fnmatch
import json
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from airflow_batch_runner.emulator.batch.resources import ACCOUNT_ID

STATE_CHANGE = "Batch Job State Change"
QUEUE_BLOCKED = "Batch Job Queue Blocked"
EVENTS_PRINCIPAL = "events.amazonaws.com"


@dataclass
class Delivery:
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    delay: float = 0.0
    jitter: float = 0.0

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> Delivery:
        unknown = set(spec) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"events take {sorted(cls.__dataclass_fields__)}; unknown {sorted(unknown)}")
        values: dict[str, float] = {}
        for name, value in spec.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"events {name} must be a number >= 0; got {value!r}")
            if name.endswith("_rate") and value > 1:
                raise ValueError(f"events {name} is a probability from 0 to 1; got {value!r}")
            values[name] = float(value)
        return cls(**values)


def envelope(detail_type: str, region: str, detail: Mapping[str, Any], resources: list[str]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.batch",
        "account": ACCOUNT_ID,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": region,
        "resources": resources,
        "detail": dict(detail),
    }


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _arn_matches(pattern: str, arn: str) -> bool:
    """IAM's wildcard match (``*`` any run of characters, ``?`` one), as ArnLike and Resource use it."""
    return fnmatch.fnmatchcase(arn, pattern.replace("[", "[[]"))


def policy_allows(policy: str | None, queue_arn: str, rule_arn: str) -> bool:
    """Whether an SQS queue's access policy lets EventBridge (for ``rule_arn``) send to it: an Allow statement
    for the ``events.amazonaws.com`` service (or ``*``), ``sqs:SendMessage`` (or ``sqs:*``/``*``), the queue
    (or ``*``), and, when it has an ``aws:SourceArn`` condition (ArnEquals/ArnLike/StringEquals), the rule."""
    if not policy:
        return False
    try:
        statements = _as_list(json.loads(policy).get("Statement", []))
    except (ValueError, AttributeError):
        return False
    for statement in statements:
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        services = _as_list(principal.get("Service", [])) if isinstance(principal, Mapping) else [principal]
        if EVENTS_PRINCIPAL not in services and "*" not in services:
            continue
        if not {"sqs:SendMessage", "sqs:*", "*"} & set(_as_list(statement.get("Action", []))):
            continue
        if not any(_arn_matches(str(r), queue_arn) for r in _as_list(statement.get("Resource", "*"))):
            continue
        conditions = statement.get("Condition") or {}
        sources = [v for op in ("ArnEquals", "ArnLike", "StringEquals", "StringLike")
                   for v in _as_list((conditions.get(op) or {}).get("aws:SourceArn", []))]
        if sources and not any(_arn_matches(str(s), rule_arn) for s in sources):
            continue
        return True
    return False


class BatchEvents:
    """The events of every region's Batch, and how (un)reliably they are delivered."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self.delivery = Delivery()
        self.sent = 0  # events EventBridge received from Batch
        self.delivered = 0  # messages put on SQS queues
        self.failed = 0  # deliveries a queue's policy refused
        # Deliveries go through one thread, in order, outside the Batch lock that publish() is called under
        # (moto's SendMessage walks the whole queue: under the lock, a long queue would slow every job).
        self._outbox: queue.SimpleQueue[tuple[str, dict[str, Any]]] = queue.SimpleQueue()
        self._courier: threading.Thread | None = None

    def configure(self, spec: Mapping[str, Any]) -> None:
        delivery = Delivery.parse(spec)
        with self._lock:
            self.delivery = delivery

    def settings(self) -> dict[str, Any]:
        with self._lock:
            return {**asdict(self.delivery), "sent": self.sent, "delivered": self.delivered, "failed": self.failed}

    def reset(self) -> None:
        with self._lock:
            self.delivery = Delivery()
            self.sent = self.delivered = self.failed = 0

    def publish(
        self, region: str, detail_type: str, detail: Mapping[str, Any], resources: list[str],
        call_later: Callable[..., None],
    ) -> None:
        """Send one event to EventBridge; its rules deliver it (now, later, twice or never, as configured)."""
        event = envelope(detail_type, region, detail, resources)
        with self._lock:
            self.sent += 1
            delivery = self.delivery
            if self._random.random() < delivery.drop_rate:
                return
            copies = 2 if self._random.random() < delivery.duplicate_rate else 1
            delays = [delivery.delay + self._random.random() * delivery.jitter for _ in range(copies)]
        for delay in delays:
            if delay > 0:
                call_later(delay, self._send, region, event)
            else:
                self._send(region, event)

    def _send(self, region: str, event: dict[str, Any]) -> None:
        with self._lock:
            if self._courier is None:
                self._courier = threading.Thread(target=self._carry, name="emulator-batch-events", daemon=True)
                self._courier.start()
        self._outbox.put((region, event))

    def _carry(self) -> None:
        while True:
            region, event = self._outbox.get()
            try:
                self._deliver(region, event)
            except Exception:  # a delivery that fails (a backend reset under it) loses that event, as EventBridge may
                with self._lock:
                    self.failed += 1

    def _deliver(self, region: str, event: dict[str, Any]) -> None:
        from moto.events.models import events_backends
        from moto.sqs.models import sqs_backends

        try:
            bus = events_backends[ACCOUNT_ID][region].describe_event_bus("default")
        except Exception:
            return
        for rule in list(bus.rules.values()):
            if rule.state != "ENABLED" or not rule.event_pattern.matches_event(event):  # type: ignore[arg-type]
                continue
            for target in list(rule.targets):
                arn = str(target.get("Arn", ""))
                if ":sqs:" not in arn:
                    continue  # only SQS targets are delivered by this emulator
                if {"Input", "InputPath", "InputTransformer"} & set(target):
                    with self._lock:
                        self.failed += 1  # not supported (docs/reference/emulator.md): nothing is delivered reshaped
                    continue
                queue_region, queue_name = arn.split(":")[3], arn.rsplit(":", 1)[-1]
                backend = sqs_backends[ACCOUNT_ID][queue_region]
                try:
                    queue = backend.get_queue(queue_name)
                except Exception:
                    with self._lock:
                        self.failed += 1  # the target queue is gone
                    continue
                if not policy_allows(queue.policy, queue.queue_arn, rule.arn):
                    with self._lock:
                        self.failed += 1
                    continue
                backend.send_message(queue_name=queue_name, message_body=json.dumps(event))
                with self._lock:
                    self.delivered += 1
