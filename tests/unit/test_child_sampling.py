"""Which running children of an array job have their lines followed, and when the task looks again."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_batch_runner import child_sampling
from airflow_batch_runner.child_sampling import QUICK_LOOKS, SAMPLE_PERIOD, ChildSampler, Ended, Followed


def summary(index: int) -> dict[str, Any]:
    """A ListJobs summary of a child: no log stream in it."""
    return {"jobId": f"p:{index}", "jobName": "j", "status": "RUNNING", "arrayProperties": {"index": index}}


def described(index: int, status: str = "RUNNING", stream: str | None = "auto", **more: Any) -> dict[str, Any]:
    main: dict[str, Any] = {"name": "main"}
    if stream:
        main["logStreamName"] = f"def/main/{index}" if stream == "auto" else stream
    return {"jobId": f"p:{index}", "status": status, "startedAt": 1000 + index,
            "ecsProperties": {"taskProperties": [{"containers": [{"name": "prep"}, main]}]}, **more}


def sample(sampler: ChildSampler, running: list[int], described_as: dict[int, dict[str, Any]] | None = None
           ) -> tuple[list[Followed], list[Ended]]:
    """One sampling against children ``running`` (listed in that order); ``described_as`` for the others."""
    listed = [summary(i) for i in running]
    asked = sampler.to_describe(listed)
    answers = {**{i: described(i) for i in running}, **(described_as or {})}
    return sampler.adopt(asked, {f"p:{i}": d for i, d in answers.items() if f"p:{i}" in asked})


def test_the_first_sampling_waits_for_a_running_child_then_comes_every_period() -> None:
    sampler = ChildSampler(limit=2, interval=5.0)
    assert not sampler.due(running=0, now=0.0)
    assert sampler.due(running=50, now=0.0)
    sampler.begin(0.0)
    sample(sampler, [0, 1, 2])
    assert sorted(sampler.followed) == [0, 1]
    assert not sampler.due(50, 5.0) and not sampler.due(50, SAMPLE_PERIOD - 0.1)  # full: no quick look
    assert sampler.due(50, SAMPLE_PERIOD)
    assert ChildSampler(limit=2, interval=60.0).period == 60.0  # never more often than the parent is polled


def test_quick_looks_while_there_is_room_are_few_and_earned_back_slowly() -> None:
    sampler = ChildSampler(limit=10, interval=1.0)
    sampler.begin(0.0)
    sample(sampler, [0])  # one child running yet: room for more
    assert not sampler.due(running=3, now=0.5)  # not more often than the parent is polled
    looks = []
    now = 1.0
    while now < SAMPLE_PERIOD:
        if sampler.due(running=3, now=now):
            sampler.begin(now)
            looks.append(now)
        now += 1.0
    assert len(looks) == QUICK_LOOKS, looks
    assert not sampler.due(running=1, now=now - 0.5)  # no room: as many followed as running
    assert sampler.due(running=3, now=SAMPLE_PERIOD + 1.0)


def test_a_limit_of_zero_never_samples() -> None:
    assert not ChildSampler(limit=0, interval=1.0).due(running=100, now=0.0)


def test_listing_stops_once_new_children_fill_every_place_that_may_be_free() -> None:
    sampler = ChildSampler(limit=3, interval=5.0)
    assert not sampler.enough([summary(0), summary(1)])
    assert sampler.enough([summary(0), summary(1), summary(2)])
    sample(sampler, [0, 1, 2])
    # Followed 0 and 1 listed again: one place may be free (2's, not listed yet), and 5 fills it.
    assert not sampler.enough([summary(0), summary(1)])
    assert sampler.enough([summary(0), summary(1), summary(5)])


def test_one_describe_asks_for_new_children_and_the_followed_ones_not_listed() -> None:
    sampler = ChildSampler(limit=3, interval=5.0)
    sample(sampler, [0, 1, 2])
    # 0 may have ended: its place may be free, and two new children are described for it (spares).
    assert sampler.to_describe([summary(i) for i in (1, 2, 7, 8, 9)]) == ["p:0", "p:7", "p:8"]
    assert sampler.to_describe([summary(i) for i in (0, 1, 2, 7)]) == []  # all still running, no place: no call


def test_followed_children_are_running_ones_with_a_stream_and_ended_ones_make_room() -> None:
    sampler = ChildSampler(limit=2, interval=5.0)
    new, ended = sample(sampler, [0, 1, 2], {0: described(0, stream=None)})  # 0 has no stream yet
    assert [(c.index, c.stream, c.started_at) for c in new] == [(1, "def/main/1", 1001), (2, "def/main/2", 1002)]
    assert ended == []
    new, ended = sample(sampler, [2, 3, 4], {1: described(1, "SUCCEEDED", stoppedAt=9000)})
    assert [c.index for c in new] == [3] and [(e.child.index, e.stopped_at) for e in ended] == [(1, 9000)]
    assert sorted(sampler.followed) == [2, 3]
    new, ended = sample(sampler, [4], {2: described(2, "FAILED", stoppedAt=9500)})
    # 3 was not listed and DescribeJobs did not return it: gone, so ended too.
    assert sorted(e.child.index for e in ended) == [2, 3] and [c.index for c in new] == [4]


def test_no_running_child_left_ends_every_followed_one() -> None:
    sampler = ChildSampler(limit=2, interval=5.0)
    sample(sampler, [0, 1])
    assert [(e.child.index, e.stopped_at) for e in sampler.end_all()] == [(0, None), (1, None)]
    assert sampler.followed == {}


def test_the_task_log_names_the_children_followed() -> None:
    sampler = ChildSampler(limit=2, interval=5.0)
    sample(sampler, [4, 9])
    assert sampler.describe(running=57) == (
        "Following the lines of children 4, 9 (2 of 57 running; at most 2 at once, [batch_runner] array_log_children)")


def test_the_worker_spaces_its_reads_of_many_children() -> None:
    assert child_sampling.worker_read_interval(5.0, limit=10, size=1000) == 10.0
    assert child_sampling.worker_read_interval(5.0, limit=10, size=2) == 5.0
    assert child_sampling.worker_read_interval(0.5, limit=10, size=2) == 2.0


@pytest.mark.parametrize("value", [-1, 101, "10", 2.5, True])
def test_a_bad_limit_names_the_setting(value: Any) -> None:
    with pytest.raises(ValueError, match=r"\[batch_runner\] array_log_children must be a whole number from 0"):
        child_sampling.check_limit(value)


def test_the_running_count_is_the_parents_status_summary() -> None:
    assert child_sampling.running_children({"arrayProperties": {"statusSummary": {"RUNNING": 7}}}) == 7
    assert child_sampling.running_children({"jobId": "single"}) == 0


def test_each_poll_asks_for_a_sampling_when_due_and_ends_the_followed_children_when_none_runs() -> None:
    sampler = ChildSampler(limit=2, interval=5.0)
    assert sampler.next_step(0, 100.0) is None  # nothing running, nothing followed
    assert sampler.next_step(3, 100.0) == child_sampling.Step(sample=True)
    assert sampler.samplings == 1
    assert sampler.next_step(3, 101.0) is None  # begun: not due again within the interval
    sampled = sampler.take(sampler.to_describe([summary(0), summary(1)]), {"p:0": described(0), "p:1": described(1)}, 3)
    assert [c.index for c in sampled.new] == [0, 1] and sampled.ended == []
    assert sampled.news == sampler.describe(3)
    unchanged = sampler.take(["p:0", "p:1"], {"p:0": described(0), "p:1": described(1)}, 3)
    assert (unchanged.new, unchanged.ended, unchanged.news) == ([], [], None)  # nothing to tell the log
    step = sampler.next_step(0, 102.0)
    assert step is not None and not step.sample and [e.child.index for e in step.ended] == [0, 1]
    assert sampler.followed == {}


def test_a_failed_sampling_is_told_unless_it_was_throttled() -> None:
    from botocore.exceptions import ClientError

    from airflow_batch_runner.array_run import sampling_failure

    throttled = ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "Rate"}}, "ListJobs")
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "ListJobs")
    assert sampling_failure(throttled, "p") is None
    assert sampling_failure(denied, "p") == (
        "Listing the running children of array job p failed: An error occurred (AccessDeniedException) when "
        "calling the ListJobs operation: no")
