"""Timings, attempts and resource-seconds read from a DescribeJobs entry (the shapes of the API reference)."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_batch_runner.usage import attempts_report, job_usage, xcom_fields

CREATED, STARTED, STOPPED = 1_735_689_600_000, 1_735_689_612_500, 1_735_689_672_500


def container(name: str, vcpu: str, memory: str, **fields: Any) -> dict[str, Any]:
    requirements = [{"type": "VCPU", "value": vcpu}, {"type": "MEMORY", "value": memory}]
    return {"name": name, "resourceRequirements": requirements, **fields}


def ecs_attempt(started: int, stopped: int, reason: str, main_exit: int | None, **main: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"name": "main", **main}
    if main_exit is not None:
        result["exitCode"] = main_exit
    return {"startedAt": started, "stoppedAt": stopped, "statusReason": reason,
            "taskProperties": [{"containers": [{"name": "inputs", "exitCode": 0}, result]}]}


def ecs_job(attempts: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {
        "jobId": "j", "createdAt": CREATED, "status": "SUCCEEDED", "attempts": attempts,
        "ecsProperties": {"taskProperties": [{"containers": [
            container("inputs", "0.125", "128"), container("main", "0.75", "1792"),
            container("outputs", "0.125", "128"),
        ]}]},
        **fields,
    }


def test_a_job_that_ran_once_reports_its_wait_its_run_and_its_resource_seconds() -> None:
    entry = ecs_job([ecs_attempt(STARTED, STOPPED, "Essential container in task exited", 0)],
                    startedAt=STARTED, stoppedAt=STOPPED)
    fields = xcom_fields(job_usage(entry))
    assert fields == {
        "queued_seconds": 12.5, "running_seconds": 60.0, "attempts": 1,
        "attempt_details": [{"status_reason": "Essential container in task exited", "exit_code": 0,
                             "container_reason": None, "seconds": 60.0}],
        "vcpus": 1.0, "memory_mib": 2048, "vcpu_seconds": 60.0, "gib_seconds": 120.0,
    }


def test_every_attempt_is_billed_and_reported_in_order() -> None:
    host_gone = "Host EC2 (instance i-0123456789abcdef0) terminated."
    entry = ecs_job([
        ecs_attempt(STARTED, STARTED + 30_000, host_gone, None),
        ecs_attempt(STARTED + 40_000, STARTED + 100_000, "Essential container in task exited", 0),
    ], startedAt=STARTED, stoppedAt=STARTED + 100_000)
    spent = job_usage(entry)
    fields = xcom_fields(spent)
    assert fields["attempts"] == 2
    assert [a["status_reason"] for a in fields["attempt_details"]] == [host_gone, "Essential container in task exited"]
    assert [a["exit_code"] for a in fields["attempt_details"]] == [None, 0]
    # 30 s + 60 s of running, the 10 s between the attempts is not billed.
    assert fields["vcpu_seconds"] == 90.0 and fields["gib_seconds"] == 180.0
    assert fields["running_seconds"] == 100.0
    report = attempts_report(spent)
    assert report.splitlines() == [
        "Attempts: 2.",
        f"  #1: main container exit code none; status reason: {host_gone}",
        "  #2: main container exit code 0; status reason: Essential container in task exited",
    ]


def test_a_job_that_never_started_has_no_timings_and_no_cost() -> None:
    entry = ecs_job([], status="RUNNABLE")
    fields = xcom_fields(job_usage(entry))
    assert (fields["queued_seconds"], fields["running_seconds"], fields["attempts"]) == (None, None, 0)
    assert fields["vcpu_seconds"] == 0 and fields["gib_seconds"] == 0
    assert attempts_report(job_usage(entry)) == ""


def test_a_container_job_reads_its_legacy_vcpus_and_memory() -> None:
    entry = {"jobId": "j", "createdAt": CREATED, "startedAt": STARTED, "stoppedAt": STOPPED,
             "container": {"vcpus": 2, "memory": 4096},
             "attempts": [{"startedAt": STARTED, "stoppedAt": STOPPED, "container": {"exitCode": 3, "reason": "x"}}]}
    spent = job_usage(entry)
    assert (spent.vcpus, spent.memory_mib, spent.vcpu_seconds, spent.gib_seconds) == (2.0, 4096, 120.0, 240.0)
    assert spent.attempts[0].exit_code == 3 and spent.attempts[0].container_reason == "x"


@pytest.mark.parametrize("missing", ["startedAt", "stoppedAt"])
def test_a_running_attempt_adds_no_seconds(missing: str) -> None:
    attempt = ecs_attempt(STARTED, STOPPED, "r", 0)
    del attempt[missing]
    spent = job_usage(ecs_job([attempt]))
    assert spent.billed_seconds == 0 and spent.attempts[0].seconds is None


def test_an_attempt_a_sidecar_failed_names_it_not_the_dependency_that_followed() -> None:
    attempt = {"startedAt": STARTED, "stoppedAt": STOPPED, "statusReason": "Essential container in task exited",
               "taskProperties": [{"containers": [
                   {"name": "inputs", "exitCode": 1},
                   {"name": "main", "reason": "DependencyNotSatisfied: a container it depends on failed"},
                   {"name": "outputs", "reason": "DependencyNotSatisfied: a container it depends on failed"},
               ]}]}
    report = attempts_report(job_usage(ecs_job([attempt], status="FAILED")))
    assert report.splitlines()[1] == (
        "  #1: main container exit code none; status reason: Essential container in task exited; "
        "container reason: inputs (exit code 1)"
    )
