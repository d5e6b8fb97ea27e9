"""A job waiting in RUNNABLE: each new status reason told once, the limit reached, the queue's time-limit actions."""

from __future__ import annotations

from dataclasses import replace

from airflow_batch_runner.job_spec import QUEUE_TIME_LIMIT_ACTIONS
from airflow_batch_runner.outcome import JobState, Verdict, decide, failure_message
from airflow_batch_runner.runnable import RunnableWatch, as_waiting, children_waiting, stuck_reason
from tests.unit.test_job_spec import BATCH_MODEL
from tests.unit.test_outcome import state

CAPACITY = "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - Service cannot fulfill the capacity requested"
MISCONFIGURED = "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - no compute environment fits"


def runnable(reason: str | None) -> JobState:
    return replace(state("RUNNABLE"), status_reason=reason)


def test_each_new_reason_is_told_once() -> None:
    watch = RunnableWatch(limit=None)
    told = [watch.observe(s, now)[0] for now, s in enumerate(
        [runnable(None), runnable(None), runnable(CAPACITY), runnable(CAPACITY), runnable(MISCONFIGURED)])]
    assert told[0] is not None and told[0].endswith("is RUNNABLE: waiting to be placed")
    assert told[1] is None
    assert told[2] is not None and told[2].endswith(f"is still RUNNABLE: {CAPACITY}")
    assert told[3] is None
    assert told[4] is not None and told[4].endswith(MISCONFIGURED)


def test_the_limit_counts_from_the_first_poll_in_runnable_and_starts_over_after_it() -> None:
    watch = RunnableWatch(limit=10)
    assert watch.observe(state("PENDING"), 0)[1] is False
    assert watch.observe(runnable(CAPACITY), 5)[1] is False
    assert watch.observe(runnable(CAPACITY), 14.9)[1] is False
    assert watch.observe(runnable(CAPACITY), 15)[1] is True
    # A retry's new wait in RUNNABLE is a new stretch.
    assert watch.observe(state("RUNNING"), 16)[1] is False
    assert watch.observe(runnable(None), 20)[1] is False
    assert watch.observe(runnable(None), 30)[1] is True
    assert RunnableWatch(limit=None).observe(runnable(CAPACITY), 10**9)[1] is False


def test_the_failure_names_the_limit_the_exit_code_and_batchs_reason() -> None:
    message = failure_message(runnable(MISCONFIGURED), Verdict(True, 3, stuck_for="5 s"), [])
    assert "stayed RUNNABLE longer than 5 s (max_runnable_time); it was terminated. Exit code 3 (status RUNNABLE)." \
        in message
    assert f"Status reason: {MISCONFIGURED}." in message
    assert stuck_reason("5 s", MISCONFIGURED) == (
        f"airflow-batch-runner: RUNNABLE for more than 5 s (max_runnable_time): {MISCONFIGURED}")


def test_the_runners_queue_cancels_what_aws_cannot_place_and_the_request_is_valid() -> None:
    from botocore.validate import ParamValidator

    request = {"jobQueueName": "q", "priority": 1, "state": "ENABLED",
               "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "arn"}],
               "jobStateTimeLimitActions": [dict(a) for a in QUEUE_TIME_LIMIT_ACTIONS]}
    shape = BATCH_MODEL.operation_model("CreateJobQueue").input_shape
    assert shape is not None
    assert not ParamValidator().validate(request, shape).has_errors()
    assert {a["reason"]: a["maxTimeSeconds"] for a in QUEUE_TIME_LIMIT_ACTIONS} == {
        "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE": 600, "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT": 600,
        "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY": 14_400}
    assert all(600 <= a["maxTimeSeconds"] <= 86_400 and a["action"] == "CANCEL" for a in QUEUE_TIME_LIMIT_ACTIONS)


def parent(status: str, **summary: int) -> dict[str, object]:
    return {"jobId": "p", "status": status, "arrayProperties": {"size": 4, "statusSummary": summary}}


def test_an_array_waits_when_children_are_runnable_and_none_is_placed() -> None:
    assert children_waiting(parent("PENDING", RUNNABLE=4))
    assert children_waiting(parent("PENDING", RUNNABLE=2, SUCCEEDED=1, FAILED=1))  # the rest cannot go on
    assert not children_waiting(parent("PENDING", RUNNABLE=3, RUNNING=1))  # capacity is there: turns
    assert not children_waiting(parent("PENDING", RUNNABLE=3, STARTING=1))
    assert not children_waiting(parent("PENDING", PENDING=4))
    assert not children_waiting(parent("FAILED", RUNNABLE=1))  # ended
    assert not children_waiting({"jobId": "single", "status": "RUNNABLE"})


def test_an_array_whose_children_wait_is_watched_and_limited_as_one_runnable_job() -> None:
    pending = replace(state("PENDING"), status_reason=None, array_size=4)
    waiting = as_waiting(pending, MISCONFIGURED)
    watch = RunnableWatch(limit=3)
    news, stuck = watch.observe(waiting, 0.0)
    assert news is not None and news.endswith(f"is RUNNABLE: {MISCONFIGURED}") and not stuck
    assert watch.observe(waiting, 3.0) == (None, True)
    verdict = decide(waiting, 3.0, None, stuck_for="3 s")
    assert verdict.done and verdict.exit_code == 3  # RUNNABLE's code, though the parent is PENDING
