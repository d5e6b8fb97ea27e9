"""Array jobs as the AWS Batch user guide ("Array jobs") and API reference (SubmitJob arrayProperties,
ArrayPropertiesDetail, ListJobs arrayJobId, TerminateJob, CancelJob) describe them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.emulator import helpers
from tests.emulator.helpers import container
from tests.emulator.test_batch_validation import refused

pytestmark = pytest.mark.timeout(180)

STATUSES = helpers.ALL_STATUSES
ECHO_INDEX = 'echo "index=$AWS_BATCH_JOB_ARRAY_INDEX size=$AWS_BATCH_JOB_ARRAY_SIZE id=$AWS_BATCH_JOB_ID"'


def _ecs_definition(batch: Any, script: str) -> str:
    arn: str = helpers.register_ecs(batch, [container("main", ["sh", "-c", script], log_prefix="array")])[
        "jobDefinitionArn"
    ]
    return arn


def _summary(**counts: int) -> dict[str, int]:
    return {status: counts.get(status, 0) for status in STATUSES}


def _children(batch: Any, parent: str, size: int) -> dict[int, dict[str, Any]]:
    jobs = batch.describe_jobs(jobs=[f"{parent}:{i}" for i in range(size)])["jobs"]
    return {job["arrayProperties"]["index"]: job for job in jobs}


def test_children_run_with_their_index_and_the_parent_succeeds_when_all_do(
    batch: Any, logs: Any, ec2_queue: str
) -> None:
    definition = _ecs_definition(batch, ECHO_INDEX)
    answer = batch.submit_job(
        jobName="sweep", jobQueue=ec2_queue, jobDefinition=definition, arrayProperties={"size": 3}
    )
    parent_id = answer["jobId"]
    assert ":" not in parent_id
    parent = helpers.wait_for_status(batch, parent_id)

    assert parent["status"] == "SUCCEEDED"
    assert parent["arrayProperties"]["size"] == 3
    assert parent["arrayProperties"]["statusSummary"] == _summary(SUCCEEDED=3)
    assert "index" not in parent["arrayProperties"]
    assert "attempts" not in parent or parent["attempts"] == []
    children = _children(batch, parent_id, 3)
    assert sorted(children) == [0, 1, 2]
    for index, child in children.items():
        assert child["jobId"] == f"{parent_id}:{index}"
        assert child["jobArn"].endswith(f"job/{parent_id}:{index}")
        assert child["jobName"] == "sweep"
        assert child["status"] == "SUCCEEDED"
        assert child["arrayProperties"] == {"index": index}
        stream = helpers.container_results(child)["main"]["logStreamName"]
        assert helpers.log_messages(logs, stream) == [f"index={index} size=3 id={parent_id}:{index}"]


def test_container_type_children_get_their_index_too(batch: Any, logs: Any, ec2_queue: str) -> None:
    definition = helpers.register_container(batch, ["sh", "-c", ECHO_INDEX])
    parent_id = helpers.submit(batch, ec2_queue, definition["jobDefinitionArn"], arrayProperties={"size": 2})
    assert helpers.wait_for_status(batch, parent_id)["status"] == "SUCCEEDED"
    for index, child in _children(batch, parent_id, 2).items():
        stream = child["container"]["logStreamName"]
        assert helpers.log_messages(logs, stream) == [f"index={index} size=2 id={parent_id}:{index}"]


def test_parent_is_pending_while_children_run_and_listjobs_by_array_id(batch: Any, ec2_queue: str) -> None:
    definition = _ecs_definition(batch, 'if [ "$AWS_BATCH_JOB_ARRAY_INDEX" = 0 ]; then exit 0; fi; sleep 60')
    parent_id = helpers.submit(batch, ec2_queue, definition, name="listed", arrayProperties={"size": 5})
    first = helpers.wait_for_status(batch, f"{parent_id}:0")
    assert first["status"] == "SUCCEEDED"
    helpers.wait_until(
        lambda: len(batch.list_jobs(arrayJobId=parent_id, jobStatus="RUNNING")["jobSummaryList"]) == 4
    )
    parent = helpers.describe(batch, parent_id)
    assert parent["status"] == "PENDING"
    assert parent["arrayProperties"]["statusSummary"] == _summary(SUCCEEDED=1, RUNNING=4)
    assert parent["arrayProperties"]["statusSummaryLastUpdatedAt"] >= parent["createdAt"]

    running = batch.list_jobs(arrayJobId=parent_id)["jobSummaryList"]  # RUNNING when no status is given
    assert sorted(s["arrayProperties"]["index"] for s in running) == [1, 2, 3, 4]
    assert {s["jobId"] for s in running} == {f"{parent_id}:{i}" for i in (1, 2, 3, 4)}
    done = batch.list_jobs(arrayJobId=parent_id, jobStatus="SUCCEEDED")["jobSummaryList"]
    assert [s["jobId"] for s in done] == [f"{parent_id}:0"]
    pages, token = [], None
    while True:
        page = batch.list_jobs(
            arrayJobId=parent_id, jobStatus="RUNNING", maxResults=3, **({"nextToken": token} if token else {})
        )
        pages.append([s["jobId"] for s in page["jobSummaryList"]])
        token = page.get("nextToken")
        if not token:
            break
    assert [len(p) for p in pages] == [3, 1]
    assert {i for p in pages for i in p} == {f"{parent_id}:{i}" for i in (1, 2, 3, 4)}

    # The queue lists the parent (PENDING), never the children.
    queue_pending = batch.list_jobs(jobQueue=ec2_queue, jobStatus="PENDING")["jobSummaryList"]
    assert [s["jobId"] for s in queue_pending] == [parent_id]
    assert queue_pending[0]["arrayProperties"]["size"] == 5
    assert batch.list_jobs(jobQueue=ec2_queue, jobStatus="RUNNING")["jobSummaryList"] == []
    by_name = batch.list_jobs(jobQueue=ec2_queue, filters=[{"name": "JOB_NAME", "values": ["listed"]}])
    assert [s["jobId"] for s in by_name["jobSummaryList"]] == [parent_id]

    batch.terminate_job(jobId=parent_id, reason="enough")
    parent = helpers.wait_for_status(batch, parent_id)
    assert parent["status"] == "FAILED"
    assert parent["isTerminated"] is True
    assert parent["arrayProperties"]["statusSummary"] == _summary(SUCCEEDED=1, FAILED=4)
    for index, child in _children(batch, parent_id, 5).items():
        assert child["status"] == ("SUCCEEDED" if index == 0 else "FAILED")
        if index:
            assert child["statusReason"] == "enough"


def test_parent_fails_once_every_child_has_ended_when_one_fails(
    batch: Any, ec2_queue: str, tmp_path: Path
) -> None:
    release = tmp_path / "release"  # the other children run until the test lets them end
    definition = _ecs_definition(
        batch, 'if [ "$AWS_BATCH_JOB_ARRAY_INDEX" = 1 ]; then exit 7; fi; ' + helpers.until_released(release)
    )
    parent_id = helpers.submit(batch, ec2_queue, definition, arrayProperties={"size": 3})
    failed = helpers.wait_for_status(batch, f"{parent_id}:1")
    assert failed["status"] == "FAILED"
    assert helpers.describe(batch, parent_id)["status"] == "PENDING"  # the others still run
    release.touch()
    parent = helpers.wait_for_status(batch, parent_id)
    assert parent["status"] == "FAILED"
    assert parent["arrayProperties"]["statusSummary"] == _summary(SUCCEEDED=2, FAILED=1)
    assert parent["stoppedAt"] >= max(c["stoppedAt"] for c in _children(batch, parent_id, 3).values())


def test_sequential_children_run_one_after_another_and_stop_at_the_first_failure(
    batch: Any, ec2_queue: str
) -> None:
    definition = _ecs_definition(batch, 'sleep 0.3; [ "$AWS_BATCH_JOB_ARRAY_INDEX" != 2 ]')
    parent_id = helpers.submit(
        batch, ec2_queue, definition, arrayProperties={"size": 4}, dependsOn=[{"type": "SEQUENTIAL"}]
    )
    parent = helpers.wait_for_status(batch, parent_id, timeout=60)
    assert parent["status"] == "FAILED"
    assert parent["dependsOn"] == [{"type": "SEQUENTIAL"}]
    children = _children(batch, parent_id, 4)
    assert [children[i]["status"] for i in range(4)] == ["SUCCEEDED", "SUCCEEDED", "FAILED", "FAILED"]
    assert children[1]["startedAt"] >= children[0]["stoppedAt"]
    assert children[2]["startedAt"] >= children[1]["stoppedAt"]
    assert children[3]["statusReason"] == "Dependent Job failed"
    assert "startedAt" not in children[3]
    assert children[1]["dependsOn"] == [{"jobId": f"{parent_id}:0", "type": "SEQUENTIAL"}]


def test_n_to_n_child_waits_for_the_same_index_of_the_other_array(batch: Any, ec2_queue: str) -> None:
    slow_first = _ecs_definition(batch, 'sleep $((2 - AWS_BATCH_JOB_ARRAY_INDEX * 2))')
    quick = _ecs_definition(batch, "true")
    first = helpers.submit(batch, ec2_queue, slow_first, arrayProperties={"size": 2})
    second = helpers.submit(
        batch, ec2_queue, quick, arrayProperties={"size": 2}, dependsOn=[{"jobId": first, "type": "N_TO_N"}]
    )
    assert helpers.wait_for_status(batch, second)["status"] == "SUCCEEDED"
    a, b = _children(batch, first, 2), _children(batch, second, 2)
    for index in (0, 1):
        assert b[index]["startedAt"] >= a[index]["stoppedAt"]
        assert b[index]["dependsOn"] == [{"jobId": f"{first}:{index}", "type": "N_TO_N"}]
    # Child 1 of the second array did not wait for child 0 of the first.
    assert b[1]["stoppedAt"] < a[0]["stoppedAt"]


def test_cancel_parent_cancels_the_children_waiting_for_a_dependency(batch: Any, ec2_queue: str) -> None:
    blocker = helpers.submit(batch, ec2_queue, _ecs_definition(batch, "sleep 60"))
    parent_id = helpers.submit(
        batch, ec2_queue, _ecs_definition(batch, "true"), arrayProperties={"size": 3},
        dependsOn=[{"jobId": blocker}],
    )
    # Its children wait PENDING on the dependency; the parent stays SUBMITTED until one is RUNNABLE.
    helpers.wait_until(lambda: helpers.describe(batch, parent_id)["arrayProperties"]["statusSummary"]["PENDING"] == 3)
    assert helpers.describe(batch, parent_id)["status"] == "SUBMITTED"
    batch.cancel_job(jobId=parent_id, reason="not needed")
    parent = helpers.wait_for_status(batch, parent_id)
    assert parent["status"] == "FAILED"
    assert parent["isCancelled"] is True
    assert parent["statusReason"] == "not needed"
    assert all(c["status"] == "FAILED" for c in _children(batch, parent_id, 3).values())
    assert helpers.describe(batch, blocker)["status"] not in helpers.TERMINAL
    batch.terminate_job(jobId=blocker, reason="done")


def test_a_job_depending_on_an_array_waits_for_every_child(batch: Any, ec2_queue: str) -> None:
    array = helpers.submit(
        batch, ec2_queue, _ecs_definition(batch, 'sleep "$AWS_BATCH_JOB_ARRAY_INDEX"'), arrayProperties={"size": 3}
    )
    after = helpers.submit(batch, ec2_queue, _ecs_definition(batch, "true"), dependsOn=[{"jobId": array}])
    job = helpers.wait_for_status(batch, after)
    assert job["status"] == "SUCCEEDED"
    assert job["startedAt"] >= max(c["stoppedAt"] for c in _children(batch, array, 3).values())


@pytest.mark.parametrize("size", [0, 1, 10_001, -3])
def test_array_size_out_of_range_is_refused(batch: Any, ec2_queue: str, size: int) -> None:
    definition = _ecs_definition(batch, "true")
    message = refused(
        batch.submit_job, jobName="j", jobQueue=ec2_queue, jobDefinition=definition, arrayProperties={"size": size}
    )
    assert "arrayProperties.size" in message and "10000" in message


def test_array_of_two_is_the_smallest(batch: Any, ec2_queue: str) -> None:
    parent_id = helpers.submit(batch, ec2_queue, _ecs_definition(batch, "true"), arrayProperties={"size": 2})
    assert helpers.wait_for_status(batch, parent_id)["arrayProperties"]["statusSummary"] == _summary(SUCCEEDED=2)


def test_array_dependency_types_are_checked(batch: Any, ec2_queue: str) -> None:
    definition = _ecs_definition(batch, "true")
    single = helpers.submit(batch, ec2_queue, definition)
    array3 = helpers.submit(batch, ec2_queue, definition, arrayProperties={"size": 3})

    def submit(**params: Any) -> str:
        return refused(batch.submit_job, jobName="j", jobQueue=ec2_queue, jobDefinition=definition, **params)

    assert "jobId" in submit(arrayProperties={"size": 3}, dependsOn=[{"jobId": single, "type": "SEQUENTIAL"}])
    assert "same size" in submit(arrayProperties={"size": 2}, dependsOn=[{"jobId": array3, "type": "N_TO_N"}])
    assert "same size" in submit(arrayProperties={"size": 3}, dependsOn=[{"jobId": single, "type": "N_TO_N"}])


def test_a_typed_dependency_of_a_single_job_is_accepted_and_waits_for_the_whole_job(
    batch: Any, ec2_queue: str
) -> None:
    """The API reference's JobDependency takes an optional ``type`` on any job (SubmitJob's dependsOn: the types
    are *for* array jobs; nothing refuses them elsewhere). A single job has no children to pair or order, so
    ``N_TO_N`` waits for the whole job it names, like a standard dependency, and ``SEQUENTIAL`` orders nothing."""
    definition = _ecs_definition(batch, "true")
    array2 = helpers.submit(batch, ec2_queue, _ecs_definition(batch, "sleep 1"), arrayProperties={"size": 2})
    paired = helpers.submit(batch, ec2_queue, definition, dependsOn=[{"jobId": array2, "type": "N_TO_N"}])
    alone = helpers.submit(batch, ec2_queue, definition, dependsOn=[{"type": "SEQUENTIAL"}])
    assert helpers.wait_for_status(batch, alone)["status"] == "SUCCEEDED"
    assert helpers.describe(batch, alone)["dependsOn"] == [{"type": "SEQUENTIAL"}]
    job = helpers.wait_for_status(batch, paired)
    assert job["status"] == "SUCCEEDED"
    assert job["dependsOn"] == [{"jobId": array2, "type": "N_TO_N"}]
    assert job["startedAt"] >= helpers.describe(batch, array2)["stoppedAt"]


def test_listjobs_needs_exactly_one_scope_and_a_known_array(batch: Any, ec2_queue: str) -> None:
    single = helpers.submit(batch, ec2_queue, _ecs_definition(batch, "true"))
    assert "one of" in refused(batch.list_jobs)
    assert "one of" in refused(batch.list_jobs, jobQueue=ec2_queue, arrayJobId=single)
    assert "array job" in refused(batch.list_jobs, arrayJobId=single)
    assert "array job" in refused(batch.list_jobs, arrayJobId="no-such-job")
    assert "multi-node" in refused(batch.list_jobs, multiNodeJobId=single)


def test_terminate_a_running_array_ends_every_child_quickly(batch: Any, ec2_queue: str) -> None:
    parent_id = helpers.submit(batch, ec2_queue, _ecs_definition(batch, "sleep 60"), arrayProperties={"size": 4})
    helpers.wait_until(lambda: helpers.describe(batch, parent_id)["arrayProperties"]["statusSummary"]["RUNNING"] == 4)
    started = time.monotonic()
    batch.terminate_job(jobId=parent_id, reason="stop all")
    parent = helpers.wait_for_status(batch, parent_id, timeout=30)
    assert time.monotonic() - started < 20
    assert parent["status"] == "FAILED"
    assert parent["statusReason"] == "stop all"
    children = _children(batch, parent_id, 4).values()
    assert all(c["status"] == "FAILED" and c["isTerminated"] for c in children)


@pytest.mark.slow
def test_hundreds_of_operator_shaped_children_all_run(batch: Any, s3: Any, ec2_queue: str) -> None:
    """Inputs sidecar (AWS CLI image), main, outputs sidecar on a shared volume, in each of 300 children."""
    size, bucket = 300, helpers.unique("fanout")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="in/data.txt", Body=b"payload\n")
    cli, copy = "public.ecr.aws/aws-cli/aws-cli:latest", ["s3", "cp", "--recursive", "--only-show-errors"]
    mounts = [("work", "/work")]
    pick = "mkdir -p /work/out && cp /work/in/data.txt /work/out/$AWS_BATCH_JOB_ARRAY_INDEX"
    definition = helpers.register_ecs(batch, [
        container("inputs", [*copy, f"s3://{bucket}/in/", "/work/in/"], essential=False, image=cli, mounts=mounts),
        container("main", ["sh", "-c", pick], essential=False, depends_on=[("inputs", "SUCCESS")], mounts=mounts),
        container("outputs", [*copy, "/work/out/", f"s3://{bucket}/out/"], image=cli, mounts=mounts,
                  depends_on=[("main", "SUCCESS")]),
    ], volumes=["work"])["jobDefinitionArn"]
    parent_id = helpers.submit(batch, ec2_queue, definition, arrayProperties={"size": size})
    parent = helpers.wait_for_status(batch, parent_id, timeout=100, interval=0.5)
    assert parent["arrayProperties"]["statusSummary"] == _summary(SUCCEEDED=size)
    keys = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="out/")
            for o in page.get("Contents", [])}
    assert keys == {f"out/{i}" for i in range(size)}


@pytest.mark.slow
def test_an_array_of_10000_is_the_largest(batch: Any) -> None:
    """Held RUNNABLE on a disabled compute environment, so that nothing runs; then terminated."""
    queue = helpers.create_queue(batch, helpers.create_compute_environment(batch, state="DISABLED"))
    definition = _ecs_definition(batch, "true")
    parent_id = helpers.submit(batch, queue, definition, arrayProperties={"size": 10_000})
    summary = helpers.describe(batch, parent_id)["arrayProperties"]["statusSummary"]
    assert sum(summary.values()) == 10_000
    last = helpers.describe(batch, f"{parent_id}:9999")
    assert last["arrayProperties"] == {"index": 9999}
    assert batch.describe_jobs(jobs=[f"{parent_id}:10000"])["jobs"] == []
    batch.terminate_job(jobId=parent_id, reason="enough")
    parent = helpers.wait_for_status(batch, parent_id, timeout=60, interval=0.5)
    assert parent["arrayProperties"]["statusSummary"]["FAILED"] == 10_000
