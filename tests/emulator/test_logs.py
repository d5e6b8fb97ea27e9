"""CloudWatch Logs as a reader meets it: lines readable a little after they were written (ingestion
delay), in order, with forward tokens that pick up what arrived later; and Logs' request-rate quotas."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from airflow_batch_runner.emulator.cloudwatch import DEFAULT_INGESTION_DELAY
from airflow_batch_runner.emulator.testing import control
from tests.emulator import helpers

NO_RETRIES: dict[str, Any] = {"retries": {"total_max_attempts": 1}}
# CloudWatch Logs quotas per account and Region: FilterLogEvents 5 TPS (not adjustable), GetLogEvents 25 TPS.
FILTER_TPS, GET_TPS = 5, 25


def _finished_job_stream(batch: Any, queue: str, command: str) -> str:
    definition = helpers.register_container(batch, ["sh", "-c", command])
    job_id = helpers.submit(batch, queue, definition["jobDefinitionArn"])
    job = helpers.wait_for_status(batch, job_id, ["SUCCEEDED"], timeout=30)
    return str(job["container"]["logStreamName"])


def _read(logs: Any, stream: str, token: str | None = None) -> tuple[list[str], str]:
    kwargs: dict[str, Any] = {"logGroupName": helpers.LOG_GROUP, "logStreamName": stream, "startFromHead": True}
    if token:
        kwargs["nextToken"] = token
    page = logs.get_log_events(**kwargs)
    return [e["message"] for e in page["events"]], page["nextForwardToken"]


def test_the_ingestion_delay_is_on_by_default(emulator_url: str) -> None:
    assert control(emulator_url, "logs")["ingestion_delay"] == DEFAULT_INGESTION_DELAY > 0


def test_a_line_is_readable_only_after_the_ingestion_delay(batch: Any, logs: Any, ec2_queue: str) -> None:
    control(logs.meta.endpoint_url, "logs", {"ingestion_delay": 3})
    stream = _finished_job_stream(batch, ec2_queue, "echo first; echo second")
    lines, token = _read(logs, stream)
    filtered = logs.filter_log_events(logGroupName=helpers.LOG_GROUP, logStreamNames=[stream])["events"]
    assert (lines, filtered) == ([], [])
    # The forward token of the empty read picks the lines up once they are ingested, in order.
    found = helpers.wait_until(lambda: _read(logs, stream, token)[0], timeout=10)
    found_at = time.time() * 1000
    assert found == ["first", "second"]
    events = logs.filter_log_events(logGroupName=helpers.LOG_GROUP, logStreamNames=[stream])["events"]
    assert [e["message"] for e in events] == ["first", "second"]
    # Readable from the delay on after each line was written (the job's end may be seen late on a loaded host).
    assert all(e["ingestionTime"] >= e["timestamp"] + 2000 for e in events)
    assert found_at >= max(e["timestamp"] for e in events) + 2900  # 3 s, less the timestamps' rounding


def test_lines_keep_their_order_through_ingestion(batch: Any, logs: Any, ec2_queue: str) -> None:
    stream = _finished_job_stream(batch, ec2_queue, "for i in $(seq 1 200); do echo line-$i; done")
    assert helpers.log_messages(logs, stream) == [f"line-{i}" for i in range(1, 201)]


def test_the_delay_can_be_turned_off(batch: Any, logs: Any, ec2_queue: str) -> None:
    control(logs.meta.endpoint_url, "logs", {"ingestion_delay": 0})
    stream = _finished_job_stream(batch, ec2_queue, "echo at-once")
    assert _read(logs, stream)[0] == ["at-once"]


def test_reset_restores_the_delay_and_bad_settings_are_refused(emulator_url: str) -> None:
    control(emulator_url, "logs", {"ingestion_delay": 0})
    control(emulator_url, "reset", {})
    assert control(emulator_url, "logs")["ingestion_delay"] == DEFAULT_INGESTION_DELAY
    for bad in ({"delay": 1}, {"ingestion_delay": -1}, {"ingestion_delay": "1"}, {"ingestion_delay": 61}):
        with pytest.raises(Exception, match="400"):
            control(emulator_url, "logs", bad)


def _codes(calls: int, call: Any) -> list[str]:
    def one(_: int) -> str:
        try:
            call()
        except ClientError as exc:
            return f"{exc.response['Error']['Code']}:{exc.response['ResponseMetadata']['HTTPStatusCode']}"
        return "ok"

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(calls)))


@pytest.mark.parametrize(("operation", "tps"), [("FilterLogEvents", FILTER_TPS), ("GetLogEvents", GET_TPS)])
def test_logs_reads_over_the_quota_are_throttled(emulator_url: str, operation: str, tps: int) -> None:
    logs = helpers.client(emulator_url, "logs", **NO_RETRIES)
    logs.create_log_group(logGroupName="g")
    logs.create_log_stream(logGroupName="g", logStreamName="s")
    if operation == "FilterLogEvents":
        def call() -> Any:
            return logs.filter_log_events(logGroupName="g", logStreamNames=["s"])
    else:
        def call() -> Any:
            return logs.get_log_events(logGroupName="g", logStreamName="s")
    started = time.monotonic()
    codes = _codes(tps * 3, call)
    elapsed = time.monotonic() - started
    admitted = codes.count("ok")
    assert codes.count("ThrottlingException:400") == len(codes) - admitted > 0
    assert admitted <= tps + tps * elapsed + 1
    assert control(emulator_url, "quotas")["throttled"][f"logs:{operation}"] == len(codes) - admitted


# FilterLogEvents, from its API reference and the filter pattern syntax of the CloudWatch Logs user guide


@pytest.fixture
def lines(logs: Any) -> str:
    """A log group with streams app/one, app/two and other/three, holding a few known lines."""
    group = helpers.unique("/filter")
    logs.create_log_group(logGroupName=group)
    messages = {
        "app/one": ["ERROR disk full", "WARN disk slow", "INFO all good"],
        "app/two": ["ERROR Exception: boom", "user=alice id=42"],
        "other/three": ["ERROR elsewhere", "AUTHORIZED REQUEST"],
    }
    for stream, texts in messages.items():
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
            {"timestamp": int(time.time() * 1000), "message": text} for text in texts])
    return group


def _filtered(logs: Any, group: str, **params: Any) -> list[str]:
    return sorted(e["message"] for e in logs.filter_log_events(logGroupName=group, **params)["events"])


def test_filter_log_events_honours_the_stream_name_prefix(logs: Any, lines: str) -> None:
    assert _filtered(logs, lines, logStreamNamePrefix="app/") == sorted(
        ["ERROR disk full", "WARN disk slow", "INFO all good", "ERROR Exception: boom", "user=alice id=42"])
    assert _filtered(logs, lines, logStreamNamePrefix="nothing/") == []


def test_filter_log_events_refuses_a_prefix_with_stream_names(logs: Any, lines: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        logs.filter_log_events(logGroupName=lines, logStreamNames=["app/one"], logStreamNamePrefix="app/")
    assert helpers.client_error(excinfo)[0] == "InvalidParameterException"


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("ERROR", ["ERROR Exception: boom", "ERROR disk full", "ERROR elsewhere"]),
        ("ERROR disk", ["ERROR disk full"]),
        ("?WARN ?INFO", ["INFO all good", "WARN disk slow"]),
        ("ERROR -disk", ["ERROR Exception: boom", "ERROR elsewhere"]),
        ('"Exception: boom"', ["ERROR Exception: boom"]),
        ("%id=[0-9]+%", ["user=alice id=42"]),
        ("%^AUTH%", ["AUTHORIZED REQUEST"]),
        ("error", []),  # terms are case sensitive
    ],
)
def test_filter_patterns_for_unstructured_events(logs: Any, lines: str, pattern: str, expected: list[str]) -> None:
    assert _filtered(logs, lines, filterPattern=pattern) == expected


@pytest.mark.parametrize("pattern", ['{ $.user = "alice" }', "[ip, user]", "%(a)%", '"unterminated'])
def test_filter_patterns_not_implemented_or_invalid_are_refused_never_matching_all(
    logs: Any, lines: str, pattern: str
) -> None:
    with pytest.raises(ClientError) as excinfo:
        logs.filter_log_events(logGroupName=lines, filterPattern=pattern)
    assert helpers.client_error(excinfo)[0] == "InvalidParameterException"
