"""Capacity and scheduling order, as the AWS Batch user guide and API reference describe them.

- A compute environment's ``computeResources.maxvCpus`` bounds the vCPUs (the jobs' ``resourceRequirements``
  VCPU) of the jobs placed on it; a job that fits nowhere stays RUNNABLE until room frees.
- A job waiting for its turn is not a blocked queue ("Jobs stuck in a RUNNABLE status"): no statusReason.
- CreateJobQueue ``priority``: "Job queues with a higher priority ... are evaluated first when associated with
  the same compute environment."
- A queue without a scheduling policy is FIFO; on a fair-share queue the scheduler tracks each share
  identifier's usage as T * weightFactor and "picks jobs with the lowest usage" ("Use share identifiers to
  identify workloads"); within a share, "jobs with a higher scheduling priority are scheduled first".
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.emulator import helpers

pytestmark = pytest.mark.timeout(120)

LONG = ["sleep", "600"]
SHORT = ["sleep", "0.3"]


def definition(batch: Any, command: list[str], vcpus: str = "1") -> str:
    """A container job definition on EC2 asking for ``vcpus`` vCPUs."""
    return str(batch.register_job_definition(
        jobDefinitionName=helpers.unique("capacity"), type="container", platformCapabilities=["EC2"],
        containerProperties={"image": "public.ecr.aws/docker/library/busybox:latest", "command": command,
                             "resourceRequirements": helpers.resources(vcpus, "512")},
    )["jobDefinitionArn"])


def statuses(batch: Any, job_ids: Iterable[str]) -> dict[str, str]:
    return {job["jobId"]: job["status"] for job in batch.describe_jobs(jobs=list(job_ids))["jobs"]}


def settle_runnable(batch: Any, job_ids: list[str]) -> None:
    """Wait until every job is RUNNABLE, then until the emulator has taken every step due: a job that could be
    placed would have been by then."""
    helpers.wait_until(lambda: set(statuses(batch, job_ids).values()) == {"RUNNABLE"})
    helpers.caught_up(batch)


def ended(batch: Any, job_ids: list[str]) -> list[dict[str, Any]]:
    return [helpers.wait_for_status(batch, job_id, ("SUCCEEDED",)) for job_id in job_ids]


def most_at_once(jobs: list[dict[str, Any]]) -> int:
    """The most jobs RUNNING at one instant, from their startedAt and stoppedAt."""
    edges = sorted([(j["startedAt"], 1) for j in jobs] + [(j["stoppedAt"], -1) for j in jobs])
    running = peak = 0
    for _, step in edges:  # at one millisecond an end (-1) sorts before a start (+1)
        running += step
        peak = max(peak, running)
    return peak


def occupy(batch: Any, queue: str, vcpus: str = "1", **params: Any) -> str:
    """A long job holding ``vcpus`` of the queue's compute environment; returns its id once RUNNING."""
    job_id = helpers.submit(batch, queue, definition(batch, LONG, vcpus), **params)
    helpers.wait_for_status(batch, job_id, ("RUNNING",))
    return job_id


def test_max_vcpus_1_runs_1_vcpu_jobs_one_at_a_time_in_submission_order(batch: Any) -> None:
    queue = helpers.create_queue(batch, helpers.create_compute_environment(batch, max_vcpus=1))
    short = definition(batch, SHORT)
    job_ids = [helpers.submit(batch, queue, short) for _ in range(3)]
    jobs = ended(batch, job_ids)
    assert most_at_once(jobs) == 1
    assert [j["jobId"] for j in sorted(jobs, key=lambda j: j["startedAt"])] == job_ids  # FIFO
    for earlier, later in itertools.pairwise(jobs):
        assert later["startedAt"] >= earlier["stoppedAt"]


def test_a_job_waiting_for_room_has_no_status_reason_and_starts_when_a_job_ends(batch: Any) -> None:
    queue = helpers.create_queue(batch, helpers.create_compute_environment(batch, max_vcpus=2))
    holder = occupy(batch, queue, "2")
    waiting = helpers.submit(batch, queue, definition(batch, SHORT))
    settle_runnable(batch, [waiting])
    job = helpers.describe(batch, waiting)
    assert "statusReason" not in job and job["attempts"] == []
    listed = batch.list_jobs(jobQueue=queue, jobStatus="RUNNABLE")["jobSummaryList"]
    assert [(j["jobId"], j.get("statusReason")) for j in listed] == [(waiting, None)]
    batch.terminate_job(jobId=holder, reason="make room")
    helpers.wait_for_status(batch, waiting, ("SUCCEEDED",), timeout=20)
    assert helpers.describe(batch, waiting)["startedAt"] >= helpers.describe(batch, holder)["stoppedAt"]


def test_a_job_goes_to_the_next_environment_of_the_order_when_the_first_is_full(batch: Any, logs: Any) -> None:
    first, second = (helpers.create_compute_environment(batch, max_vcpus=1) for _ in range(2))
    queue = batch.create_job_queue(
        jobQueueName=helpers.unique("spill"), priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": first},
                                 {"order": 2, "computeEnvironment": second}])["jobQueueArn"]
    helpers.wait_until(lambda: helpers.queue_status(batch, queue) == "VALID")
    tell = helpers.register_container(batch, ["sh", "-c", 'echo "$AWS_BATCH_CE_NAME"; sleep 600'])["jobDefinitionArn"]
    job_ids = [helpers.submit(batch, queue, tell) for _ in range(3)]
    helpers.wait_until(lambda: list(statuses(batch, job_ids).values()).count("RUNNING") == 2)
    helpers.caught_up(batch)
    assert list(statuses(batch, job_ids).values()) == ["RUNNING", "RUNNING", "RUNNABLE"]
    placed = [helpers.log_messages(logs, helpers.describe(batch, job_id)["container"]["logStreamName"])
              for job_id in job_ids[:2]]
    assert placed == [[first.rsplit("/", 1)[-1]], [second.rsplit("/", 1)[-1]]]
    for job_id in job_ids:
        batch.terminate_job(jobId=job_id, reason="done")


def test_the_higher_priority_queue_gets_a_full_environment_first(batch: Any) -> None:
    ce = helpers.create_compute_environment(batch, max_vcpus=1)
    low = helpers.create_queue(batch, ce, priority=1)
    high = helpers.create_queue(batch, ce, priority=10)
    holder = occupy(batch, low)
    short = definition(batch, SHORT)
    low_job = helpers.submit(batch, low, short)  # submitted first, to the lower-priority queue
    high_job = helpers.submit(batch, high, short)
    settle_runnable(batch, [low_job, high_job])
    batch.terminate_job(jobId=holder, reason="make room")
    first, second = ended(batch, [high_job, low_job])
    assert second["startedAt"] >= first["stoppedAt"]


def test_update_compute_environment_raising_max_vcpus_releases_waiting_jobs(batch: Any) -> None:
    ce = helpers.create_compute_environment(batch, max_vcpus=1)
    queue = helpers.create_queue(batch, ce)
    long = definition(batch, LONG)
    job_ids = [helpers.submit(batch, queue, long) for _ in range(3)]
    helpers.wait_until(lambda: sorted(statuses(batch, job_ids).values()) == ["RUNNABLE", "RUNNABLE", "RUNNING"])
    helpers.caught_up(batch)
    assert sorted(statuses(batch, job_ids).values()) == ["RUNNABLE", "RUNNABLE", "RUNNING"]
    batch.update_compute_environment(computeEnvironment=ce, computeResources={"maxvCpus": 3})
    helpers.wait_until(lambda: set(statuses(batch, job_ids).values()) == {"RUNNING"}, timeout=20)
    for job_id in job_ids:
        batch.terminate_job(jobId=job_id, reason="done")


def test_array_children_share_the_capacity_in_index_order(batch: Any) -> None:
    queue = helpers.create_queue(batch, helpers.create_compute_environment(batch, max_vcpus=2))
    parent = helpers.submit(batch, queue, definition(batch, SHORT), arrayProperties={"size": 5})
    helpers.wait_for_status(batch, parent, ("SUCCEEDED",), timeout=30)
    children = [helpers.describe(batch, f"{parent}:{index}") for index in range(5)]
    assert most_at_once(children) == 2
    starts = [child["startedAt"] for child in children]
    assert starts == sorted(starts)


def fair_share_queue(batch: Any, max_vcpus: int, shares: list[dict[str, Any]], **fairshare: Any) -> str:
    policy = batch.create_scheduling_policy(
        name=helpers.unique("fair"), fairsharePolicy={"shareDistribution": shares, **fairshare})["arn"]
    ce = helpers.create_compute_environment(batch, max_vcpus=max_vcpus)
    return helpers.create_queue(batch, ce, schedulingPolicyArn=policy)


def test_a_fair_share_queue_gives_the_lighter_weighted_share_more_of_the_environment(batch: Any) -> None:
    # Share b's weightFactor 0.25: each of its vCPUs counts a quarter of one of a's, so once a job of each
    # runs, b's next three jobs go before a's second (FIFO would start a's four).
    queue = fair_share_queue(batch, 4, [{"shareIdentifier": "a", "weightFactor": 1.0},
                                        {"shareIdentifier": "b", "weightFactor": 0.25}])
    holder = occupy(batch, queue, "4", shareIdentifier="holder")
    long = definition(batch, LONG)
    a_jobs = [helpers.submit(batch, queue, long, name=f"a{i}", shareIdentifier="a") for i in range(4)]
    b_jobs = [helpers.submit(batch, queue, long, name=f"b{i}", shareIdentifier="b") for i in range(4)]
    settle_runnable(batch, a_jobs + b_jobs)
    batch.terminate_job(jobId=holder, reason="make room")
    helpers.wait_until(lambda: list(statuses(batch, a_jobs + b_jobs).values()).count("RUNNING") == 4, timeout=20)
    helpers.caught_up(batch)
    now = statuses(batch, a_jobs + b_jobs)
    assert sorted(job_id for job_id, status in now.items() if status in ("STARTING", "RUNNING")) == sorted(
        [a_jobs[0], *b_jobs[:3]])
    for job_id in [holder, *a_jobs, *b_jobs]:
        batch.terminate_job(jobId=job_id, reason="done")


def test_within_a_share_the_higher_scheduling_priority_goes_first(batch: Any) -> None:
    queue = fair_share_queue(batch, 1, [{"shareIdentifier": "team", "weightFactor": 1.0}])
    holder = occupy(batch, queue, shareIdentifier="team")
    short = definition(batch, SHORT)
    low = helpers.submit(batch, queue, short, shareIdentifier="team", schedulingPriorityOverride=1)
    high = helpers.submit(batch, queue, short, shareIdentifier="team", schedulingPriorityOverride=9)
    settle_runnable(batch, [low, high])
    batch.terminate_job(jobId=holder, reason="make room")
    first, second = ended(batch, [high, low])
    assert second["startedAt"] >= first["stoppedAt"]


def test_compute_reservation_keeps_room_for_a_share_not_yet_running(batch: Any) -> None:
    # FairsharePolicy.computeReservation: (computeReservation/100) ** ActiveFairShares of the maximum vCPUs is
    # kept for share identifiers not yet active. 50 on 4 vCPUs: while only a runs, a gets 2 of them; b may then
    # take one; with two shares active a quarter (1 vCPU) stays free.
    queue = fair_share_queue(batch, 4, [], computeReservation=50)
    long = definition(batch, LONG)
    a_jobs = [helpers.submit(batch, queue, long, shareIdentifier="a") for _ in range(4)]
    helpers.wait_until(lambda: list(statuses(batch, a_jobs).values()).count("RUNNING") == 2)
    helpers.caught_up(batch)
    assert sorted(statuses(batch, a_jobs).values()) == ["RUNNABLE", "RUNNABLE", "RUNNING", "RUNNING"]
    b_jobs = [helpers.submit(batch, queue, long, shareIdentifier="b") for _ in range(2)]
    helpers.wait_until(lambda: "RUNNING" in statuses(batch, b_jobs).values())
    helpers.caught_up(batch)
    assert sorted(statuses(batch, a_jobs + b_jobs).values()) == ["RUNNABLE"] * 3 + ["RUNNING"] * 3
    for job_id in a_jobs + b_jobs:
        batch.terminate_job(jobId=job_id, reason="done")


def test_a_queue_of_only_unmanaged_environments_is_refused_by_name(batch: Any) -> None:
    # An UNMANAGED environment's capacity is the container instances its owner registers; the emulator has none.
    ce = batch.create_compute_environment(
        computeEnvironmentName=helpers.unique("unmanaged"), type="UNMANAGED", unmanagedvCpus=4)["computeEnvironmentArn"]
    helpers.wait_until(lambda: batch.describe_compute_environments(computeEnvironments=[ce])
                       ["computeEnvironments"][0]["status"] == "VALID")
    queue = helpers.create_queue(batch, ce)
    with pytest.raises(ClientError) as excinfo:
        helpers.submit(batch, queue, definition(batch, SHORT))
    code, message, _ = helpers.client_error(excinfo)
    assert code == "ClientException" and "UNMANAGED" in message and "not supported by this emulator" in message
