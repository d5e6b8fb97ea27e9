"""triggers/poller: the triggerer process's shared poller, one DescribeJobs per 100 jobs per round, on the
emulator."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from airflow_batch_runner.emulator.testing import control
from airflow_batch_runner.hooks.batch_runner import BatchRunnerHook
from airflow_batch_runner.triggers import poller
from airflow_batch_runner.triggers.poller import SharedPoller, Update, Watch, shared_poller
from tests.emulator import helpers
from tests.unit.conftest import hook_for

MISSING = "00000000-0000-0000-0000-{:012d}"


@pytest.fixture
def batch(emulator_url: str) -> Any:
    return helpers.client(emulator_url, "batch")


def waiting_jobs(batch: Any, count: int) -> list[str]:
    """Jobs that stay RUNNABLE (their only compute environment is DISABLED): no process, no log."""
    queue = helpers.create_queue(batch, helpers.create_compute_environment(batch, state="DISABLED"))
    definition = helpers.register_container(batch, ["true"])["jobDefinitionArn"]
    jobs = [helpers.submit(batch, queue, definition) for _ in range(count)]
    helpers.wait_until(lambda: all(j["status"] == "RUNNABLE" for j in batch.describe_jobs(jobs=jobs)["jobs"]))
    return jobs


def drain(watch: Watch) -> list[Update]:
    updates = []
    while not watch.queue.empty():
        updates.append(watch.queue.get_nowait())
    return updates


def describe_calls(url: str) -> int:
    return int(control(url, "stats")["calls"].get("batch", {}).get("DescribeJobs", 0))


def test_one_round_asks_once_per_hundred_jobs_and_tells_every_watch(emulator_url: str, batch: Any) -> None:
    real = waiting_jobs(batch, 2)
    ids = real + [MISSING.format(i) for i in range(148)]

    async def run() -> tuple[list[Watch], int]:
        shared = SharedPoller(hook_for(emulator_url))
        watches = [Watch(job_id, 5.0) for job_id in ids] + [Watch(real[0], 5.0)]  # two triggers, one job
        for one in watches:
            shared.add(one)
        before = await asyncio.to_thread(describe_calls, emulator_url)
        await shared.poll_once()
        return watches, await asyncio.to_thread(describe_calls, emulator_url) - before

    watches, calls = asyncio.run(run())
    assert calls == 2  # 150 distinct jobs
    told = [[u.description["status"] for u in drain(w) if u.description] for w in watches]
    assert told[0] == told[1] == told[-1] == ["RUNNABLE"]  # both watches of real[0], and real[1]'s
    assert told[2:-1] == [[]] * 148  # not found yet: no news


def test_a_job_missing_from_three_answers_in_a_row_is_gone(emulator_url: str) -> None:
    async def run() -> list[list[Update]]:
        shared = SharedPoller(hook_for(emulator_url))
        watch = Watch(MISSING.format(1), 5.0)
        shared.add(watch)
        seen = []
        for _ in range(poller.VANISHED_POLLS):
            await shared.poll_once()
            seen.append(drain(watch))
        return seen

    seen = asyncio.run(run())
    assert seen[:-1] == [[]] * (poller.VANISHED_POLLS - 1)
    assert [u.error for u in seen[-1]] == [f"AWS Batch job {MISSING.format(1)} no longer exists"]


def test_throttling_never_ends_a_wait_and_a_lasting_error_does(
    emulator_url: str, batch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(poller, "ERROR_BOUND_SECONDS", -1.0)  # any lasting error: at its first failure
    (job_id,) = waiting_jobs(batch, 1)

    async def run(fault: dict[str, Any]) -> list[Update]:
        control(emulator_url, "faults", {"batch:DescribeJobs": fault})
        shared = SharedPoller(hook_for(emulator_url))
        watch = Watch(job_id, 0.05)
        before = await asyncio.to_thread(describe_calls, emulator_url)
        shared.watch(watch)
        try:
            # Two failed rounds (the second after a backoff of 0.5 s or more), then the fault goes.
            while await asyncio.to_thread(describe_calls, emulator_url) < before + 2:
                await asyncio.sleep(0.02)
            await asyncio.to_thread(control, emulator_url, "faults", {})
            return [await asyncio.wait_for(watch.queue.get(), 30)]
        finally:
            shared.unwatch(watch)
            control(emulator_url, "faults", {})

    throttled = asyncio.run(run({"throttle_rate": 1.0}))
    assert throttled[0].error is None and (throttled[0].description or {}).get("status") == "RUNNABLE"
    failing = asyncio.run(run({"error_rate": 1.0, "error_code": "InternalFailure", "error_status": 500}))
    assert failing[0].error is not None and failing[0].error.startswith("AWS calls kept failing")


def test_an_ended_jobs_lines_then_the_end_of_its_log_reach_the_watch(
    emulator_url: str, batch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__BATCH_RUNNER__LOGS_INGESTION_ALLOWANCE", "1")
    queue = helpers.create_queue_for(batch)
    definition = helpers.register_ecs(batch, [helpers.container("main", ["sh", "-c", "echo a; echo b"])])
    job_id = helpers.submit(batch, queue, definition["jobDefinitionArn"])
    assert helpers.wait_for_status(batch, job_id)["status"] == "SUCCEEDED"
    helpers.wait_ingested(helpers.client(emulator_url, "logs"))  # readable now: the final read may start at once

    async def run() -> list[Update]:
        shared = SharedPoller(hook_for(emulator_url))
        watch = Watch(job_id, 0.1)
        shared.add(watch)
        await shared.poll_once()
        assert watch.log_stream
        assert shared.read_last_lines(watch, time.time(), time.time() + 20)
        updates: list[Update] = []
        while not (updates and updates[-1].log_end):
            updates.append(await asyncio.wait_for(watch.queue.get(), 30))
        shared.unwatch(watch)
        return updates

    updates = asyncio.run(run())
    assert updates[0].description is not None and updates[0].description["status"] == "SUCCEEDED"
    assert [line for u in updates for line in u.lines] == ["a", "b"], updates
    assert updates[-1].log_problem is None


def test_one_poller_per_key_in_an_event_loop(emulator_url: str) -> None:
    made: list[BatchRunnerHook] = []

    def make() -> BatchRunnerHook:
        made.append(hook_for(emulator_url))
        return made[-1]

    async def run() -> tuple[SharedPoller, SharedPoller, SharedPoller]:
        return shared_poller("a", make), shared_poller("a", make), shared_poller("b", make)

    first, again, other = asyncio.run(run())
    assert first is again and other is not first and len(made) == 2
    assert asyncio.run(run())[0] is not first  # another loop (a triggerer restart): a poller of its own


@pytest.mark.parametrize("setting", [("EVENTS_QUEUE_URL", "sqs-queue-name"), ("EVENTS_SWEEP_INTERVAL", "0")])
def test_a_wrong_events_setting_leaves_events_off_and_the_tasks_polled(
    emulator_url: str, monkeypatch: pytest.MonkeyPatch, setting: tuple[str, str]
) -> None:
    monkeypatch.setenv("AIRFLOW__BATCH_RUNNER__EVENTS_QUEUE_URL", "http://127.0.0.1:1/123456789012/q")
    monkeypatch.setenv(f"AIRFLOW__BATCH_RUNNER__{setting[0]}", setting[1])

    async def run() -> SharedPoller:
        return shared_poller(("events", setting), lambda: hook_for(emulator_url))

    assert asyncio.run(run()).events is None


def test_with_events_trusted_the_rounds_slow_to_the_sweep_but_new_and_named_jobs_are_described_at_once(
    emulator_url: str, batch: Any
) -> None:
    """The poller's schedule with an events source that reads fine (so trusted), no event having come: the
    jobs' queue is not covered, so it is polled each interval; once covered, only at the sweep, except the
    jobs an event names."""
    from airflow_batch_runner.triggers.events import EventsSource

    jobs = waiting_jobs(batch, 2)

    async def run() -> tuple[int, int, int]:
        hook = hook_for(emulator_url)
        events = EventsSource(hook, "http://unused")
        events.down = None  # read fine: trusted
        shared = SharedPoller(hook, events, sweep=600.0)
        last = {"interval": float("-inf"), "sweep": float("-inf"), "tick": float("-inf")}
        watches = [Watch(j, 1.0) for j in jobs]
        for one in watches:
            shared.add(one)
        first, sweep = shared._due(time.monotonic(), {}, last)
        assert sweep and len(first) == 2  # the first turn describes every job
        await shared.poll_once(sweep)
        uncovered, _ = shared._due(time.monotonic() + 1.5, {}, last)  # an interval on: the queue sent nothing
        events.covered.add(str(watches[0].last and watches[0].last["jobQueue"]))
        covered, _ = shared._due(time.monotonic() + 3.0, {}, last)  # covered now: nothing until the sweep
        named, _ = shared._due(time.monotonic() + 3.1, {jobs[1]: ["handle"]}, last)
        return len(uncovered), len(covered), len([w for w in named if w.job_id == jobs[1]])

    assert asyncio.run(run()) == (2, 0, 1)


def test_two_triggers_of_one_job_are_both_woken_and_the_job_is_watched_until_both_left(emulator_url: str) -> None:
    async def run() -> None:
        shared = SharedPoller(hook_for(emulator_url))
        first, second, other = Watch("job-a", 5.0), Watch("job-a", 5.0), Watch("job-b", 5.0)
        for one in (first, second, other):
            shared.add(one)
        shared.wake("job-a", "handle")
        assert (first.announced, second.announced, other.announced) == (True, True, False)
        assert [w.job_id for w in shared._watches_of(["job-a", "job-c"])] == ["job-a", "job-a"]
        shared.unwatch(first)
        assert shared.watches_job("job-a")
        shared.unwatch(second)
        assert not shared.watches_job("job-a") and shared.watches_job("job-b")

    asyncio.run(run())
