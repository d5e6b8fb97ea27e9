"""AWS Batch's retry strategy, as the API reference documents it, and the injected interruptions that test it.

``evaluateOnExit``: up to 5 entries, each an ``action`` (RETRY or EXIT, case-insensitive) and optional glob
patterns on the attempt's ``statusReason``, a container's ``reason`` and its ``exitCode``; a pattern matches
exactly, or its start when it ends with ``*``. The first entry whose every pattern matches decides; when
none matches, the job is retried (while attempts remain).

Interruptions stand in for a Spot reclaim: ``POST /_emulator/interruptions`` with
``{"rules": [{"jobName": "spot-*", "statusReason": "Host EC2 (instance i-0123) terminated.", "attempts": 1,
"afterSeconds": 0.5}]}`` stops the first ``attempts`` attempts of every job whose name matches, that long
after they reach RUNNING, with that status reason and no container exit code, as a lost host does.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_batch_runner.emulator.batch.validation import ClientException

MAX_EVALUATE_ON_EXIT = 5
MAX_PATTERN = 512
# onStatusReason and onReason: letters, numbers, periods, colons and white space; onExitCode: numbers.
# Either may end with one asterisk.
REASON_PATTERN = re.compile(r"[A-Za-z0-9.:\s]*\*?")
EXIT_CODE_PATTERN = re.compile(r"[0-9]*\*?")
PATTERNS = {"onStatusReason": REASON_PATTERN, "onReason": REASON_PATTERN, "onExitCode": EXIT_CODE_PATTERN}


def check_retry_strategy(strategy: Mapping[str, Any] | None) -> None:
    if not strategy:
        return
    unknown = set(strategy) - {"attempts", "evaluateOnExit"}
    if unknown:
        raise ClientException(f"retryStrategy has no field {sorted(unknown)[0]}")
    attempts = strategy.get("attempts")
    if attempts is not None and (isinstance(attempts, bool) or not isinstance(attempts, int)
                                 or not 1 <= attempts <= 10):
        raise ClientException("retryStrategy.attempts must be between 1 and 10")
    rules = strategy.get("evaluateOnExit")
    if rules is None:
        return
    if attempts is None:
        # RetryStrategy.evaluateOnExit: "If this parameter is specified, then the attempts parameter must also be
        # specified."
        raise ClientException("retryStrategy.attempts must be specified with retryStrategy.evaluateOnExit")
    if not isinstance(rules, list) or len(rules) > MAX_EVALUATE_ON_EXIT:
        raise ClientException(f"retryStrategy.evaluateOnExit is a list of at most {MAX_EVALUATE_ON_EXIT} entries")
    for index, rule in enumerate(rules):
        where = f"retryStrategy.evaluateOnExit[{index}]"
        if not isinstance(rule, Mapping):
            raise ClientException(f"{where} must be an object")
        unknown = set(rule) - {"action", *PATTERNS}
        if unknown:
            raise ClientException(f"{where} has no field {sorted(unknown)[0]}")
        if str(rule.get("action", "")).upper() not in ("RETRY", "EXIT"):
            raise ClientException(f"{where}.action must be RETRY or EXIT")
        for name, allowed in PATTERNS.items():
            pattern = rule.get(name)
            if pattern is None:
                continue
            if not isinstance(pattern, str) or len(pattern) > MAX_PATTERN or not allowed.fullmatch(pattern):
                kind = "numbers" if name == "onExitCode" else "letters, numbers, periods, colons and white space"
                raise ClientException(
                    f"{where}.{name} {pattern!r} is not valid: up to {MAX_PATTERN} characters of {kind}, "
                    "optionally ending with *"
                )


def glob_matches(pattern: str, value: str) -> bool:
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


@dataclass(frozen=True)
class Exit:
    """What one container of a stopped attempt reported."""

    reason: str | None
    exit_code: int | None


def retry_action(rules: Iterable[Mapping[str, Any]], status_reason: str | None, exits: Iterable[Exit]) -> str:
    """RETRY or EXIT for a failed attempt: the first rule that matches, else RETRY.

    A multi-container task has one reason and exit code per container: a rule's onReason and onExitCode
    match when one container satisfies both. A value the attempt lacks matches as the empty string.
    """
    exits = list(exits) or [Exit(None, None)]
    for rule in rules:
        on_status = rule.get("onStatusReason")
        if on_status is not None and not glob_matches(on_status, status_reason or ""):
            continue
        on_reason, on_code = rule.get("onReason"), rule.get("onExitCode")
        if any(
            (on_reason is None or glob_matches(on_reason, e.reason or ""))
            and (on_code is None or glob_matches(on_code, "" if e.exit_code is None else str(e.exit_code)))
            for e in exits
        ):
            return str(rule["action"]).upper()
    return "RETRY"


@dataclass(frozen=True)
class Interruption:
    job_name: str
    status_reason: str
    attempts: int = 1
    after_seconds: float = 0.5


class Interruptions:
    """The interruption rules in force (shared by every region), until the next reset."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Interruption] = []

    def configure(self, spec: Mapping[str, Any]) -> list[dict[str, Any]]:
        rules = []
        for raw in spec.get("rules") or []:
            unknown = set(raw) - {"jobName", "statusReason", "attempts", "afterSeconds"}
            if unknown or not raw.get("jobName") or not raw.get("statusReason"):
                raise ValueError(
                    "an interruption is {\"jobName\": \"glob*\", \"statusReason\": \"...\", \"attempts\": 1, "
                    f"\"afterSeconds\": 0.5}}; got {dict(raw)!r}"
                )
            rules.append(Interruption(str(raw["jobName"]), str(raw["statusReason"]), int(raw.get("attempts", 1)),
                                      float(raw.get("afterSeconds", 0.5))))
        with self._lock:
            self._rules = rules
        return [vars(rule) for rule in rules]

    def reset(self) -> None:
        with self._lock:
            self._rules = []

    def for_attempt(self, job_name: str, attempt_number: int) -> Interruption | None:
        with self._lock:
            for rule in self._rules:
                if glob_matches(rule.job_name, job_name) and attempt_number <= rule.attempts:
                    return rule
        return None
