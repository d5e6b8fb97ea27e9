"""One poll's decision, the same for the worker and the trigger: logs, verdict, what to terminate with."""

from __future__ import annotations

import json
from typing import Any

from airflow_batch_runner.lifecycle import JobWait, Limits, verdict_from_event, verdict_to_event
from airflow_batch_runner.outcome import KILL_REASON, job_state

MISCONFIGURED = "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - no compute environment fits"


def job(status: str, reason: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"jobId": "j-1", "jobName": "dag-task", "status": status, "statusReason": reason, **extra}


def array(status: str, **summary: int) -> dict[str, Any]:
    return job(status, arrayProperties={"size": 4, "statusSummary": summary})


def test_a_running_job_goes_on_and_an_ended_one_ends_with_its_code() -> None:
    wait = JobWait(Limits(deadline=100.0, limit="100 s"))
    going = wait.step(job("RUNNING"), 1.0)
    assert not going.done and going.log == () and going.terminate is None
    for status, code in (("SUCCEEDED", 0), ("FAILED", 1)):
        ended = wait.step(job(status), 2.0)
        assert ended.done and ended.verdict.exit_code == code and ended.terminate is None


def test_past_the_deadline_the_job_is_terminated_with_the_deadline_reason() -> None:
    step = JobWait(Limits(deadline=100.0, limit="100 s")).step(job("RUNNING"), 100.0)
    assert step.done and step.verdict.timed_out and step.verdict.exit_code == 2
    assert step.terminate == "airflow-batch-runner: the task's limit of 100 s passed"


def test_a_job_runnable_past_its_limit_is_told_then_terminated_with_batchs_reason() -> None:
    wait = JobWait(Limits(deadline=None, limit="1 h", max_runnable_time=5))
    first = wait.step(job("RUNNABLE", MISCONFIGURED), 0.0)
    assert first.log == (f"AWS Batch job dag-task is RUNNABLE: {MISCONFIGURED}",) and not first.done
    assert wait.step(job("RUNNABLE", MISCONFIGURED), 4.9).log == ()
    stuck = wait.step(job("RUNNABLE", MISCONFIGURED), 5.0)
    assert stuck.done and stuck.verdict.stuck_for == "5 s" and stuck.verdict.exit_code == 3
    assert stuck.terminate == f"airflow-batch-runner: RUNNABLE for more than 5 s (max_runnable_time): {MISCONFIGURED}"


def test_an_arrays_progress_is_told_when_it_changes_and_its_waiting_children_are_watched() -> None:
    wait = JobWait(Limits(deadline=None, limit="1 h", max_runnable_time=5))
    assert JobWait.wants_child_reason(array("PENDING", RUNNABLE=4))
    assert not JobWait.wants_child_reason(array("PENDING", RUNNABLE=3, RUNNING=1))
    assert not JobWait.wants_child_reason(job("RUNNABLE"))
    first = wait.step(array("PENDING", RUNNABLE=4), 0.0, MISCONFIGURED)
    assert first.log == ("Array job j-1: 4 RUNNABLE of 4 children",
                         f"AWS Batch job dag-task is RUNNABLE: {MISCONFIGURED}")
    assert wait.step(array("PENDING", RUNNABLE=4), 1.0, MISCONFIGURED).log == ()
    stuck = wait.step(array("PENDING", RUNNABLE=4), 5.0, MISCONFIGURED)
    assert stuck.done and stuck.verdict.exit_code == 3 and stuck.state.status == "PENDING"
    assert stuck.terminate is not None and stuck.terminate.endswith(MISCONFIGURED)
    # One child placed: capacity is there, the wait starts afresh.
    again = JobWait(Limits(deadline=None, limit="1 h", max_runnable_time=5))
    again.step(array("PENDING", RUNNABLE=4), 0.0, MISCONFIGURED)
    assert not again.step(array("PENDING", RUNNABLE=3, RUNNING=1), 6.0).done
    assert not again.step(array("PENDING", RUNNABLE=4), 7.0, MISCONFIGURED).done


def test_the_verdict_travels_in_the_event_and_is_not_decided_again() -> None:
    wait = JobWait(Limits(deadline=None, limit="1 h", max_runnable_time=5))
    wait.step(job("RUNNABLE", MISCONFIGURED), 0.0)
    stuck = wait.step(job("RUNNABLE", MISCONFIGURED), 5.0)
    event = json.loads(json.dumps({"verdict": verdict_to_event(stuck.verdict)}))
    # Read back later, when the job has long been FAILED (terminated): still the trigger's verdict.
    assert verdict_from_event(event, job_state(job("FAILED", KILL_REASON)), 1e9) == stuck.verdict


def test_an_older_triggers_event_is_decided_as_that_version_did() -> None:
    state = job_state(job("RUNNING"))
    assert verdict_from_event({"timed_out": True}, state, 0.0).timed_out
    assert verdict_from_event({"stuck_for": "5 s"}, job_state(job("RUNNABLE")), 0.0).stuck_for == "5 s"
    assert verdict_from_event({}, job_state(job("SUCCEEDED")), 0.0).succeeded
