"""Jobs that really run: statuses, exit codes, shared volumes, live logs, termination, timeout, retries."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.emulator import helpers
from tests.emulator.helpers import container, resources

pytestmark = pytest.mark.timeout(120)


def test_three_container_job_shares_a_volume_streams_logs_and_fails_with_the_exit_code(
    batch: Any, logs: Any, fargate_queue: str
) -> None:
    mounts = [("work", "/work")]
    definition = helpers.register_ecs(
        batch,
        [
            container(
                "writer",
                ["sh", "-c", "echo shared-payload > /work/shared.txt && echo writer wrote the file"],
                essential=False,
                mounts=mounts,
                log_prefix="three",
                resourceRequirements=resources("0.25", "512"),
            ),
            container(
                "reader",
                ["sh", "-c", "echo read: $(cat /work/shared.txt); sleep 2; exit 3"],
                depends_on=[("writer", "SUCCESS")],
                mounts=mounts,
                log_prefix="three",
                resourceRequirements=resources("0.5", "1024"),
            ),
            container(
                "after",
                ["sh", "-c", "echo after started; sleep 30"],
                essential=False,
                depends_on=[("reader", "START")],
                log_prefix="three",
                resourceRequirements=resources("0.25", "512"),
            ),
        ],
        volumes=["work"],
        fargate=True,
    )
    job_id = helpers.submit(batch, fargate_queue, definition["jobDefinitionArn"])

    seen: list[str] = []
    writer_lines_while_running: list[str] = []
    first_seen: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 30
    while True:
        job = helpers.describe(batch, job_id)
        if not seen or seen[-1] != job["status"]:
            seen.append(job["status"])
            first_seen[job["status"]] = job
        if job["status"] in helpers.TERMINAL:
            break
        if job["status"] == "RUNNING" and not writer_lines_while_running:
            writer = job["ecsProperties"]["taskProperties"][0]["containers"][0]
            assert writer["name"] == "writer"
            if "logStreamName" in writer:
                writer_lines_while_running = helpers.log_messages(logs, writer["logStreamName"])
        assert time.monotonic() < deadline, f"job still {job['status']}; seen {seen}"
        time.sleep(0.005)

    # In lifecycle order. A status that lasts one emulator step can pass between two looks on a loaded host; the
    # whole sequence is in the job's state change events (test_events.py), which miss none.
    lifecycle = ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "FAILED"]
    assert seen == [status for status in lifecycle if status in seen] and {"SUBMITTED", "RUNNING"} <= set(seen), seen
    assert writer_lines_while_running == ["writer wrote the file"], "the writer's log was not readable while running"
    assert job["statusReason"] == "Essential container in task exited"
    assert job["stoppedAt"] - job["startedAt"] >= 2000
    # startedAt is when the job went from STARTING to RUNNING: no status seen before RUNNING has it.
    assert all("startedAt" not in first_seen[status] for status in seen[:seen.index("RUNNING")])
    assert first_seen["RUNNING"]["startedAt"] == job["startedAt"] == job["attempts"][0]["startedAt"]
    assert "stoppedAt" not in first_seen["RUNNING"]

    assert len(job["attempts"]) == 1
    task = job["attempts"][0]["taskProperties"][0]
    task_id = task["taskArn"].rsplit("/", 1)[-1]
    results = helpers.container_results(job)
    assert [c["name"] for c in task["containers"]] == ["writer", "reader", "after"]
    assert results["writer"]["exitCode"] == 0
    assert results["reader"]["exitCode"] == 3
    assert results["after"]["exitCode"] == 143  # stopped with SIGTERM once the essential reader exited
    for name in ("writer", "reader", "after"):
        assert results[name]["logStreamName"] == f"three/{name}/{task_id}"
    assert helpers.log_messages(logs, f"three/reader/{task_id}") == ["read: shared-payload"]
    assert helpers.log_messages(logs, f"three/after/{task_id}") == ["after started"]

    described = {c["name"]: c for c in job["ecsProperties"]["taskProperties"][0]["containers"]}
    assert described["reader"]["exitCode"] == 3
    assert described["reader"]["dependsOn"] == [{"containerName": "writer", "condition": "SUCCESS"}]


def test_container_job_succeeds_and_logs_to_the_default_stream(batch: Any, logs: Any, ec2_queue: str) -> None:
    name = helpers.unique("hello")
    definition = helpers.register_container(
        batch, ["sh", "-c", "echo hello from $AWS_BATCH_JOB_ID; echo second line"], name=name
    )
    job_id = helpers.submit(batch, ec2_queue, definition["jobDefinitionArn"])
    job, seen = helpers.watch_job(batch, job_id)

    assert seen[0] == "SUBMITTED"
    assert seen == sorted(seen, key=helpers.ALL_STATUSES.index), "statuses out of order"
    assert seen[-1] == "SUCCEEDED"
    assert job["container"]["exitCode"] == 0
    task_id = job["container"]["taskArn"].rsplit("/", 1)[-1]
    stream = f"{name}/default/{task_id}"
    assert job["container"]["logStreamName"] == stream
    assert job["attempts"][0]["container"]["logStreamName"] == stream
    assert job["attempts"][0]["container"]["exitCode"] == 0
    assert helpers.log_messages(logs, stream) == [f"hello from {job_id}", "second line"]


def test_container_job_reports_its_log_stream_while_running(batch: Any, logs: Any, ec2_queue: str) -> None:
    name = helpers.unique("live")
    definition = helpers.register_container(batch, ["sh", "-c", "echo started; sleep 30"], name=name)
    job_id = helpers.submit(batch, ec2_queue, definition["jobDefinitionArn"])
    job = helpers.wait_for_status(batch, job_id, ["RUNNING"])
    stream = job["container"]["logStreamName"]
    assert stream == f"{name}/default/{job['container']['taskArn'].rsplit('/', 1)[-1]}"
    assert helpers.wait_until(lambda: helpers.log_messages(logs, stream)) == ["started"]
    batch.terminate_job(jobId=job_id, reason="done looking")
    helpers.wait_for_status(batch, job_id, ["FAILED"], timeout=10)


def test_complete_dependency_runs_after_a_failed_non_essential_container(batch: Any, ec2_queue: str) -> None:
    definition = helpers.register_ecs(
        batch,
        [
            container("prepare", ["sh", "-c", "exit 4"], essential=False),
            container("main", ["sh", "-c", "echo main"], depends_on=[("prepare", "COMPLETE")]),
        ],
    )
    job, _ = helpers.watch_job(batch, helpers.submit(batch, ec2_queue, definition["jobDefinitionArn"]))
    assert job["status"] == "SUCCEEDED"
    results = helpers.container_results(job)
    assert results["prepare"]["exitCode"] == 4
    assert results["main"]["exitCode"] == 0


def test_success_dependency_never_met_fails_the_job_without_starting_the_container(
    batch: Any, logs: Any, ec2_queue: str
) -> None:
    definition = helpers.register_ecs(
        batch,
        [
            container("inputs", ["sh", "-c", "echo staging failed; exit 1"], essential=False, log_prefix="dep"),
            container("main", ["sh", "-c", "echo must not run"], depends_on=[("inputs", "SUCCESS")], log_prefix="dep"),
        ],
    )
    job, _ = helpers.watch_job(batch, helpers.submit(batch, ec2_queue, definition["jobDefinitionArn"]))
    assert job["status"] == "FAILED"
    results = helpers.container_results(job)
    assert results["inputs"]["exitCode"] == 1
    assert "exitCode" not in results["main"]
    assert "logStreamName" not in results["main"]
    task_id = job["attempts"][0]["taskProperties"][0]["taskArn"].rsplit("/", 1)[-1]
    assert helpers.log_messages(logs, f"dep/main/{task_id}") == []


def test_terminate_running_job_fails_it_quickly_with_the_reason(batch: Any, logs: Any, ec2_queue: str) -> None:
    definition = helpers.register_ecs(batch, [container("main", ["sh", "-c", "echo started; exec sleep 60"])])
    job_id = helpers.submit(batch, ec2_queue, definition["jobDefinitionArn"])
    helpers.wait_for_lines(batch, logs, job_id, "main", ["started"])  # the process runs
    started = time.monotonic()
    batch.terminate_job(jobId=job_id, reason="Terminated by the test")
    job = helpers.wait_for_status(batch, job_id, helpers.TERMINAL, timeout=10)
    assert time.monotonic() - started < 3.0, "SIGTERM should stop sleep at once"
    assert job["status"] == "FAILED"
    assert job["statusReason"] == "Terminated by the test"
    assert job["isTerminated"] is True
    assert job["attempts"][0]["statusReason"] == "Terminated by the test"
    assert helpers.container_results(job)["main"]["exitCode"] == 143


def _blocked_queue(batch: Any) -> str:
    """A VALID, ENABLED queue whose only compute environment is DISABLED: its jobs stay RUNNABLE."""
    ce = helpers.create_compute_environment(batch, state="DISABLED")
    return helpers.create_queue(batch, ce)


def test_terminate_runnable_job(batch: Any) -> None:
    queue = _blocked_queue(batch)
    definition = helpers.register_ecs(batch, [container("main", ["true"])])
    job_id = helpers.submit(batch, queue, definition["jobDefinitionArn"])
    # The scheduler has looked at it and found no compute environment to place it on.
    job = helpers.wait_until(lambda: (lambda j: j if j.get("statusReason") else None)(helpers.describe(batch, job_id)))
    assert job["status"] == "RUNNABLE", "a job without capacity must stay RUNNABLE"
    assert job["statusReason"].startswith("UNDETERMINED - no compute environment")
    batch.terminate_job(jobId=job_id, reason="No capacity")
    job = helpers.wait_for_status(batch, job_id, helpers.TERMINAL, timeout=2)
    assert job["status"] == "FAILED"
    assert job["statusReason"] == "No capacity"
    assert job["attempts"] == []


def test_cancel_job_fails_a_queued_job_but_not_a_running_one(batch: Any, ec2_queue: str) -> None:
    queued = helpers.submit(batch, _blocked_queue(batch), helpers.register_ecs(batch, [container("m", ["true"])])[
        "jobDefinitionArn"
    ])
    helpers.wait_for_status(batch, queued, ["RUNNABLE"])
    batch.cancel_job(jobId=queued, reason="Cancelled by the test")
    job = helpers.wait_for_status(batch, queued, helpers.TERMINAL, timeout=2)
    assert (job["status"], job["statusReason"], job["isCancelled"]) == ("FAILED", "Cancelled by the test", True)

    definition = helpers.register_ecs(batch, [container("main", ["sleep", "1"])])
    running = helpers.submit(batch, ec2_queue, definition["jobDefinitionArn"])
    helpers.wait_for_status(batch, running, ["RUNNING"])
    batch.cancel_job(jobId=running, reason="too late")
    job = helpers.wait_for_status(batch, running, helpers.TERMINAL, timeout=10)
    assert job["status"] == "SUCCEEDED"
    assert job["isCancelled"] is False


def test_job_on_a_disabled_queue_stays_runnable_until_the_queue_is_enabled(
    batch: Any, ec2_queue: str, tmp_path: Path
) -> None:
    # The job waits PENDING on a dependency that runs until the test lets it end (the emulator runs its command on
    # this host), so the queue is disabled before the job could be placed, however loaded the host.
    release = tmp_path / "release"
    blocker_definition = helpers.register_ecs(
        batch, [container("main", ["sh", "-c", helpers.until_released(release)])])
    blocker = helpers.submit(batch, ec2_queue, blocker_definition["jobDefinitionArn"])
    helpers.wait_for_status(batch, blocker, ["RUNNING"])
    definition = helpers.register_ecs(batch, [container("main", ["true"])])
    job_id = helpers.submit(batch, ec2_queue, definition["jobDefinitionArn"], dependsOn=[{"jobId": blocker}])
    helpers.wait_for_status(batch, job_id, ["PENDING"])
    batch.update_job_queue(jobQueue=ec2_queue, state="DISABLED")
    helpers.wait_until(lambda: batch.describe_job_queues(jobQueues=[ec2_queue])["jobQueues"][0]["status"] == "VALID")
    release.touch()  # a disabled queue's running jobs still finish
    assert helpers.wait_for_status(batch, blocker)["status"] == "SUCCEEDED"
    job = helpers.wait_for_status(batch, job_id, ["RUNNABLE", "SUCCEEDED"])
    assert job["status"] == "RUNNABLE"
    helpers.caught_up(batch)  # every step the job had due has been taken
    assert helpers.describe(batch, job_id)["status"] == "RUNNABLE"
    batch.update_job_queue(jobQueue=ec2_queue, state="ENABLED")
    assert helpers.wait_for_status(batch, job_id)["status"] == "SUCCEEDED"


@pytest.mark.slow
def test_attempt_duration_timeout_fails_the_job_and_is_not_retried(batch: Any, ec2_queue: str) -> None:
    definition = helpers.register_ecs(batch, [container("main", ["sleep", "300"])])
    job_id = helpers.submit(
        batch,
        ec2_queue,
        definition["jobDefinitionArn"],
        timeout={"attemptDurationSeconds": 60},
        retryStrategy={"attempts": 2},
    )
    job = helpers.wait_for_status(batch, job_id, helpers.TERMINAL, timeout=90, interval=0.5)
    assert job["status"] == "FAILED"
    assert "timeout" in job["statusReason"].lower()
    assert job["timeout"] == {"attemptDurationSeconds": 60}
    assert len(job["attempts"]) == 1, "an attempt that timed out is not retried"
    duration = (job["stoppedAt"] - job["startedAt"]) / 1000
    assert 60 <= duration < 66
    assert helpers.container_results(job)["main"]["exitCode"] == 143


def test_retry_strategy_runs_a_failing_job_twice(batch: Any, logs: Any, ec2_queue: str) -> None:
    name = helpers.unique("retry")
    definition = helpers.register_container(
        batch, ["sh", "-c", "echo attempt $AWS_BATCH_JOB_ATTEMPT; exit 7"], name=name
    )
    job_id = helpers.submit(batch, ec2_queue, definition["jobDefinitionArn"], retryStrategy={"attempts": 2})
    job = helpers.wait_for_status(batch, job_id, helpers.TERMINAL, timeout=60)
    assert job["status"] == "FAILED"
    assert job["retryStrategy"]["attempts"] == 2
    # Two attempts, each its own task and log stream (polling could miss the second's short STARTING).
    assert len(job["attempts"]) == 2
    for number, attempt in enumerate(job["attempts"], start=1):
        assert attempt["container"]["exitCode"] == 7
        assert helpers.log_messages(logs, attempt["container"]["logStreamName"]) == [f"attempt {number}"]
    assert job["attempts"][0]["container"]["taskArn"] != job["attempts"][1]["container"]["taskArn"]


def test_retry_strategy_from_the_job_definition_stops_after_a_success(batch: Any, ec2_queue: str) -> None:
    # Volumes are per attempt, so the command decides from the attempt number whether to fail.
    definition = helpers.register_container(
        batch, ["sh", "-c", 'test "$AWS_BATCH_JOB_ATTEMPT" -ge 2'], retryStrategy={"attempts": 3}
    )
    job, _ = helpers.watch_job(batch, helpers.submit(batch, ec2_queue, definition["jobDefinitionArn"]))
    assert job["status"] == "SUCCEEDED"
    assert [a["container"]["exitCode"] for a in job["attempts"]] == [1, 0]


def test_ecs_properties_override_changes_command_environment_and_resources(
    batch: Any, logs: Any, fargate_queue: str
) -> None:
    definition = helpers.register_ecs(
        batch,
        [
            container(
                "main",
                ["sh", "-c", "echo default command"],
                log_prefix="override",
                environment=[{"name": "GREETING", "value": "from-definition"}, {"name": "OTHER", "value": "kept"}],
                resourceRequirements=resources("1", "2048"),
            )
        ],
        fargate=True,
    )
    override = {
        "taskProperties": [
            {
                "containers": [
                    {
                        "name": "main",
                        "command": ["sh", "-c", "echo $GREETING $OTHER"],
                        "environment": [{"name": "GREETING", "value": "from-override"}],
                        "resourceRequirements": resources("2", "4096"),
                    }
                ]
            }
        ]
    }
    job_id = helpers.submit(batch, fargate_queue, definition["jobDefinitionArn"], ecsPropertiesOverride=override)
    job = helpers.wait_for_status(batch, job_id)
    assert job["status"] == "SUCCEEDED"
    main = job["ecsProperties"]["taskProperties"][0]["containers"][0]
    assert main["command"] == ["sh", "-c", "echo $GREETING $OTHER"]
    assert {e["name"]: e["value"] for e in main["environment"]} == {"GREETING": "from-override", "OTHER": "kept"}
    assert {r["type"]: r["value"] for r in main["resourceRequirements"]} == {"VCPU": "2", "MEMORY": "4096"}
    assert helpers.log_messages(logs, main["logStreamName"]) == ["from-override kept"]
    # The job definition itself is unchanged.
    registered = batch.describe_job_definitions(jobDefinitions=[definition["jobDefinitionArn"]])["jobDefinitions"][0]
    assert registered["ecsProperties"]["taskProperties"][0]["containers"][0]["command"] == [
        "sh", "-c", "echo default command",
    ]


def test_container_overrides_on_a_container_job(batch: Any, logs: Any, ec2_queue: str) -> None:
    definition = helpers.register_container(batch, ["sh", "-c", "echo definition"])
    job_id = helpers.submit(
        batch,
        ec2_queue,
        definition["jobDefinitionArn"],
        containerOverrides={
            "command": ["sh", "-c", "echo value=$VALUE"],
            "environment": [{"name": "VALUE", "value": "42"}],
        },
    )
    job = helpers.wait_for_status(batch, job_id)
    assert job["status"] == "SUCCEEDED"
    assert job["container"]["command"] == ["sh", "-c", "echo value=$VALUE"]
    assert helpers.log_messages(logs, job["container"]["logStreamName"]) == ["value=42"]


def test_tags_and_propagate_tags(batch: Any, ec2_queue: str) -> None:
    definition = helpers.register_container(batch, ["true"], tags={"owner": "definition"})
    job_id = helpers.submit(
        batch,
        ec2_queue,
        definition["jobDefinitionArn"],
        tags={"dag_id": "example", "run_key": "abc123"},
        propagateTags=True,
    )
    job = helpers.describe(batch, job_id)
    assert job["propagateTags"] is True
    assert {"dag_id": "example", "run_key": "abc123"}.items() <= job["tags"].items()
    arn = job["jobArn"]
    assert {"dag_id": "example", "run_key": "abc123"}.items() <= batch.list_tags_for_resource(resourceArn=arn)[
        "tags"
    ].items()
    batch.tag_resource(resourceArn=arn, tags={"extra": "1"})
    batch.untag_resource(resourceArn=arn, tagKeys=["dag_id"])
    tags = batch.list_tags_for_resource(resourceArn=arn)["tags"]
    assert tags["extra"] == "1"
    assert "dag_id" not in tags
    assert helpers.describe(batch, job_id)["tags"] == tags

    plain = helpers.describe(batch, helpers.submit(batch, ec2_queue, definition["jobDefinitionArn"], tags={"a": "b"}))
    assert plain["propagateTags"] is False
    assert plain["tags"] == {"a": "b"}


def test_unpullable_image_fails_with_cannot_pull_container_error(batch: Any, ec2_queue: str) -> None:
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/does-not-exist:1"
    definition = helpers.register_container(batch, ["true"], image=image)
    job, _ = helpers.watch_job(batch, helpers.submit(batch, ec2_queue, definition["jobDefinitionArn"]))
    assert job["status"] == "FAILED"
    assert "CannotPullContainerError" in job["statusReason"]
    assert "exitCode" not in job["container"]
    assert "CannotPullContainerError" in job["attempts"][0]["container"]["reason"]


def test_unpullable_sidecar_image_fails_an_ecs_job(batch: Any, ec2_queue: str) -> None:
    definition = helpers.register_ecs(
        batch,
        [
            container("sidecar", ["true"], essential=False, image="registry.example.com/nonexistent:latest"),
            container("main", ["sleep", "30"], depends_on=[("sidecar", "SUCCESS")]),
        ],
    )
    job, _ = helpers.watch_job(batch, helpers.submit(batch, ec2_queue, definition["jobDefinitionArn"]))
    assert job["status"] == "FAILED"
    assert "CannotPullContainerError" in job["statusReason"]


def test_aws_cli_image_uploads_a_file_from_the_shared_volume_to_s3(
    batch: Any, s3: Any, logs: Any, ec2_queue: str
) -> None:
    bucket = helpers.unique("outputs")
    s3.create_bucket(Bucket=bucket)
    mounts = [("work", "/mnt/work")]
    # SUCCESS may only target a non-essential container: main is not essential, the uploader is.
    definition = helpers.register_ecs(
        batch,
        [
            container(
                "main",
                ["sh", "-c", "mkdir -p $OUT_DIR && echo produced > $OUT_DIR/result.txt"],
                essential=False,
                mounts=mounts,
                environment=[{"name": "OUT_DIR", "value": "/mnt/work/out"}],
                log_prefix="cli",
            ),
            container(
                "outputs",
                ["s3", "cp", "--recursive", "/mnt/work/out", f"s3://{bucket}/run/1/"],
                image="public.ecr.aws/aws-cli/aws-cli:2.17.0",
                depends_on=[("main", "SUCCESS")],
                mounts=mounts,
                log_prefix="cli",
            ),
        ],
        volumes=["work"],
    )
    job = helpers.wait_for_status(batch, helpers.submit(batch, ec2_queue, definition["jobDefinitionArn"]), timeout=60)
    results = helpers.container_results(job)
    assert job["status"] == "SUCCEEDED", (job["statusReason"], results)
    assert results["outputs"]["exitCode"] == 0
    body = s3.get_object(Bucket=bucket, Key="run/1/result.txt")["Body"].read()
    assert body == b"produced\n"
    upload_log = "\n".join(helpers.log_messages(logs, results["outputs"]["logStreamName"]))
    assert f"s3://{bucket}/run/1/result.txt" in upload_log


def test_container_ignoring_sigterm_is_killed_after_the_grace_period(batch: Any, ec2_queue: str) -> None:
    definition = helpers.register_ecs(
        batch,
        [
            container("main", ["sh", "-c", "sleep 0.5; exit 0"]),
            # An ignored signal stays ignored across exec: sleep ignores SIGTERM too.
            container("stubborn", ["sh", "-c", "trap '' TERM; sleep 30"], essential=False),
        ],
    )
    job, _ = helpers.watch_job(batch, helpers.submit(batch, ec2_queue, definition["jobDefinitionArn"]))
    assert job["status"] == "SUCCEEDED", "only essential containers decide the outcome"
    results = helpers.container_results(job)
    assert results["main"]["exitCode"] == 0
    assert results["stubborn"]["exitCode"] == 137, "SIGKILL after the 2 s grace period"
    assert job["stoppedAt"] - job["startedAt"] >= 2000


def test_terminated_job_is_not_retried(batch: Any, ec2_queue: str) -> None:
    definition = helpers.register_ecs(batch, [container("main", ["sleep", "60"])])
    job_id = helpers.submit(batch, ec2_queue, definition["jobDefinitionArn"], retryStrategy={"attempts": 3})
    helpers.wait_for_status(batch, job_id, ["RUNNING"])
    batch.terminate_job(jobId=job_id, reason="stop")
    helpers.wait_for_status(batch, job_id, helpers.TERMINAL, timeout=10)
    helpers.caught_up(batch)  # a retry would have moved it back to RUNNABLE by now
    job = helpers.describe(batch, job_id)
    assert (job["status"], job["statusReason"], len(job["attempts"])) == ("FAILED", "stop", 1)


def test_terminate_a_finished_job_changes_nothing(batch: Any, ec2_queue: str) -> None:
    definition = helpers.register_container(batch, ["true"])
    job_id = helpers.submit(batch, ec2_queue, definition["jobDefinitionArn"])
    before = helpers.wait_for_status(batch, job_id)
    batch.terminate_job(jobId=job_id, reason="too late")
    after = helpers.describe(batch, job_id)
    assert after["status"] == before["status"] == "SUCCEEDED"
    assert after["statusReason"] == before["statusReason"]
    assert after["isTerminated"] is False


def test_container_environment_and_working_directory(batch: Any, logs: Any, ec2_queue: str) -> None:
    script = (
        'echo "job=$AWS_BATCH_JOB_ID queue=$AWS_BATCH_JQ_NAME attempt=$AWS_BATCH_JOB_ATTEMPT region=$AWS_REGION"; '
        'echo "endpoint=${AWS_ENDPOINT_URL:+set} files=$(ls -A | wc -l)"; echo "to stderr" >&2'
    )
    definition = helpers.register_container(batch, ["sh", "-c", script])
    job_id = helpers.submit(batch, ec2_queue, definition["jobDefinitionArn"])
    job = helpers.wait_for_status(batch, job_id)
    assert job["status"] == "SUCCEEDED"
    queue_name = ec2_queue.rsplit("/", 1)[-1]
    lines = helpers.log_messages(logs, job["container"]["logStreamName"])
    assert lines == [
        f"job={job_id} queue={queue_name} attempt=1 region=us-east-1",
        "endpoint=set files=0",
        "to stderr",
    ]


AUTOMATED = ("AWS_BATCH_JOB_ID", "AWS_BATCH_JOB_ATTEMPT", "AWS_BATCH_JQ_NAME", "AWS_BATCH_CE_NAME")
ECHO_AUTOMATED = " ".join(
    f"{name}=${name}" for name in (*AUTOMATED, "AWS_BATCH_JOB_ARRAY_INDEX", "AWS_BATCH_JOB_ARRAY_SIZE")
)


def test_automated_variables_are_set_in_the_container_not_in_the_described_environment(
    batch: Any, logs: Any, ec2_queue: str
) -> None:
    """User guide, "AWS Batch job environment variables": the AWS_BATCH_ variables are "available in job containers"
    (a child of an array job also gets its index and the array's size). DescribeJobs reports the environment the
    job was given: its example shows a job run without variables with ``"environment": []``, and ContainerDetail
    says names starting with AWS_BATCH are reserved for the variables Batch sets."""
    queue = batch.describe_job_queues(jobQueues=[ec2_queue])["jobQueues"][0]
    ce_arn = queue["computeEnvironmentOrder"][0]["computeEnvironment"]
    ce_name = batch.describe_compute_environments(computeEnvironments=[ce_arn])["computeEnvironments"][0][
        "computeEnvironmentName"
    ]
    definition = helpers.register_container(batch, ["sh", "-c", f'echo "{ECHO_AUTOMATED}"'])["jobDefinitionArn"]
    job_id = helpers.submit(batch, ec2_queue, definition)
    array_id = helpers.submit(batch, ec2_queue, definition, arrayProperties={"size": 2})
    job = helpers.wait_for_status(batch, job_id)
    assert job["status"] == "SUCCEEDED"
    assert job["container"]["environment"] == []
    assert helpers.log_messages(logs, job["container"]["logStreamName"]) == [
        f"AWS_BATCH_JOB_ID={job_id} AWS_BATCH_JOB_ATTEMPT=1 AWS_BATCH_JQ_NAME={queue['jobQueueName']} "
        f"AWS_BATCH_CE_NAME={ce_name} AWS_BATCH_JOB_ARRAY_INDEX= AWS_BATCH_JOB_ARRAY_SIZE="
    ]
    assert helpers.wait_for_status(batch, array_id)["status"] == "SUCCEEDED"
    child = helpers.describe(batch, f"{array_id}:1")
    assert child["container"]["environment"] == []
    assert helpers.log_messages(logs, child["container"]["logStreamName"]) == [
        f"AWS_BATCH_JOB_ID={array_id}:1 AWS_BATCH_JOB_ATTEMPT=1 AWS_BATCH_JQ_NAME={queue['jobQueueName']} "
        f"AWS_BATCH_CE_NAME={ce_name} AWS_BATCH_JOB_ARRAY_INDEX=1 AWS_BATCH_JOB_ARRAY_SIZE=2"
    ]
    # With variables of its own, the description lists those only.
    own = helpers.submit(
        batch, ec2_queue, definition, containerOverrides={"environment": [{"name": "MINE", "value": "1"}]}
    )
    assert helpers.wait_for_status(batch, own)["container"]["environment"] == [{"name": "MINE", "value": "1"}]


def test_command_that_cannot_start_fails_the_job(batch: Any, ec2_queue: str) -> None:
    definition = helpers.register_container(batch, ["/no/such/program", "arg"])
    job = helpers.wait_for_status(batch, helpers.submit(batch, ec2_queue, definition["jobDefinitionArn"]))
    assert job["status"] == "FAILED"
    assert "CannotStartContainerError" in job["statusReason"]


def test_many_jobs_run_at_once(batch: Any, ec2_queue: str, tmp_path: Path) -> None:
    """30 jobs of 1 vCPU on a 16-vCPU environment: 16 run together (each waits for the test's file, which
    the emulator's processes on this machine can see), the others wait RUNNABLE for room."""
    release = tmp_path / "release"
    definition = helpers.register_container(
        batch, ["sh", "-c", f"while [ ! -e {release} ]; do sleep 0.1; done; exit $CODE"]
    )["jobDefinitionArn"]
    ids = {
        helpers.submit(
            batch, ec2_queue, definition, containerOverrides={"environment": [{"name": "CODE", "value": str(i % 3)}]}
        ): i
        for i in range(30)
    }

    def statuses() -> list[str]:
        return [job["status"] for job in batch.describe_jobs(jobs=list(ids))["jobs"]]

    helpers.wait_until(lambda: statuses().count("RUNNING") == 16, timeout=60)
    now = statuses()
    assert now.count("RUNNING") == 16 and set(now) <= {"SUBMITTED", "PENDING", "RUNNABLE", "RUNNING"}, now
    release.touch()
    for job_id in ids:
        helpers.wait_for_status(batch, job_id, timeout=60, interval=0.05)
    jobs = batch.describe_jobs(jobs=list(ids))["jobs"]
    assert len(jobs) == 30
    for job in jobs:
        code = ids[job["jobId"]] % 3
        assert job["container"]["exitCode"] == code
        assert job["status"] == ("SUCCEEDED" if code == 0 else "FAILED")
