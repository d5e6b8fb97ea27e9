"""An array job's running children in the task log: a sample of them, each line prefixed with its index,
on the worker and the deferrable paths, within a small number of Batch calls and the Logs budget."""

from __future__ import annotations

import re
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_batch_runner.child_sampling import QUICK_LOOKS, SAMPLE_PERIOD
from tests.e2e.conftest import AwsWorld, run_dag
from tests.e2e.test_array import calls_during, manifest
from tests.e2e.test_failures import task_dag
from tests.emulator.helpers import until_released, wait_until

CHILD_LINE = re.compile(r"^(\S+) .*\[child (\d+)\] (\S+)")
FOLLOWING = re.compile(r"Following the lines of children ([\d, ]+) \((\d+) of (\d+) running")
PATHS = [pytest.param(False, id="worker"), pytest.param(True, id="deferred")]


def child_lines(output: str) -> list[tuple[datetime, int, str]]:
    """The children's lines in the task log: when the task logged each, the child's index, the line's first word."""
    found = []
    for line in output.splitlines():
        match = CHILD_LINE.match(line)
        if match:
            stamp, index, word = match.groups()
            # Python 3.10's fromisoformat does not read the "Z" suffix.
            found.append((datetime.fromisoformat(stamp.replace("Z", "+00:00")), int(index), word))
    return found


def followed_sets(output: str) -> list[set[int]]:
    return [{int(i) for i in m.group(1).split(", ")} for m in FOLLOWING.finditer(output)]


@pytest.mark.parametrize("deferrable", PATHS)
def test_the_lines_of_running_children_reach_the_task_log_prefixed_with_their_index(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], deferrable: bool
) -> None:
    dag = task_dag(f"array_live_{'deferred' if deferrable else 'worker'}", array_size=2, deferrable=deferrable,
                   completion_check_interval=0.5,
                   # 15 s: a busy host may take several seconds to sample the children and read them
                   commands=['echo "start-$AWS_BATCH_JOB_ARRAY_INDEX"; sleep 15',
                             'echo "end-$AWS_BATCH_JOB_ARRAY_INDEX"'])
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    lines = child_lines(result.output)
    by_child = {index: [word for _, i, word in lines if i == index] for index in (0, 1)}
    assert by_child == {0: ["start-0", "end-0"], 1: ["start-1", "end-1"]}, result.output[-3000:]
    assert result.xcom is not None
    stopped = {c["index"]: c["stopped_at"] for c in manifest(aws, result.xcom)["children"]}
    for logged, index, word in lines:
        if word.startswith("start-"):
            # Read after the child's end, "start" would be logged after stoppedAt; followed live, seconds before.
            assert stopped[index] - logged.timestamp() * 1000 >= 2000, (index, logged, stopped[index])
    assert "Could not read the last lines" not in result.output


@pytest.mark.parametrize("deferrable", PATHS)
def test_a_large_array_follows_at_most_the_configured_children_within_the_budget(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, deferrable: bool,
    tmp_path: Path
) -> None:
    limit, size, rate = 3, 60, 1.0
    monkeypatch.setenv("AIRFLOW__BATCH_RUNNER__ARRAY_LOG_CHILDREN", str(limit))
    monkeypatch.setenv("AIRFLOW__BATCH_RUNNER__LOGS_CALLS_PER_SECOND", str(rate))
    # The children tick for 3 s, then run on until the task's first sampling of them (a ListJobs) has been made:
    # on a loaded host the task's first look can come after 3 s (the emulator runs the commands on this host).
    release = tmp_path / "release"
    name = f"array_sampled_{'deferred' if deferrable else 'worker'}"
    dag = task_dag(name, array_size=size, deferrable=deferrable, completion_check_interval=1.0,
                   commands=['for i in 1 2 3; do echo "tick-$AWS_BATCH_JOB_ARRAY_INDEX-$i"; sleep 1; done',
                             until_released(release)])
    before_batch, before_logs = aws.calls(), aws.calls("logs")
    own_listings: list[int] = []  # the releaser's ListJobs calls, not the task's
    releaser = threading.Thread(target=_release_after_a_sampling, args=(aws, name, release, own_listings),
                                daemon=True)
    releaser.start()
    started = time.monotonic()
    try:
        result = run_dag(dag, capsys)
    finally:
        release.touch()
        releaser.join()
    elapsed = time.monotonic() - started
    assert result.state == "success", result.output[-3000:]
    batch, logs = calls_during(aws, before_batch), calls_during(aws, before_logs, "logs")
    followed = followed_sets(result.output)
    assert followed, result.output[-3000:]
    assert all(len(s) <= limit for s in followed), followed  # never more than the limit at once
    shown = {index for _, index, _ in child_lines(result.output)}
    assert shown and shown <= set().union(*followed), (shown, followed)
    for index in shown:  # each followed child's lines once and in order
        words = [w for _, i, w in child_lines(result.output) if i == index]
        assert words == [f"tick-{index}-{i}" for i in (1, 2, 3)], (index, words)
    # The samplings: one ListJobs each (fewer than 100 running: one page), beside the 2 at the end (SUCCEEDED,
    # FAILED); the first, a few quick looks while there is room, then one per period.
    samplings = batch.get("ListJobs", 0) - 2 - len(own_listings)
    assert 1 <= samplings <= 1 + QUICK_LOOKS + elapsed / SAMPLE_PERIOD, (batch, elapsed)
    if deferrable:
        assert logs.get("FilterLogEvents", 0) <= elapsed * rate + 1, (logs, elapsed)
    else:
        # About one read a second for the array (each a call, two when it found lines), and each child's final read.
        assert logs.get("GetLogEvents", 0) <= 2 * elapsed + 2 * len(shown) + 4, (logs, elapsed)
    assert "Could not read the last lines" not in result.output


def _release_after_a_sampling(aws: AwsWorld, dag_id: str, release: Path, own_listings: list[int]) -> None:
    """Create ``release`` once the task has listed the array's children (a sampling) while every child ran; one
    item in ``own_listings`` for each ListJobs call made here."""

    def every_child_runs() -> bool:
        batch = aws.client("batch")
        queues = batch.describe_job_queues()["jobQueues"]
        if not queues:
            return False
        own_listings.append(1)
        listed = batch.list_jobs(jobQueue=queues[0]["jobQueueArn"],
                                 filters=[{"name": "JOB_NAME", "values": [f"{dag_id}-shell-*"]}])["jobSummaryList"]
        if not listed:
            return False
        job = batch.describe_jobs(jobs=[listed[0]["jobId"]])["jobs"][0]
        return bool(job["arrayProperties"].get("statusSummary", {}).get("RUNNING") == job["arrayProperties"]["size"])

    try:
        wait_until(lambda: release.exists() or every_child_runs(), timeout=300, interval=0.2)
        listed = aws.calls().get("ListJobs", 0)  # every caller's, this thread's own included: it makes no more
        wait_until(lambda: release.exists() or aws.calls().get("ListJobs", 0) > listed, timeout=300, interval=0.2)
    finally:
        release.touch()  # the children end whatever happened here


@pytest.mark.parametrize("deferrable", PATHS)
def test_a_child_that_ended_gives_its_place_to_a_running_one_at_the_next_sampling(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, deferrable: bool
) -> None:
    """Two places, four children: 0 and 1 end after 10 s, 2 and 3 run past the next sampling (30 s later),
    which finds 0 and 1 over and follows 2 and 3 from their start. (10 s: on a loaded host a deferred task's
    first sampling came after children of 3 s had ended.)"""
    monkeypatch.setenv("AIRFLOW__BATCH_RUNNER__ARRAY_LOG_CHILDREN", "2")
    long = SAMPLE_PERIOD + 6
    dag = task_dag(f"array_replaced_{'deferred' if deferrable else 'worker'}", array_size=4,
                   deferrable=deferrable, completion_check_interval=1.0,
                   env={"I_SLEEP": f"{long:g}"},
                   commands=['i=$AWS_BATCH_JOB_ARRAY_INDEX; echo "first-$i"; sleep 10',
                             'if [ "$AWS_BATCH_JOB_ARRAY_INDEX" -ge 2 ]; then sleep "$I_SLEEP"; fi',
                             'echo "last-$AWS_BATCH_JOB_ARRAY_INDEX"'])
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    followed = followed_sets(result.output)
    # 0 and 1 first (ListJobs lists the children by index; a quick look may add the second), then 2 and 3.
    assert followed[-1] == {2, 3} and set().union(*followed[:-1]) == {0, 1}, followed
    assert all(len(s) <= 2 for s in followed), followed
    lines = child_lines(result.output)
    for index in range(4):
        assert [w for _, i, w in lines if i == index] == [f"first-{index}", f"last-{index}"], (index, lines)
    assert "Could not read the last lines" not in result.output


def test_an_environment_too_big_for_the_arrays_request_fails_before_submitting(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    """One job of this environment would fit the SubmitJob request; the array's carries it twice (prep and
    main containers), past the 8192 characters of overrides ECS takes."""
    before: dict[str, Any] = aws.calls()
    result = run_dag(task_dag("array_big_env", array_size=2, env={"BIG": "v" * 4500}, commands=["true"]), capsys)
    assert result.state == "failed"
    assert "env: the environment takes" in result.output
    assert calls_during(aws, before).get("SubmitJob", 0) == 0
