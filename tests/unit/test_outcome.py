"""What a DescribeJobs answer means for the task: exit codes, the terminal decision, the failure
message and the XCom result. Pure, shared by the worker and the triggerer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_batch_runner.layout import OUTPUT_DIR, WORKING_DIR
from airflow_batch_runner.outcome import (
    ContainerState,
    JobState,
    Verdict,
    decide,
    exit_code_for,
    failure_message,
    job_state,
    xcom_result,
)

JOB_ID = "8f1c5a3e-2b7d-4c9e-9a61-0d2f3b4c5d6e"
JOB_NAME = "etl-shell-0123456789abcdef"
BUCKET_PATH = "s3://my-bucket/airflow-batch-runner/etl/run/shell/-1/sub-1/"
LOG_PREFIX = "airflow-batch-runner-0123456789abcdef0123"
NON_TERMINAL = ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"]


def effective_container(name: str, **fields: Any) -> dict[str, Any]:
    """A container of ``ecsProperties.taskProperties[].containers`` as DescribeJobs returns it."""
    container: dict[str, Any] = {
        "name": name,
        "image": "ubuntu:24.04" if name == "main" else "public.ecr.aws/aws-cli/aws-cli:2.22.0",
        "command": ["/bin/sh", "-c", "true"] if name == "main" else ["--version"],
        "essential": name == "outputs",
        "mountPoints": [{"sourceVolume": "airflow-batch", "containerPath": "/airflow-batch"}],
        "resourceRequirements": [{"type": "VCPU", "value": "0.875"}, {"type": "MEMORY", "value": "1920"}],
        "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/aws/batch/job"}},
        "environment": [],
        "secrets": [],
        "ulimits": [],
    }
    if name == "main":
        container["environment"] = [
            {"name": "GREETING", "value": "hello"},
            {"name": "WORKING_DIR", "value": WORKING_DIR},
            {"name": "OUTPUT_DIR", "value": OUTPUT_DIR},
            {"name": "BUCKET_PATH", "value": BUCKET_PATH},
        ]
    container.update(fields)
    return container


def attempt(containers: list[dict[str, Any]], reason: str = "Essential container in task exited") -> dict[str, Any]:
    """One entry of ``attempts`` for an ECS job."""
    return {
        "startedAt": 1735689700000,
        "stoppedAt": 1735689760000,
        "statusReason": reason,
        "taskProperties": [
            {
                "containerInstanceArn": "arn:aws:ecs:eu-west-1:123456789012:container-instance/abc",
                "taskArn": "arn:aws:ecs:eu-west-1:123456789012:task/cluster/0a1b2c",
                "containers": containers,
            }
        ],
    }


def describe_entry(
    status: str,
    effective: list[dict[str, Any]] | None = None,
    attempts: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A ``jobs[]`` entry of DescribeJobs for the runner's multi-container ECS job."""
    entry: dict[str, Any] = {
        "jobArn": f"arn:aws:batch:eu-west-1:123456789012:job/{JOB_ID}",
        "jobName": JOB_NAME,
        "jobId": JOB_ID,
        "jobQueue": "arn:aws:batch:eu-west-1:123456789012:job-queue/airflow",
        "status": status,
        "createdAt": 1735689600000,
        "dependsOn": [],
        "jobDefinition": "arn:aws:batch:eu-west-1:123456789012:job-definition/airflow-batch-runner-0123:1",
        "parameters": {},
        "tags": {"airflow:run_key": "0123456789abcdef"},
        "propagateTags": True,
        "platformCapabilities": ["FARGATE"],
        "ecsProperties": {
            "taskProperties": [
                {
                    "containers": effective
                    if effective is not None
                    else [effective_container("main"), effective_container("outputs")],
                    "platformVersion": "LATEST",
                    "networkConfiguration": {"assignPublicIp": "ENABLED"},
                    "volumes": [{"name": "airflow-batch"}],
                }
            ]
        },
    }
    if attempts is not None:
        entry["attempts"] = attempts
    entry.update(fields)
    return entry


def state(status: str = "FAILED", **fields: Any) -> JobState:
    values: dict[str, Any] = {
        "job_id": JOB_ID,
        "job_name": JOB_NAME,
        "status": status,
        "status_reason": None,
        "created_at": 1735689600000,
        "container_exit_code": None,
        "container_reason": None,
        "log_stream": None,
        "bucket_path": BUCKET_PATH,
    }
    values.update(fields)
    return JobState(**values)


# Exit codes


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("SUCCEEDED", 0),
        ("FAILED", 1),
        ("RUNNING", 2),
        ("RUNNABLE", 3),
        ("PENDING", 4),
        ("STARTING", 5),
        ("SUBMITTED", 6),
        ("UNKNOWN", -1),
        ("succeeded", -1),
        ("", -1),
        (None, -1),
    ],
)
def test_each_status_maps_to_kestras_exit_code(status, code):
    assert exit_code_for(status) == code


# Reading DescribeJobs


def test_finished_job_reads_the_main_containers_result_from_its_attempt():
    entry = describe_entry(
        "FAILED",
        statusReason="Essential container in task exited",
        attempts=[
            attempt(
                [
                    {"name": "main", "exitCode": 2, "reason": "main failed", "logStreamName": f"{LOG_PREFIX}/main/t1"},
                    {"name": "outputs", "reason": "dependency main did not succeed"},
                ]
            )
        ],
    )
    result = job_state(entry)
    assert result == JobState(
        job_id=JOB_ID,
        job_name=JOB_NAME,
        status="FAILED",
        status_reason="Essential container in task exited",
        created_at=1735689600000,
        container_exit_code=2,
        container_reason="main failed",
        log_stream=f"{LOG_PREFIX}/main/t1",
        bucket_path=BUCKET_PATH,
        containers=(
            ContainerState("main", 2, "main failed", f"{LOG_PREFIX}/main/t1"),
            ContainerState("outputs", None, "dependency main did not succeed", None),
        ),
    )
    assert result.terminal


def test_the_latest_attempt_wins_over_earlier_ones():
    entry = describe_entry(
        "SUCCEEDED",
        attempts=[
            attempt([{"name": "main", "exitCode": 137, "reason": "OOM", "logStreamName": "first/main/a"}]),
            attempt([{"name": "main", "exitCode": 0, "logStreamName": "second/main/b"}]),
        ],
    )
    result = job_state(entry)
    assert result.container_exit_code == 0
    assert result.log_stream == "second/main/b"
    assert result.container_reason is None


def test_a_zero_exit_code_is_kept_not_mistaken_for_missing():
    entry = describe_entry("SUCCEEDED", attempts=[attempt([{"name": "main", "exitCode": 0}])])
    assert job_state(entry).container_exit_code == 0


def test_bucket_path_is_read_back_from_the_jobs_own_environment():
    entry = describe_entry("RUNNING")
    assert job_state(entry).bucket_path == BUCKET_PATH


def test_job_without_bucket_path_variable_has_no_bucket_path():
    main = effective_container("main", environment=[{"name": "WORKING_DIR", "value": WORKING_DIR}])
    assert job_state(describe_entry("RUNNING", effective=[main])).bucket_path is None


def test_a_sidecars_bucket_path_like_variable_is_not_taken_for_mains():
    main = effective_container("main", environment=[])
    outputs = effective_container("outputs", environment=[{"name": "BUCKET_PATH", "value": "s3://wrong/"}])
    assert job_state(describe_entry("RUNNING", effective=[main, outputs])).bucket_path is None


def test_running_job_finds_its_log_stream_in_the_effective_properties():
    main = effective_container("main", logStreamName=f"{LOG_PREFIX}/main/task-1")
    outputs = effective_container("outputs")
    entry = describe_entry("RUNNING", effective=[main, outputs], startedAt=1735689650000)
    assert "attempts" not in entry
    result = job_state(entry)
    assert result.log_stream == f"{LOG_PREFIX}/main/task-1"
    assert result.container_exit_code is None
    assert result.status == "RUNNING"
    assert not result.terminal


def test_running_job_with_empty_attempts_still_reads_the_effective_properties():
    main = effective_container("main", logStreamName="prefix/main/x")
    result = job_state(describe_entry("RUNNING", effective=[main], attempts=[]))
    assert result.log_stream == "prefix/main/x"
    assert result.bucket_path == BUCKET_PATH


def test_attempt_details_complete_the_effective_container_without_losing_its_environment():
    main = effective_container("main", logStreamName="prefix/main/x")
    entry = describe_entry("FAILED", effective=[main], attempts=[attempt([{"name": "main", "exitCode": 3}])])
    result = job_state(entry)
    assert result.container_exit_code == 3
    assert result.log_stream == "prefix/main/x"
    assert result.bucket_path == BUCKET_PATH


def test_job_that_never_started_has_no_container_result():
    entry = describe_entry("RUNNABLE", statusReason=None)
    result = job_state(entry)
    assert result.status == "RUNNABLE"
    assert result.container_exit_code is None
    assert result.container_reason is None
    assert result.log_stream is None
    assert result.status_reason is None
    assert result.bucket_path == BUCKET_PATH


def test_a_sidecars_reason_explains_the_failure_when_main_has_none():
    entry = describe_entry(
        "FAILED",
        attempts=[
            attempt(
                [
                    {"name": "inputs", "exitCode": 1, "reason": "CannotPullContainerError: access denied"},
                    {"name": "main"},
                    {"name": "outputs"},
                ]
            )
        ],
    )
    result = job_state(entry)
    assert result.container_reason == "CannotPullContainerError: access denied"
    assert result.container_exit_code is None


def test_the_main_container_can_be_named_otherwise():
    entry = describe_entry(
        "FAILED",
        effective=[effective_container("worker", environment=[{"name": "BUCKET_PATH", "value": "s3://b/p/"}])],
        attempts=[attempt([{"name": "worker", "exitCode": 5}])],
    )
    result = job_state(entry, main="worker")
    assert result.container_exit_code == 5
    assert result.bucket_path == "s3://b/p/"


def test_minimal_entry_without_status_or_properties_is_read_as_unknown():
    result = job_state({"jobId": JOB_ID})
    assert result.job_id == JOB_ID
    assert result.job_name == ""
    assert result.status == "UNKNOWN"
    assert not result.terminal
    assert result.bucket_path is None


@pytest.mark.parametrize(
    ("status", "terminal"), [("SUCCEEDED", True), ("FAILED", True), *((s, False) for s in NON_TERMINAL)]
)
def test_only_succeeded_and_failed_are_terminal(status, terminal):
    assert state(status).terminal is terminal


# Deciding


def test_succeeded_job_is_done_with_exit_code_zero():
    verdict = decide(state("SUCCEEDED"), now=100.0, deadline=200.0)
    assert verdict == Verdict(done=True, exit_code=0, timed_out=False)
    assert verdict.succeeded


def test_failed_job_is_done_with_exit_code_one():
    verdict = decide(state("FAILED"), now=100.0, deadline=200.0)
    assert verdict == Verdict(done=True, exit_code=1, timed_out=False)
    assert not verdict.succeeded


def test_a_terminal_status_wins_over_a_passed_deadline():
    verdict = decide(state("SUCCEEDED"), now=500.0, deadline=200.0)
    assert verdict.done and verdict.succeeded and not verdict.timed_out


@pytest.mark.parametrize("status", NON_TERMINAL)
def test_active_job_before_its_deadline_keeps_waiting(status):
    verdict = decide(state(status), now=100.0, deadline=200.0)
    assert not verdict.done
    assert not verdict.timed_out
    assert not verdict.succeeded


@pytest.mark.parametrize("status", NON_TERMINAL)
def test_active_job_without_deadline_keeps_waiting(status):
    assert not decide(state(status), now=1e12, deadline=None).done


@pytest.mark.parametrize(
    ("status", "code"), [("SUBMITTED", 6), ("PENDING", 4), ("RUNNABLE", 3), ("STARTING", 5), ("RUNNING", 2)]
)
def test_active_job_past_its_deadline_times_out_with_the_code_of_its_last_status(status, code):
    verdict = decide(state(status), now=300.0, deadline=200.0)
    assert verdict == Verdict(done=True, exit_code=code, timed_out=True)
    assert not verdict.succeeded


def test_the_deadline_itself_is_already_too_late():
    assert decide(state("RUNNING"), now=200.0, deadline=200.0).timed_out
    assert not decide(state("RUNNING"), now=199.999, deadline=200.0).done


def test_unknown_status_keeps_waiting_with_minus_one_until_the_deadline():
    assert decide(state("UNKNOWN"), now=1.0, deadline=2.0) == Verdict(done=False, exit_code=-1)
    assert decide(state("UNKNOWN"), now=3.0, deadline=2.0) == Verdict(done=True, exit_code=-1, timed_out=True)


def test_a_job_stuck_in_runnable_ends_the_wait_unless_it_ended_or_its_deadline_came_first():
    assert decide(state("RUNNABLE"), now=1.0, deadline=2.0, stuck_for="5 s") == Verdict(
        done=True, exit_code=3, stuck_for="5 s"
    )
    assert decide(state("RUNNABLE"), now=3.0, deadline=2.0, stuck_for="5 s").timed_out
    assert decide(state("FAILED"), now=1.0, deadline=2.0, stuck_for="5 s") == Verdict(done=True, exit_code=1)
    assert not decide(state("RUNNABLE"), now=1.0, deadline=2.0, stuck_for=None).done


def test_a_timed_out_verdict_never_counts_as_success():
    assert not Verdict(done=True, exit_code=0, timed_out=True).succeeded
    assert not Verdict(done=False, exit_code=0).succeeded
    assert Verdict(done=True, exit_code=0).succeeded


# The failure message


def test_failure_message_names_status_codes_and_reasons():
    failed = state(
        "FAILED",
        status_reason="Essential container in task exited",
        container_exit_code=137,
        container_reason="OutOfMemoryError: Container killed due to memory usage",
    )
    message = failure_message(failed, decide(failed, now=0.0, deadline=None), ["starting", "allocating"])
    assert f"AWS Batch job {JOB_NAME} ({JOB_ID}) ended FAILED." in message
    assert "Exit code 1 (status FAILED)." in message
    assert "Main container exit code: 137." in message
    assert "Status reason: Essential container in task exited." in message
    assert "Container reason: OutOfMemoryError: Container killed due to memory usage." in message
    assert message.endswith("Last log lines:\n  starting\n  allocating")


def test_failure_message_says_so_when_main_never_exited():
    failed = state("FAILED")
    message = failure_message(failed, decide(failed, now=0.0, deadline=None), [])
    assert "Main container exit code: none." in message
    assert "Status reason" not in message
    assert "Container reason" not in message
    assert "Last log lines" not in message


def test_failure_message_shows_a_zero_main_exit_when_a_sidecar_failed_the_job():
    failed = state("FAILED", container_exit_code=0, container_reason="outputs: upload failed")
    message = failure_message(failed, decide(failed, now=0.0, deadline=None), [])
    assert "Main container exit code: 0." in message
    assert "Container reason: outputs: upload failed." in message


def sidecar_failure(failing: str) -> JobState:
    """A job of the three containers where ``failing`` exited 1 and every later one never ran."""
    order = ["inputs", "main", "outputs"]
    results = []
    for name in order:
        if order.index(name) < order.index(failing):
            results.append({"name": name, "exitCode": 0, "logStreamName": f"{LOG_PREFIX}/{name}/t1"})
        elif name == failing:
            results.append({"name": name, "exitCode": 1, "logStreamName": f"{LOG_PREFIX}/{name}/t1"})
        else:
            results.append({"name": name, "reason": "DependencyNotSatisfied: a container it depends on failed"})
    effective = [effective_container(name) for name in order]
    return job_state(describe_entry("FAILED", effective=effective, attempts=[attempt(results)],
                                    statusReason="Essential container in task exited"))


@pytest.mark.parametrize("failing", ["inputs", "outputs"])
def test_a_failed_sidecar_is_named_with_its_own_lines_never_hidden_by_a_dependency(failing):
    failed = sidecar_failure(failing)
    assert failed.failed_container == ContainerState(failing, 1, None, f"{LOG_PREFIX}/{failing}/t1")
    message = failure_message(failed, decide(failed, now=0.0, deadline=None), ["fatal error: Access Denied"])
    assert f"Failed container: {failing} (exit code 1)." in message
    assert "DependencyNotSatisfied" not in message
    assert message.endswith(f"Last log lines of the {failing} container:\n  fatal error: Access Denied")


def test_a_sidecar_that_could_not_start_is_named_with_its_reason():
    effective = [effective_container(name) for name in ("inputs", "main", "outputs")]
    results = [
        {"name": "inputs", "reason": "CannotPullContainerError: pull image manifest has been retried 5 time(s)"},
        {"name": "main", "reason": "DependencyNotSatisfied"},
        {"name": "outputs", "reason": "DependencyNotSatisfied"},
    ]
    failed = job_state(describe_entry("FAILED", effective=effective, attempts=[attempt(results)]))
    message = failure_message(failed, decide(failed, now=0.0, deadline=None), [])
    assert "Failed container: inputs (it did not run): CannotPullContainerError: pull image manifest" in message
    assert "DependencyNotSatisfied" not in message


def test_a_failed_main_container_keeps_the_main_message():
    failed = sidecar_failure("main")
    assert failed.failed_container is not None and failed.failed_container.name == "main"
    message = failure_message(failed, decide(failed, now=0.0, deadline=None), ["boom"])
    assert "Failed container" not in message and "Main container exit code: 1." in message
    assert message.endswith("Last log lines:\n  boom")


def test_failure_message_of_a_timeout_names_the_limit_and_the_last_status():
    runnable = state("RUNNABLE", status_reason="CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY")
    verdict = decide(runnable, now=10.0, deadline=5.0)
    message = failure_message(runnable, verdict, [], limit="execution_timeout 0:01:00")
    assert "did not finish within execution_timeout 0:01:00" in message
    assert "it was terminated while RUNNABLE." in message
    assert "Exit code 3 (status RUNNABLE)." in message
    assert "Status reason: CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY." in message
    assert "ended RUNNABLE" not in message


def test_failure_message_keeps_only_the_last_twenty_log_lines_in_order():
    lines = [f"log-line-{i:03d}" for i in range(50)]
    failed = state("FAILED", container_exit_code=1)
    message = failure_message(failed, decide(failed, now=0.0, deadline=None), lines)
    shown = message.split("Last log lines:\n", 1)[1].splitlines()
    assert shown == [f"  log-line-{i:03d}" for i in range(30, 50)]
    assert "log-line-029" not in message


def test_failure_message_shows_every_line_when_there_are_few():
    failed = state("FAILED")
    message = failure_message(failed, decide(failed, now=0.0, deadline=None), iter(["only", "two"]))
    assert message.endswith("Last log lines:\n  only\n  two")


# The XCom result


def test_xcom_result_has_exactly_the_documented_shape():
    succeeded = state("SUCCEEDED", container_exit_code=0)
    outputs = {"out.txt": f"{BUCKET_PATH}work/out.txt", "a.csv": f"{BUCKET_PATH}work/a.csv"}
    result = xcom_result(succeeded, 0, BUCKET_PATH, outputs, WORKING_DIR, OUTPUT_DIR)
    assert result == {
        "job_id": JOB_ID,
        "job_name": JOB_NAME,
        "status": "SUCCEEDED",
        "exit_code": 0,
        "container_exit_code": 0,
        "bucket_path": BUCKET_PATH,
        "working_dir": WORKING_DIR,
        "output_dir": OUTPUT_DIR,
        "output_files": {"a.csv": f"{BUCKET_PATH}work/a.csv", "out.txt": f"{BUCKET_PATH}work/out.txt"},
    }
    assert list(result) == [
        "job_id", "job_name", "status", "exit_code", "container_exit_code",
        "bucket_path", "working_dir", "output_dir", "output_files",
    ]
    assert list(result["output_files"]) == ["a.csv", "out.txt"]
    assert json.loads(json.dumps(result)) == result


def test_xcom_output_files_are_a_copy_not_the_callers_mapping():
    outputs = {"out.txt": "s3://b/p/work/out.txt"}
    result = xcom_result(state("SUCCEEDED"), 0, "s3://b/p/", outputs, WORKING_DIR, OUTPUT_DIR)
    outputs["late.txt"] = "s3://b/p/work/late.txt"
    assert result["output_files"] == {"out.txt": "s3://b/p/work/out.txt"}
    assert type(result["output_files"]) is dict


def test_xcom_result_without_bucket_has_no_bucket_path_and_no_files():
    result = xcom_result(state("SUCCEEDED", bucket_path=None), 0, None, {}, WORKING_DIR, OUTPUT_DIR)
    assert result["bucket_path"] is None
    assert result["output_files"] == {}
    assert result["container_exit_code"] is None

