"""operators/log_follower: the worker's thread that follows the main container's stream in CloudWatch Logs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from airflow_batch_runner.emulator.testing import control
from airflow_batch_runner.hooks.batch_runner import BatchRunnerHook
from airflow_batch_runner.layout import LOG_GROUP
from airflow_batch_runner.operators.log_follower import LogFollower
from tests.emulator import helpers


class Emitted:
    def __init__(self) -> None:
        self.calls: list[tuple[list[str], str]] = []
        self.lock = threading.Lock()

    def __call__(self, lines: list[str], stream: str) -> None:
        with self.lock:
            self.calls.append((list(lines), stream))

    def lines(self, stream: str | None = None) -> list[str]:
        with self.lock:
            return [line for lines, s in self.calls for line in lines if stream in (None, s)]


@pytest.fixture
def logs(emulator_url: str) -> Any:
    client = helpers.client(emulator_url, "logs")
    client.create_log_group(logGroupName=LOG_GROUP)
    return client


def write(logs: Any, stream: str, *lines: str) -> None:
    try:
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream,
                        logEvents=[{"timestamp": now, "message": line} for line in lines])


@contextmanager
def faults(emulator_url: str, spec: dict[str, Any]) -> Iterator[None]:
    """The emulator's faults ``spec`` meanwhile (replacing them also releases any call a delay holds)."""
    control(emulator_url, "faults", spec)
    try:
        yield
    finally:
        control(emulator_url, "faults", {})


def test_every_line_is_emitted_once_in_order_and_the_end_reads_the_last_ones(
    hook: BatchRunnerHook, logs: Any
) -> None:
    write(logs, "job/main/1", "one", "two")
    emitted = Emitted()
    follower = LogFollower(hook, interval=0.05, allowance=0.1, emit=emitted)
    follower.follow("job/main/1")
    helpers.wait_until(lambda: emitted.lines() == ["one", "two"])
    write(logs, "job/main/1", "three")
    follower.follow("job/main/1")  # the same stream again: nothing starts over
    write(logs, "job/main/1", "four")
    assert follower.finish(int(time.time() * 1000)) is None
    assert emitted.lines() == ["one", "two", "three", "four"]
    assert {stream for _, stream in emitted.calls} == {"job/main/1"}


def test_a_new_attempts_stream_is_read_from_its_start(hook: BatchRunnerHook, logs: Any) -> None:
    write(logs, "job/main/1", "first attempt")
    emitted = Emitted()
    follower = LogFollower(hook, interval=0.05, allowance=0.1, emit=emitted)
    follower.follow("job/main/1")
    helpers.wait_until(lambda: emitted.lines() == ["first attempt"])
    write(logs, "job/main/2", "second attempt")
    follower.follow("job/main/2")
    assert follower.finish(int(time.time() * 1000)) is None
    assert emitted.calls == [(["first attempt"], "job/main/1"), (["second attempt"], "job/main/2")]


def test_a_stream_not_created_yet_has_no_lines_until_it_is(hook: BatchRunnerHook, logs: Any) -> None:
    # Asked before it exists: no lines (this also builds the hook's client, which on a loaded host can take
    # longer than the final read's patience below).
    assert hook.read_log_lines("job/main/late", None)[0] == []
    emitted = Emitted()
    follower = LogFollower(hook, interval=0.05, allowance=0.1, emit=emitted)
    follower.follow("job/main/late")
    write(logs, "job/main/late", "at last")
    assert follower.finish(int(time.time() * 1000)) is None
    assert emitted.lines() == ["at last"]


def test_nothing_followed_ends_at_once(hook: BatchRunnerHook) -> None:
    assert LogFollower(hook, interval=1.0, allowance=30.0, emit=Emitted()).finish(None) is None


def test_past_the_deadline_the_final_read_is_made_at_once(hook: BatchRunnerHook, logs: Any) -> None:
    write(logs, "job/main/1", "line")
    emitted = Emitted()
    follower = LogFollower(hook, interval=0.05, allowance=60.0, emit=emitted)  # else the end waits a minute
    follower.follow("job/main/1")
    helpers.wait_until(lambda: emitted.lines() == ["line"])
    write(logs, "job/main/1", "last")
    started = time.monotonic()
    assert follower.finish(int(time.time() * 1000), timed_out=True) is None
    assert time.monotonic() - started < 30
    assert emitted.lines() == ["line", "last"]


def test_while_logs_fails_the_end_makes_one_try_and_says_why(
    hook: BatchRunnerHook, logs: Any, emulator_url: str
) -> None:
    write(logs, "job/main/1", "unread")
    with faults(emulator_url, {"logs:GetLogEvents": {"throttle_rate": 1.0}}):
        emitted = Emitted()
        follower = LogFollower(hook, interval=0.05, allowance=60.0, emit=emitted)
        follower.follow("job/main/1")
        helpers.wait_until(lambda: follower.problem is not None)  # its first read was throttled
        before = control(emulator_url, "stats")["calls"]["logs"]["GetLogEvents"]
        started = time.monotonic()
        problem = follower.finish(int(time.time() * 1000))
        assert time.monotonic() - started < 30, "not after the 60 s allowance"
    assert problem is not None and "Throttling" in problem
    # The final try (a regular retry may fall due in between on a slow host: its backoff is 0.5 s or more).
    assert 1 <= control(emulator_url, "stats")["calls"]["logs"]["GetLogEvents"] - before <= 2
    assert emitted.lines() == []


def test_a_logs_that_answers_every_call_slowly_still_gives_the_last_lines(
    hook: BatchRunnerHook, logs: Any, emulator_url: str
) -> None:
    """Every answer takes 2.5 s (a loaded host, a distant region): longer than the final read's 2 s patience
    alone, but the follower has seen Logs answer that slowly all along and waits for the final read's answer."""
    write(logs, "job/main/1", "early")
    with faults(emulator_url, {"logs:GetLogEvents": {"delay": 2.5}}):
        emitted = Emitted()
        follower = LogFollower(hook, interval=0.05, allowance=0.1, emit=emitted)
        follower.follow("job/main/1")
        helpers.wait_until(lambda: emitted.lines() == ["early"], timeout=30)
        write(logs, "job/main/1", "last")
        problem = follower.finish(int(time.time() * 1000))
    assert problem is None
    assert emitted.lines() == ["early", "last"]
