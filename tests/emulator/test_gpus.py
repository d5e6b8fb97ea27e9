"""GPUs on EC2, as the API reference and the user guide describe them: ``ResourceRequirement`` of type GPU is "the
number of physical GPUs to reserve for the container", and "the number of GPUs reserved for all containers in a
job doesn't exceed the number of available GPUs on the compute resource that the job is launched on"; a job whose
requirement no instance type of its queue's compute environments meets stays RUNNABLE with
``MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT`` ("Jobs stuck in a RUNNABLE status"). A g4dn.xlarge has 4 vCPUs and
one GPU, a g4dn.12xlarge 48 vCPUs and four (EC2 DescribeInstanceTypes)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.emulator import helpers
from tests.emulator.test_batch_validation import refused
from tests.emulator.test_capacity import LONG, settle_runnable, statuses

pytestmark = pytest.mark.timeout(120)


def gpu_queue(batch: Any, instance_types: list[str], max_vcpus: int) -> str:
    ce = batch.create_compute_environment(
        computeEnvironmentName=helpers.unique("gpu"), type="MANAGED",
        computeResources={"type": "EC2", "minvCpus": 0, "maxvCpus": max_vcpus, "instanceTypes": instance_types,
                          "instanceRole": "ecsInstanceRole", "subnets": ["subnet-0123456789abcdef0"],
                          "securityGroupIds": ["sg-0123456789abcdef0"]})["computeEnvironmentArn"]
    helpers.wait_until(lambda: batch.describe_compute_environments(computeEnvironments=[ce])
                       ["computeEnvironments"][0]["status"] == "VALID")
    return helpers.create_queue(batch, ce)


def gpu_definition(batch: Any, command: list[str], gpus: str = "1") -> str:
    return str(batch.register_job_definition(
        jobDefinitionName=helpers.unique("gpu"), type="container", platformCapabilities=["EC2"],
        containerProperties={"image": "busybox", "command": command,
                             "resourceRequirements": [*helpers.resources("1", "512"), {"type": "GPU", "value": gpus}]},
    )["jobDefinitionArn"])


def runnable_reason(batch: Any, job_id: str) -> str:
    return str(helpers.wait_until(
        lambda: (lambda j: j["status"] == "RUNNABLE" and j.get("statusReason"))(helpers.describe(batch, job_id))))


@pytest.mark.parametrize("value", ["one", "1.5", "-1"])
def test_a_gpu_requirement_that_is_not_a_number_of_gpus_is_refused(batch: Any, value: str) -> None:
    message = refused(gpu_definition, batch, ["true"], value)
    assert "GPU" in message


def test_a_gpu_job_on_optimal_instance_types_stays_runnable_with_the_misconfiguration(batch: Any) -> None:
    queue = helpers.create_queue(batch, helpers.create_compute_environment(batch, max_vcpus=16))
    job_id = helpers.submit(batch, queue, gpu_definition(batch, ["true"]))
    reason = runnable_reason(batch, job_id)
    assert reason.startswith("MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - ") and "1 GPUs" in reason


def test_more_gpus_than_one_instance_has_is_a_misconfiguration_even_with_room_for_them_all(batch: Any) -> None:
    queue = gpu_queue(batch, ["g4dn.xlarge"], max_vcpus=64)  # 16 instances of one GPU each
    job_id = helpers.submit(batch, queue, gpu_definition(batch, ["true"], "2"))
    assert runnable_reason(batch, job_id).startswith("MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - ")


def test_an_instance_family_gives_the_gpus_of_its_largest_type_within_max_vcpus(batch: Any) -> None:
    queue = gpu_queue(batch, ["g4dn"], max_vcpus=48)  # up to g4dn.12xlarge: 48 vCPUs, 4 GPUs
    job_id = helpers.submit(batch, queue, gpu_definition(batch, ["true"], "4"))
    assert helpers.wait_for_status(batch, job_id, ("SUCCEEDED", "FAILED"))["status"] == "SUCCEEDED"
    # g4dn.metal has 8 GPUs but 96 vCPUs, more than maxvCpus: it is never launched
    too_many = helpers.submit(batch, queue, gpu_definition(batch, ["true"], "5"))
    assert runnable_reason(batch, too_many).startswith("MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - ")


def test_gpu_jobs_beyond_the_environments_gpus_wait_without_a_reason_until_one_ends(batch: Any) -> None:
    queue = gpu_queue(batch, ["g4dn.xlarge"], max_vcpus=8)  # two instances: two GPUs, eight vCPUs
    long = gpu_definition(batch, LONG)
    running = [helpers.submit(batch, queue, long) for _ in range(2)]
    for job_id in running:
        helpers.wait_for_status(batch, job_id, ("RUNNING",))
    waiting = helpers.submit(batch, queue, long)  # vCPUs to spare (2 of 8 held), no GPU
    settle_runnable(batch, [waiting])
    assert statuses(batch, [waiting]) == {waiting: "RUNNABLE"}
    assert not helpers.describe(batch, waiting).get("statusReason")  # its turn has not come: not a blocked queue
    batch.terminate_job(jobId=running[0], reason="free a GPU")
    helpers.wait_for_status(batch, waiting, ("RUNNING",))
    assert statuses(batch, [running[1]]) == {running[1]: "RUNNING"}
    for job_id in (running[1], waiting):
        batch.terminate_job(jobId=job_id, reason="done")


def test_a_gpu_override_counts_and_the_job_sees_its_gpus(batch: Any) -> None:
    queue = gpu_queue(batch, ["g4dn.12xlarge"], max_vcpus=48)
    definition = gpu_definition(batch, ["sh", "-c", 'test "$EMULATOR_GPUS" = 3'])
    job_id = helpers.submit(batch, queue, definition,
                            containerOverrides={"resourceRequirements": [{"type": "GPU", "value": "3"}]})
    assert helpers.wait_for_status(batch, job_id, ("SUCCEEDED", "FAILED"))["status"] == "SUCCEEDED"
    too_many = helpers.submit(batch, queue, definition,
                              containerOverrides={"resourceRequirements": [{"type": "GPU", "value": "5"}]})
    assert runnable_reason(batch, too_many).startswith("MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - ")
