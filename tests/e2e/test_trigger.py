"""BatchRunnerTrigger and its shared poller, run in an event loop against the emulator."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_batch_runner import task_log
from airflow_batch_runner.emulator.testing import control
from airflow_batch_runner.outcome import KILL_REASON
from airflow_batch_runner.triggers.batch_runner import BatchRunnerTrigger
from tests.airflow_version import needs_airflow
from tests.e2e.conftest import AwsWorld
from tests.e2e.task_instances import TaskInstanceRow, supervisor_comms

# Airflow 3.1 never calls a trigger's on_kill (a kill only cancels the wait there).
ON_KILL = needs_airflow("3.3", "call a trigger's on_kill when its task is killed")


def _submit(aws: AwsWorld, command: str, count: int = 1) -> list[str]:
    batch = aws.client("batch")
    queue = aws.job_queue(f"q-{time.monotonic_ns()}", aws.ec2_ce)
    definition = batch.register_job_definition(
        jobDefinitionName=f"d-{time.monotonic_ns()}", type="container", platformCapabilities=["EC2"],
        ecsProperties={"taskProperties": [{"containers": [{
            "name": "main", "image": "busybox", "command": ["/bin/sh", "-c", command],
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-stream-prefix": "t"}},
            # AWS refuses a job without vCPU or memory (as the emulator now does)
            "resourceRequirements": [{"type": "VCPU", "value": "0.25"}, {"type": "MEMORY", "value": "256"}],
        }]}]},
    )["jobDefinitionArn"]
    return [batch.submit_job(jobName=f"j{i}", jobQueue=queue, jobDefinition=definition)["jobId"]
            for i in range(count)]


def _trigger(aws: AwsWorld, job_id: str, **kwargs: Any) -> BatchRunnerTrigger:
    args: dict[str, Any] = {"job_id": job_id, "deadline": time.time() + 120, "limit": "120 s",
                            "poll_interval": 0.2, "aws_conn_id": None, "region_name": "us-east-1",
                            "overrides": {"endpoint_override": aws.url}, **kwargs}
    return BatchRunnerTrigger(**args)


async def _first_event(trigger: BatchRunnerTrigger, timeout: float = 60) -> dict[str, Any]:
    """The trigger's event; what it left to the worker's log is then logged, as ``execute_complete`` does."""

    async def first() -> dict[str, Any]:
        async for event in trigger.run():
            task_log.replay(trigger.log, event.payload.get("held_log"))
            return dict(event.payload)
        raise AssertionError("trigger ended without an event")

    return await asyncio.wait_for(first(), timeout)


def test_serialise_round_trip_mid_job_resumes_the_same_wait(aws: AwsWorld, tmp_path: Path) -> None:
    release = tmp_path / "release"  # the job runs until the test creates it: the restart falls mid-job
    (job_id,) = _submit(aws, f"while [ ! -e {release} ]; do sleep 0.1; done; echo finished")
    trigger = _trigger(aws, job_id)

    async def interrupted() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await _first_event(trigger, timeout=0.8)  # a triggerer restart: the wait stops mid-job

    asyncio.run(interrupted())
    release.touch()
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_batch_runner.triggers.batch_runner.BatchRunnerTrigger"
    revived = BatchRunnerTrigger(**kwargs)
    assert revived.serialize() == (classpath, kwargs)
    event = asyncio.run(_first_event(revived))
    assert event["status"] == "done"
    assert event["job_id"] == job_id
    assert event["description"]["status"] == "SUCCEEDED"
    assert event["last_lines"] == ["finished"]
    assert event["timed_out"] is False


@pytest.fixture(scope="module")
def task_instance(airflow_db: None) -> TaskInstanceRow:
    return TaskInstanceRow("trigger_kill_decision")


def _on_kill(trigger: BatchRunnerTrigger, task_instance: TaskInstanceRow, state: str | None) -> None:
    """Airflow 3.3's cancellation of a trigger in a triggerer, with the task instance in ``state`` by then."""
    task_instance.set_state(state)
    trigger.task_instance = task_instance.as_triggerer_has_it()
    with supervisor_comms():
        asyncio.run(trigger.on_kill())


@ON_KILL
@pytest.mark.parametrize("state", ["failed", "success", None], ids=["marked-failed", "marked-success", "cleared"])
def test_on_kill_terminates_the_job_of_a_task_instance_a_user_acted_on(
    aws: AwsWorld, task_instance: TaskInstanceRow, state: str | None
) -> None:
    (job_id,) = _submit(aws, "sleep 120")
    _on_kill(_trigger(aws, job_id), task_instance, state)
    batch = aws.client("batch")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
        if job["status"] == "FAILED":
            break
        time.sleep(0.2)
    assert job["status"] == "FAILED"
    assert job["statusReason"] == KILL_REASON


@ON_KILL
def test_on_kill_of_a_trigger_moved_to_another_triggerer_leaves_the_job_and_its_inputs(
    aws: AwsWorld, task_instance: TaskInstanceRow, capsys: pytest.CaptureFixture[str]
) -> None:
    """Airflow 3.3 cancels a trigger that left a triggerer's assignment as if a user had acted: the task
    instance, still deferred, tells that another triggerer waits on the job now."""
    (job_id,) = _submit(aws, "sleep 120")
    aws.client("s3").put_object(Bucket=aws.bucket, Key="run/inputs/a.txt", Body=b"x")
    _on_kill(_trigger(aws, job_id, delete_inputs_of=f"s3://{aws.bucket}/run/"), task_instance, "deferred")
    assert "TerminateJob" not in aws.calls()
    assert aws.object_keys() == ["run/inputs/a.txt"]
    assert "moved to another triggerer" in capsys.readouterr().out


def test_on_kill_that_cannot_ask_airflow_leaves_the_job_running_and_says_so(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    (job_id,) = _submit(aws, "sleep 120")
    asyncio.run(_trigger(aws, job_id).on_kill())  # no task instance, no supervisor to ask
    assert "TerminateJob" not in aws.calls()
    assert f"AWS Batch job {job_id} is left running" in capsys.readouterr().out


@ON_KILL
def test_on_kill_deletes_the_staged_inputs_it_was_given_and_nothing_else(
    aws: AwsWorld, task_instance: TaskInstanceRow
) -> None:
    (job_id,) = _submit(aws, "sleep 120")
    s3 = aws.client("s3")
    for key in ("run/inputs/a.txt", "run/inputs/sub/b.txt", "run/outputs/out.txt", "other/inputs/c.txt"):
        s3.put_object(Bucket=aws.bucket, Key=key, Body=b"x")
    _on_kill(_trigger(aws, job_id, delete_inputs_of=f"s3://{aws.bucket}/run/"), task_instance, "failed")
    assert sorted(aws.object_keys()) == ["other/inputs/c.txt", "run/outputs/out.txt"]


def test_cleanup_on_a_triggerer_restart_leaves_the_job_running(aws: AwsWorld) -> None:
    (job_id,) = _submit(aws, "sleep 30")
    trigger = _trigger(aws, job_id)

    async def restart() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await _first_event(trigger, timeout=1.0)
        await trigger.cleanup()

    asyncio.run(restart())
    assert aws.client("batch").describe_jobs(jobs=[job_id])["jobs"][0]["status"] in ("RUNNABLE", "STARTING", "RUNNING")


def test_one_poller_serves_many_triggers_with_one_describe_call_per_interval(aws: AwsWorld) -> None:
    job_ids = _submit(aws, "sleep 3; echo done-$AWS_BATCH_JOB_ID", count=30)
    before = control(aws.url, "stats")["calls"]

    async def all_events() -> list[dict[str, Any]]:
        triggers = [_trigger(aws, job_id, poll_interval=0.5) for job_id in job_ids]
        return list(await asyncio.gather(*(_first_event(t) for t in triggers)))

    started = time.monotonic()
    events = asyncio.run(all_events())
    elapsed = time.monotonic() - started
    after = control(aws.url, "stats")["calls"]
    assert [e["description"]["status"] for e in events] == ["SUCCEEDED"] * 30
    assert all(e["last_lines"] == [f"done-{e['job_id']}"] for e in events)
    describe = after["batch"]["DescribeJobs"] - before["batch"].get("DescribeJobs", 0)
    log_calls = after["logs"].get("FilterLogEvents", 0) - before.get("logs", {}).get("FilterLogEvents", 0)
    # At most one round per interval, each one call for all 30 jobs (a call per job would be 30 a round);
    # one more call allowed for a request botocore retried on a busy machine (a CI run saw 12 in 5.3 s).
    rounds = elapsed / 0.5 + 1
    assert describe <= rounds + 1, (describe, elapsed)
    assert log_calls <= rounds + 1, (log_calls, elapsed)


def test_a_job_that_vanished_ends_the_wait_with_an_error_event(aws: AwsWorld) -> None:
    event = asyncio.run(_first_event(_trigger(aws, "00000000-0000-0000-0000-000000000000", poll_interval=0.1)))
    assert event["status"] == "error"
    assert event["message"] == "AWS Batch job 00000000-0000-0000-0000-000000000000 no longer exists"


def test_throttled_polls_back_off_and_never_fail_the_wait(aws: AwsWorld) -> None:
    (job_id,) = _submit(aws, "sleep 1; echo through")
    control(aws.url, "faults", {"batch:DescribeJobs": {"throttle_rate": 1.0, "count": 3}})
    # No botocore retries: every throttled call reaches the poller, which must back off and go on.
    no_retries = {"retries": {"mode": "standard", "total_max_attempts": 1}}
    try:
        event = asyncio.run(_first_event(_trigger(aws, job_id, poll_interval=0.1, botocore_config=no_retries),
                                         timeout=120))
    finally:
        control(aws.url, "faults", {})
    assert event["status"] == "done"
    assert event["description"]["status"] == "SUCCEEDED"
    assert control(aws.url, "stats")["injected"]["batch:DescribeJobs"] == 3


def test_the_deadline_is_kept_while_describe_jobs_answers_nothing(aws: AwsWorld) -> None:
    """Once the job was described, DescribeJobs is held (a loaded or stuck endpoint): the deadline still ends the
    wait at its time, on the last description, rather than when a late answer comes."""
    (job_id,) = _submit(aws, "sleep 60")
    before = aws.calls().get("DescribeJobs", 0)

    async def run() -> tuple[dict[str, Any], float]:
        deadline = time.time() + 4
        trigger = _trigger(aws, job_id, poll_interval=0.5, deadline=deadline, limit="4 s")
        waiting = asyncio.ensure_future(_first_event(trigger, timeout=25))
        while aws.calls().get("DescribeJobs", 0) <= before:  # described once
            await asyncio.sleep(0.05)
        await asyncio.to_thread(control, aws.url, "faults", {"batch:DescribeJobs": {"delay": 60.0}})
        event = await waiting
        late = time.time() - deadline
        await asyncio.to_thread(control, aws.url, "faults", {})  # the held call ends: the loop can close
        return event, late

    try:
        event, late = asyncio.run(run())
    finally:
        control(aws.url, "faults", {})
    assert event["status"] == "done" and event["timed_out"] is True
    assert late < 4.0, late  # the terminate call and a short final read; not the 60 s hold
    job = aws.client("batch").describe_jobs(jobs=[job_id])["jobs"][0]
    assert job["status"] == "FAILED"
