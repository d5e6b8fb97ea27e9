"""The triggerer's log reading, against the emulator's CloudWatch Logs (quotas and ingestion delay on):
every line once and in order, a final read at the job's end, status never held up by Logs, and the
process's budget of Logs calls honoured."""

from __future__ import annotations

import asyncio
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from airflow_batch_runner import task_log
from airflow_batch_runner.emulator.testing import control
from airflow_batch_runner.triggers.batch_runner import BatchRunnerTrigger
from airflow_batch_runner.triggers.poller import shared_poller
from tests.e2e.conftest import AwsWorld
from tests.e2e.task_instances import TaskInstanceRow, supervisor_comms
from tests.e2e.test_trigger import _first_event, _submit, _trigger

NO_RETRIES = {"retries": {"mode": "standard", "total_max_attempts": 1}}


MAIN_LINE = re.compile(r"\[main\] (\S+) (\S+)")


class TaskLog:
    """What the triggers logged (Airflow's structlog writes it to the captured output)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        captured = capsys.readouterr()
        self.text = captured.out + captured.err

    def lines_by_job(self) -> dict[str, list[str]]:
        """The ``[main]`` lines, by the job id each container line starts with."""
        found: dict[str, list[str]] = defaultdict(list)
        for job_id, rest in MAIN_LINE.findall(self.text):
            found[job_id].append(rest)
        return found

    def warnings(self) -> list[str]:
        return [line for line in self.text.splitlines() if "Could not read the last lines" in line]


async def _events(triggers: list[BatchRunnerTrigger], timeout: float = 120) -> list[tuple[dict[str, Any], float]]:
    async def one(trigger: BatchRunnerTrigger) -> tuple[dict[str, Any], float]:
        event = await _first_event(trigger, timeout)
        return event, time.time()

    return list(await asyncio.gather(*(one(t) for t in triggers)))


def _end_to_event(event: dict[str, Any], received: float) -> float:
    return received - event["description"]["stoppedAt"] / 1000


def test_every_line_once_and_in_order_with_chatty_slow_and_silent_jobs(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    chatty = _submit(aws, 'for i in $(seq 1 400); do echo "$AWS_BATCH_JOB_ID $i"; '
                          '[ $((i % 100)) = 0 ] && sleep 1; done', count=4)
    slow = _submit(aws, 'for i in 1 2 3; do echo "$AWS_BATCH_JOB_ID $i"; sleep 1.5; done', count=3)
    silent = _submit(aws, "sleep 3", count=2)
    last = _submit(aws, 'sleep 2; for i in $(seq 1 50); do echo "$AWS_BATCH_JOB_ID $i"; done')  # all at the end

    async def run() -> tuple[list[tuple[dict[str, Any], float]], Any]:
        triggers = [_trigger(aws, job_id, poll_interval=0.5) for job_id in chatty + slow + silent + last]
        results = await _events(triggers)
        return results, shared_poller(triggers[0]._poller_key(), triggers[0]._hook).logs

    results, reader = asyncio.run(run())
    assert [e["description"]["status"] for e, _ in results] == ["SUCCEEDED"] * 10
    log = TaskLog(capsys)
    lines = log.lines_by_job()
    for job_id in chatty:
        assert lines[job_id] == [str(i) for i in range(1, 401)], job_id
    for job_id in slow:
        assert lines[job_id] == ["1", "2", "3"]
    for job_id in silent:
        assert lines[job_id] == []
    assert lines[last[0]] == [str(i) for i in range(1, 51)]  # the final read caught lines written at the end
    assert log.warnings() == []
    assert reader.lines_delivered == 4 * 400 + 3 * 3 + 50
    # Each read looks back over the ingestion allowance, widened to the largest lag seen: a loaded host shows
    # larger lags, so lines are read again more often (2.1 reads a line was seen on a busy CI host).
    assert reader.events_read <= 3 * reader.lines_delivered, (reader.events_read, reader.lines_delivered)


def test_the_final_read_waits_out_the_ingestion_delay(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    control(aws.url, "logs", {"ingestion_delay": 1.5})  # within the default allowance of 2 s
    (job_id,) = _submit(aws, 'for i in $(seq 1 30); do echo "$AWS_BATCH_JOB_ID $i"; done')
    event = asyncio.run(_first_event(_trigger(aws, job_id, poll_interval=0.2)))
    assert event["last_lines"][-1] == f"{job_id} 30"
    assert TaskLog(capsys).lines_by_job()[job_id] == [str(i) for i in range(1, 31)]


def test_lines_readable_later_than_the_allowance_are_all_read(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    """CloudWatch Logs lagging 4.5 s behind the 2 s allowance (an overloaded service): the reader keeps
    every stream's position behind the newest line it has shown, widens its lookback to the lag it
    observes, and waits that long before a job's final read."""
    control(aws.url, "logs", {"ingestion_delay": 4.5})
    chatty = _submit(aws, 'for i in $(seq 1 60); do echo "$AWS_BATCH_JOB_ID $i"; sleep 0.1; done', count=2)
    slow = _submit(aws, 'for i in 1 2 3; do echo "$AWS_BATCH_JOB_ID $i"; sleep 2; done')

    async def run() -> tuple[list[tuple[dict[str, Any], float]], Any]:
        triggers = [_trigger(aws, job_id, poll_interval=0.5) for job_id in chatty + slow]
        return await _events(triggers), shared_poller(triggers[0]._poller_key(), triggers[0]._hook).logs

    results, reader = asyncio.run(run())
    assert [e["description"]["status"] for e, _ in results] == ["SUCCEEDED"] * 3
    log = TaskLog(capsys)
    lines = log.lines_by_job()
    for job_id in chatty:
        assert lines[job_id] == [str(i) for i in range(1, 61)], job_id
    assert lines[slow[0]] == ["1", "2", "3"]
    assert log.warnings() == []
    assert reader.budget.ingestion_lag >= 4.5
    assert reader.events_read <= 2 * reader.lines_delivered, (reader.events_read, reader.lines_delivered)


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"logs:FilterLogEvents": {"throttle_rate": 1.0}}, id="throttled"),
        pytest.param({"logs:FilterLogEvents": {"error_rate": 1.0}}, id="erroring"),
        pytest.param({"logs:FilterLogEvents": {"delay": 20.0}}, id="slow"),
    ],
)
def test_a_jobs_end_never_waits_for_logs(aws: AwsWorld, capsys: pytest.CaptureFixture[str], fault: Any) -> None:
    interval = 1.0
    job_ids = _submit(aws, 'echo "$AWS_BATCH_JOB_ID hello"; sleep 2', count=3)
    control(aws.url, "faults", fault)
    try:
        results = asyncio.run(_events([_trigger(aws, j, poll_interval=interval, botocore_config=NO_RETRIES)
                                       for j in job_ids], timeout=60))
    finally:
        control(aws.url, "faults", {})
    for event, received in results:
        assert event["status"] == "done" and event["description"]["status"] == "SUCCEEDED"
        # One interval, the final read's short patience, and room for a loaded machine.
        assert _end_to_event(event, received) <= interval + 4.0
    warnings = TaskLog(capsys).warnings()
    assert len(warnings) == 3, warnings


def test_a_logs_endpoint_that_answers_every_call_slowly_still_gives_every_last_line(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every FilterLogEvents answer takes 2.5 s (a loaded host, a distant region): longer than a call may go
    unanswered on a fast endpoint, but the reader has seen such answers all along, so the final read is waited
    for rather than given up."""
    (job_id,) = _submit(aws, 'echo "$AWS_BATCH_JOB_ID 1"; sleep 6; for i in 2 3; do echo "$AWS_BATCH_JOB_ID $i"; done')
    control(aws.url, "faults", {"logs:FilterLogEvents": {"delay": 2.5}})
    try:
        ((event, _),) = asyncio.run(_events([_trigger(aws, job_id, poll_interval=0.5)]))
    finally:
        control(aws.url, "faults", {})
    assert event["description"]["status"] == "SUCCEEDED"
    log = TaskLog(capsys)
    assert log.lines_by_job()[job_id] == ["1", "2", "3"], log.warnings()
    assert log.warnings() == []


def test_a_deadline_and_a_vanished_job_never_wait_for_logs(aws: AwsWorld) -> None:
    (job_id,) = _submit(aws, 'while true; do echo "$AWS_BATCH_JOB_ID tick"; sleep 0.2; done')
    control(aws.url, "faults", {"logs:FilterLogEvents": {"delay": 30.0}})
    try:
        async def both() -> list[tuple[dict[str, Any], float]]:
            return await _events([
                _trigger(aws, job_id, poll_interval=0.5, deadline=time.time() + 4, limit="4 s"),
                _trigger(aws, "00000000-0000-0000-0000-000000000000", poll_interval=0.5),
            ], timeout=60)

        started = time.time()
        (timed_out, at), (vanished, gone_at) = asyncio.run(both())
    finally:
        control(aws.url, "faults", {})
    assert timed_out["timed_out"] is True
    assert at - (started + 4) <= 0.5 + 4.0
    assert vanished["status"] == "error"
    assert gone_at - started <= 3 * 0.5 + 4.0


def test_a_missing_log_group_ends_the_wait_like_any_other_job(aws: AwsWorld) -> None:
    (job_id,) = _submit(aws, 'echo "$AWS_BATCH_JOB_ID gone"; sleep 3')
    logs = aws.client("logs")
    deadline = time.monotonic() + 30
    while not logs.describe_log_groups()["logGroups"] and time.monotonic() < deadline:
        time.sleep(0.1)
    for group in logs.describe_log_groups()["logGroups"]:
        logs.delete_log_group(logGroupName=group["logGroupName"])
    event, received = asyncio.run(_events([_trigger(aws, job_id, poll_interval=0.5)]))[0]
    assert event["description"]["status"] == "SUCCEEDED"
    assert _end_to_event(event, received) <= 0.5 + 4.0


def test_all_triggers_together_stay_within_the_budget_of_logs_calls(
    aws: AwsWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIRFLOW__BATCH_RUNNER__LOGS_CALLS_PER_SECOND", "1")
    job_ids = _submit(aws, 'for i in $(seq 1 8); do echo "$AWS_BATCH_JOB_ID $i"; sleep 0.5; done', count=12)
    before = control(aws.url, "stats")["calls"].get("logs", {}).get("FilterLogEvents", 0)
    # Different credentials make different pollers: the budget is the process's, not a poller's.
    triggers = [_trigger(aws, j, poll_interval=0.5, region_name="us-east-1",
                         overrides={"endpoint_override": aws.url, "sts_role_session_name": f"s{i % 2}"})
                for i, j in enumerate(job_ids)]
    started = time.monotonic()
    results = asyncio.run(_events(triggers))
    elapsed = time.monotonic() - started
    calls = control(aws.url, "stats")["calls"]["logs"]["FilterLogEvents"] - before
    assert calls <= elapsed * 1 + 2, (calls, elapsed)  # the rate, and the reserve kept for a final read
    assert all(e["description"]["status"] == "SUCCEEDED" for e, _ in results)
    log = TaskLog(capsys)
    lines = log.lines_by_job()
    missing = {j: lines[j] for j in job_ids if lines[j] != [str(i) for i in range(1, 9)]}
    assert not missing, (missing, log.warnings())  # slower, but every line


def test_final_reads_queued_for_the_budget_still_read_every_line(
    aws: AwsWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Eight pollers (as many credentials) share a budget of 1 call a second and their jobs end together:
    the last final read gets its slot about 8 s after the first. Logs is healthy, so each job's end
    waits for its turn rather than giving its last lines up after a couple of slots."""
    monkeypatch.setenv("AIRFLOW__BATCH_RUNNER__LOGS_CALLS_PER_SECOND", "1")
    job_ids = _submit(aws, 'sleep 1; for i in 1 2 3; do echo "$AWS_BATCH_JOB_ID $i"; done', count=8)
    triggers = [_trigger(aws, j, poll_interval=0.5, region_name="us-east-1",
                         overrides={"endpoint_override": aws.url, "sts_role_session_name": f"s{i}"})
                for i, j in enumerate(job_ids)]
    results = asyncio.run(_events(triggers))
    assert all(e["description"]["status"] == "SUCCEEDED" for e, _ in results)
    log = TaskLog(capsys)
    lines = log.lines_by_job()
    assert {j: lines[j] for j in job_ids} == {j: ["1", "2", "3"] for j in job_ids}, log.warnings()
    assert log.warnings() == []


@pytest.fixture(scope="module")
def task_instance(airflow_db: None) -> TaskInstanceRow:
    return TaskInstanceRow("trigger_log_marker")


def _in_triggerer(trigger: BatchRunnerTrigger, task_instance: TaskInstanceRow) -> BatchRunnerTrigger:
    """The trigger as a triggerer runs it: with its task instance (asked through ``supervisor_comms``)."""
    task_instance.set_state("deferred")
    trigger.task_instance = task_instance.as_triggerer_has_it()
    return trigger


def _deferred(task_instance: TaskInstanceRow) -> None:
    """What the worker leaves as it defers: the marker, empty (under ``supervisor_comms``)."""
    from airflow.sdk.execution_time.xcom import XCom

    from airflow_batch_runner.triggers.log_marker import MARKER_KEY

    XCom.set(MARKER_KEY, "", dag_id=task_instance.dag_id, task_id=task_instance.task_id,
             run_id=task_instance.run_id, map_index=task_instance.map_index)


def _marker(task_instance: TaskInstanceRow) -> str | None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from airflow_batch_runner.triggers.log_marker import MARKER_KEY

    with create_session() as session:
        row = session.query(XComModel).filter_by(
            dag_id=task_instance.dag_id, task_id=task_instance.task_id, run_id=task_instance.run_id,
            map_index=task_instance.map_index, key=MARKER_KEY,
        ).first()
        return None if row is None else str(row.value)  # as stored (serialised by the XCom backend)


def test_a_restarted_trigger_shows_the_lines_before_the_restart_once_more(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], task_instance: TaskInstanceRow, tmp_path: Path
) -> None:
    # The job prints 3 lines, then waits for the test (the emulator runs its commands on this machine), so
    # the restart falls mid-job however slow the host is.
    release = tmp_path / "release"
    (job_id,) = _submit(aws, f'for i in 1 2 3; do echo "$AWS_BATCH_JOB_ID $i"; done; '
                             f'while [ ! -e {release} ]; do sleep 0.1; done; '
                             f'for i in 4 5 6 7 8; do echo "$AWS_BATCH_JOB_ID $i"; done')
    trigger = _in_triggerer(_trigger(aws, job_id, poll_interval=0.2), task_instance)

    async def interrupted() -> None:
        """A triggerer restart: the wait stops once the trigger has shown the job's lines (it notes so)."""
        waiting = asyncio.ensure_future(_first_event(trigger))
        deadline = time.monotonic() + 120
        while job_id not in str(_marker(task_instance)):
            assert not waiting.done(), "the trigger ended before the job was released"
            assert time.monotonic() < deadline, "the trigger never showed the job's first lines"
            await asyncio.sleep(0.1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    capsys.readouterr()
    with supervisor_comms():
        _deferred(task_instance)
        asyncio.run(interrupted())
        before = TaskLog(capsys).lines_by_job()[job_id]
        assert before == [str(i) for i in range(1, len(before) + 1)] and 0 < len(before) <= 3
        release.touch()
        revived = _in_triggerer(BatchRunnerTrigger(**trigger.serialize()[1]), task_instance)
        event = asyncio.run(_first_event(revived))
    assert event["status"] == "done"
    after = TaskLog(capsys)
    # The revived trigger reads from the job's start, after saying so: the lines shown before repeat once.
    assert after.lines_by_job()[job_id] == [str(i) for i in range(1, 9)]
    assert f"Reading the log of job {job_id} from its start" in after.text


def test_a_trigger_that_starts_after_its_job_did_says_nothing_of_a_restart(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], task_instance: TaskInstanceRow
) -> None:
    """The usual case: the job starts, and logs, before the triggerer runs the trigger."""
    (job_id,) = _submit(aws, 'echo "$AWS_BATCH_JOB_ID 1"; sleep 2; echo "$AWS_BATCH_JOB_ID 2"')
    batch = aws.client("batch")
    deadline = time.time() + 120  # a loaded CI host took longer than 30 s to start it
    while batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"] != "RUNNING":
        assert time.time() < deadline
        time.sleep(0.1)
    capsys.readouterr()
    with supervisor_comms():
        _deferred(task_instance)
        event = asyncio.run(_first_event(_in_triggerer(_trigger(aws, job_id, poll_interval=0.2), task_instance)))
    assert event["status"] == "done"
    log = TaskLog(capsys)
    assert log.lines_by_job()[job_id] == ["1", "2"]
    assert "from its start" not in log.text


class TriggerLog:
    """A trigger's log as Airflow's triggerer may write it: the triggerer can close it as soon as the trigger
    yields its event, before what was logged just before is written. Here whatever the trigger logged in the
    last ``lost`` seconds before its event is lost; the worker then logs what the event left to it."""

    def __init__(self) -> None:
        self.logged: list[tuple[float, str]] = []

    def info(self, event: Any, *args: Any, **kw: Any) -> None:
        self.logged.append((time.monotonic(), str(event) % args if args else str(event)))

    warning = error = info

    async def task_log(self, trigger: BatchRunnerTrigger, lost: float) -> list[str]:
        trigger._log = self  # type: ignore[assignment]
        async for event in trigger.run():
            written = [text for at, text in self.logged if at < time.monotonic() - lost]
            worker: list[str] = []
            task_log.replay(_Collect(worker), event.payload.get("held_log"))
            return written + worker
        raise AssertionError("trigger ended without an event")


class _Collect:
    def __init__(self, into: list[str]) -> None:
        self.into = into

    def info(self, event: Any, *args: Any, **kw: Any) -> None:
        self.into.append(str(event) % args if args else str(event))

    warning = info


def test_the_last_lines_reach_the_task_log_even_when_the_triggerer_drops_what_the_trigger_logged_last(
    aws: AwsWorld,
) -> None:
    # The last lines become readable late (as CloudWatch Logs may make them): the trigger gets them from a read
    # moments before its event.
    control(aws.url, "logs", {"ingestion_delay": 1.5})
    (job_id,) = _submit(aws, "echo first; sleep 4; echo last-1; echo last-2")
    lines = asyncio.run(TriggerLog().task_log(_trigger(aws, job_id, poll_interval=0.2), lost=2.0))
    assert [line for line in lines if line.startswith("[main] ")] == ["[main] first", "[main] last-1", "[main] last-2"]


def _ended_job_stream(aws: AwsWorld, command: str) -> tuple[str, Any]:
    """A job run to its end: its id and state."""
    from airflow_batch_runner.outcome import job_state

    (job_id,) = _submit(aws, command)
    batch = aws.client("batch")
    deadline = time.time() + 60
    while (job := batch.describe_jobs(jobs=[job_id])["jobs"][0])["status"] not in ("SUCCEEDED", "FAILED"):
        assert time.time() < deadline
        time.sleep(0.2)
    state = job_state(job)
    assert state.log_stream and state.stopped_at
    return job_id, state


def _filter_calls(aws: AwsWorld) -> int:
    return int(control(aws.url, "stats")["calls"].get("logs", {}).get("FilterLogEvents", 0))


async def _until_a_filter_call_after(aws: AwsWorld, before: int) -> None:
    """Until the emulator has counted a FilterLogEvents call beyond ``before`` (it has reached AWS)."""
    while await asyncio.to_thread(_filter_calls, aws) == before:
        await asyncio.sleep(0.05)


def test_a_final_read_is_not_held_behind_a_regular_read_under_way(aws: AwsWorld) -> None:
    """A regular read's call hangs; a job's final read, due a second later, is made beside it: it ends while
    the regular call is still held (the hold ends when the test replaces the emulator's faults)."""
    from airflow_batch_runner.triggers.log_reader import LogReader, LogsBudget

    job_id, state = _ended_job_stream(aws, 'for i in 1 2 3; do echo "line $i"; done')
    time.sleep(max(0.0, state.stopped_at / 1000 + 1.5 - time.time()))

    async def run() -> tuple[float, list[str], list[str | None], int]:
        reader = LogReader(_trigger(aws, job_id)._hook(), LogsBudget(10.0), 1.0)
        control(aws.url, "faults", {"logs:FilterLogEvents": {"delay": 120.0, "count": 1}})
        other: list[str] = []
        reader.follow("regular", state.log_stream or "", state.started_at, 0.2, other.extend, lambda _: None)
        await _until_a_filter_call_after(aws, await asyncio.to_thread(_filter_calls, aws))  # its call, held
        lines: list[str] = []
        finished: list[str | None] = []
        asked = time.time()
        reader.follow("final", state.log_stream or "", state.started_at, 0.2, lines.extend, finished.append)
        assert reader.final_read("final", asked + 1.0, asked + 10)
        while not finished:
            await asyncio.sleep(0.05)
        held = (await asyncio.to_thread(control, aws.url, "stats"))["in_flight"]
        regular_lines = len(other)
        await asyncio.to_thread(control, aws.url, "faults", {})  # the held call answers now
        return held, list(lines), list(finished), regular_lines

    try:
        held, lines, finished, regular_lines = asyncio.run(run())
    finally:
        control(aws.url, "faults", {})
    assert lines == ["line 1", "line 2", "line 3"] and finished == [None]
    assert held == 1 and regular_lines == 0  # the final read ended while the regular call was still held


def test_a_final_read_is_not_held_behind_another_final_read_under_way(aws: AwsWorld) -> None:
    """A regular read's call and a job's final read's call both hang; another job's final read, due then, is
    made beside them and ends while they are still held (jobs found ended in one poll need more than one
    call)."""
    from airflow_batch_runner.triggers.log_reader import LogReader, LogsBudget

    streams = [_ended_job_stream(aws, f'echo "{name} 1"; echo "{name} 2"')[1] for name in ("r", "a", "b")]
    time.sleep(max(0.0, max(s.stopped_at for s in streams) / 1000 + 1.5 - time.time()))

    async def run() -> tuple[float, list[str], list[str | None]]:
        reader = LogReader(_trigger(aws, "unused")._hook(), LogsBudget(10.0), 1.0)
        control(aws.url, "faults", {"logs:FilterLogEvents": {"delay": 120.0, "count": 2}})

        async def follow_until_sent(key: str, state: Any, final: bool) -> None:
            before = await asyncio.to_thread(_filter_calls, aws)
            reader.follow(key, state.log_stream or "", state.started_at, 0.2, lambda _: None, lambda _: None)
            if final:
                assert reader.final_read(key, time.time(), time.time() + 10)
            await _until_a_filter_call_after(aws, before)  # its call, held

        await follow_until_sent("r", streams[0], final=False)
        await follow_until_sent("a", streams[1], final=True)
        lines: list[str] = []
        finished: list[str | None] = []
        asked = time.time()
        reader.follow("b", streams[2].log_stream or "", streams[2].started_at, 0.2, lines.extend, finished.append)
        assert reader.final_read("b", asked, asked + 10)
        while not finished:
            await asyncio.sleep(0.05)
        held = (await asyncio.to_thread(control, aws.url, "stats"))["in_flight"]
        await asyncio.to_thread(control, aws.url, "faults", {})  # the held calls answer now
        return held, list(lines), list(finished)

    try:
        held, lines, finished = asyncio.run(run())
    finally:
        control(aws.url, "faults", {})
    assert lines == ["b 1", "b 2"] and finished == [None]
    assert held == 2  # it ended while both other calls were still held


def test_a_final_read_is_tried_once_at_once_when_the_last_call_failed_even_past_its_backoff(aws: AwsWorld) -> None:
    """Logs throttles every call: the reader's last call failed and its backoff is over when a job ends.
    Waiting for late lines is pointless: one try at once, then the job's end goes on."""
    from airflow_batch_runner.triggers.log_reader import LogReader, LogsBudget

    job_id, state = _ended_job_stream(aws, 'echo "line 1"')
    control(aws.url, "faults", {"logs:FilterLogEvents": {"throttle_rate": 1.0}})

    async def run() -> tuple[float, list[str | None], int]:
        reader = LogReader(_trigger(aws, job_id)._hook(), LogsBudget(10.0), 2.0)
        reader.backoff.seconds, reader.backoff_until = 1.0, time.time() - 0.1  # a failed call, its backoff over
        finished: list[str | None] = []
        asked = time.time()
        reader.follow("key", state.log_stream or "", state.started_at, 5.0, lambda _: None, finished.append)
        assert reader.final_read("key", asked + 60.0, asked + 65.0)  # as for a job that ended just now
        while not finished:
            await asyncio.sleep(0.02)
        return time.time() - asked, finished, reader.calls

    try:
        took, finished, calls = asyncio.run(run())
    finally:
        control(aws.url, "faults", {})
    assert finished and finished[0] and "Throttling" in finished[0]
    assert took < 30, took  # not after the 60 s ingestion wait
    assert calls == 1


def test_a_job_end_found_late_needs_no_final_call_when_a_read_already_began_after_its_last_lines(
    aws: AwsWorld,
) -> None:
    """A job's end is found by its poll up to an interval late; a regular read that began once its last
    lines were readable already read them all, so the final read ends at once without another call."""
    from airflow_batch_runner.triggers.log_reader import LogReader, LogsBudget

    job_id, state = _ended_job_stream(aws, 'for i in 1 2 3; do echo "line $i"; done')
    allowance = 1.0
    readable = state.stopped_at / 1000 + allowance
    time.sleep(max(0.0, readable - time.time()) + 0.1)

    async def run() -> tuple[list[str], list[str | None], int, int]:
        reader = LogReader(_trigger(aws, job_id)._hook(), LogsBudget(10.0), allowance)
        lines: list[str] = []
        finished: list[str | None] = []
        reader.follow("key", state.log_stream or "", state.started_at, 0.2, lines.extend, finished.append)
        while len(lines) < 3:  # the regular read, begun after the last lines were readable
            await asyncio.sleep(0.05)
        calls = reader.calls
        assert reader.final_read("key", readable, readable + 5)
        return list(lines), list(finished), calls, reader.calls

    lines, finished, calls_before, calls_after = asyncio.run(run())
    assert lines == ["line 1", "line 2", "line 3"]
    assert finished == [None]  # at once: no call made, no wait
    assert calls_after == calls_before


def test_a_reader_cancelled_as_it_is_woken_stops(aws: AwsWorld) -> None:
    """The triggerer cancels a reader in the same moment as something wakes it (a lane ending, a new
    follow): the reader must stop. With asyncio.wait_for (Python < 3.12) the cancellation was lost and
    the reader went on forever; asyncio.run's cleanup then hung (a CI run's 600 s timeout)."""
    from airflow_batch_runner.triggers.log_reader import LogReader, LogsBudget

    job_id, state = _ended_job_stream(aws, 'echo "line 1"')

    async def run() -> tuple[bool, bool]:
        reader = LogReader(_trigger(aws, job_id)._hook(), LogsBudget(10.0), 1.0)
        reader.follow("key", state.log_stream or "", state.started_at, 60.0, lambda _: None, lambda _: None)
        while reader.calls < 1 or reader._lanes:  # its first read made: it now sleeps until the next, 60 s on
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)
        task = reader.task
        assert task is not None and not task.done()
        reader.wakeup.set()
        task.cancel()
        await asyncio.wait({task}, timeout=3.0)
        stopped = task.done()
        task.cancel()  # a second cancellation, not in a wakeup's moment, so that a failing run ends
        await asyncio.wait({task}, timeout=3.0)
        return stopped, task.cancelled()

    stopped, cancelled = asyncio.run(run())
    assert stopped and cancelled
