"""What each platform refuses, from the API reference's words on the fields of a job definition and of
SubmitJob's overrides (ResourceRequirement, ContainerProperties, ContainerOverrides)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.emulator import helpers
from tests.emulator.helpers import container, resources
from tests.emulator.test_batch_validation import refused

GPU = {"type": "GPU", "value": "1"}


def register_fargate_container(batch: Any, **properties: Any) -> Any:
    spec = {
        "image": "busybox",
        "command": ["true"],
        "executionRoleArn": helpers.EXECUTION_ROLE,
        "networkConfiguration": helpers.FARGATE_NETWORK,
        **properties,
    }
    return batch.register_job_definition(
        jobDefinitionName=helpers.unique("fargate"), type="container", platformCapabilities=["FARGATE"],
        containerProperties=spec,
    )


def register_ec2_container(batch: Any, **properties: Any) -> Any:
    spec = {"image": "busybox", "command": ["true"], **properties}
    return batch.register_job_definition(
        jobDefinitionName=helpers.unique("ec2"), type="container", platformCapabilities=["EC2"],
        containerProperties=spec,
    )


# "GPUs aren't available for jobs that are running on Fargate resources." (ResourceRequirement.value)


def test_gpu_on_a_fargate_container_definition_is_refused(batch: Any) -> None:
    message = refused(register_fargate_container, batch, resourceRequirements=[*resources("1", "2048"), GPU])
    assert "GPU" in message and "Fargate" in message


def test_gpu_on_a_fargate_ecs_definition_is_refused(batch: Any) -> None:
    main = container("main", ["true"], resourceRequirements=[*resources("1", "2048"), GPU])
    message = refused(helpers.register_ecs, batch, [main], fargate=True)
    assert "GPU" in message


def test_gpu_in_an_override_of_a_fargate_job_is_refused(batch: Any, fargate_queue: str) -> None:
    definition = register_fargate_container(batch, resourceRequirements=resources("1", "2048"))["jobDefinitionArn"]
    message = refused(
        helpers.submit, batch, fargate_queue, definition, containerOverrides={"resourceRequirements": [GPU]}
    )
    assert "GPU" in message


def test_gpu_on_ec2_is_accepted(batch: Any) -> None:
    assert register_ec2_container(batch, resourceRequirements=[*resources("1", "512"), GPU])["revision"] == 1


# "Jobs that are running on Amazon EC2 resources must not specify this parameter."
# (ContainerProperties.fargatePlatformConfiguration, ContainerProperties.networkConfiguration,
# EcsTaskProperties.networkConfiguration)


@pytest.mark.parametrize(
    "field",
    [
        {"fargatePlatformConfiguration": {"platformVersion": "LATEST"}},
        {"networkConfiguration": {"assignPublicIp": "ENABLED"}},
    ],
)
def test_fargate_only_fields_on_an_ec2_container_definition_are_refused(batch: Any, field: dict[str, Any]) -> None:
    message = refused(register_ec2_container, batch, resourceRequirements=resources("1", "512"), **field)
    assert next(iter(field)) in message and "EC2" in message


def test_network_configuration_on_an_ec2_ecs_definition_is_refused(batch: Any) -> None:
    main = container("main", ["true"], resourceRequirements=resources("1", "512"))
    properties = helpers.ecs_properties([main], networkConfiguration={"assignPublicIp": "ENABLED"})
    message = refused(
        batch.register_job_definition, jobDefinitionName="ec2-network", type="container",
        platformCapabilities=["EC2"], ecsProperties=properties,
    )
    assert "networkConfiguration" in message


# "The instance type to use for a multi-node parallel job. This parameter isn't applicable to single-node
# container jobs or jobs that run on Fargate resources, and shouldn't be provided." (ContainerOverrides)


@pytest.mark.parametrize("platform", ["EC2", "FARGATE"])
def test_container_overrides_instance_type_is_refused(batch: Any, platform: str) -> None:
    if platform == "FARGATE":
        queue = helpers.create_queue_for(batch, "FARGATE")
        definition = register_fargate_container(batch, resourceRequirements=resources("1", "2048"))
    else:
        queue = helpers.create_queue_for(batch, "EC2")
        definition = register_ec2_container(batch, resourceRequirements=resources("1", "512"))
    message = refused(
        helpers.submit, batch, queue, definition["jobDefinitionArn"], containerOverrides={"instanceType": "m5.large"}
    )
    assert "instanceType" in message


# ContainerProperties.vcpus / memory: "It's not supported for jobs running on Fargate resources."


@pytest.mark.parametrize("legacy", [{"vcpus": 1}, {"memory": 2048}])
def test_legacy_vcpus_and_memory_on_a_fargate_definition_are_refused_at_registration(
    batch: Any, legacy: dict[str, Any]
) -> None:
    message = refused(register_fargate_container, batch, resourceRequirements=resources("1", "2048"), **legacy)
    assert next(iter(legacy)) in message and "resourceRequirements" in message


@pytest.mark.parametrize("legacy", [{"vcpus": 1}, {"memory": 2048}])
def test_legacy_vcpus_and_memory_in_a_fargate_override_are_refused(
    batch: Any, fargate_queue: str, legacy: dict[str, Any]
) -> None:
    definition = register_fargate_container(batch, resourceRequirements=resources("1", "2048"))["jobDefinitionArn"]
    message = refused(helpers.submit, batch, fargate_queue, definition, containerOverrides=legacy)
    assert next(iter(legacy)) in message


# VCPU: "This is required but can be specified in several places"; MEMORY: "You must specify at least 4 MiB
# of memory for a job." (ResourceRequirement.value, ContainerProperties.memory)


@pytest.mark.parametrize(
    ("properties", "missing"),
    [({}, "VCPU"), ({"resourceRequirements": [{"type": "MEMORY", "value": "512"}]}, "VCPU"),
     ({"resourceRequirements": [{"type": "VCPU", "value": "1"}]}, "MEMORY")],
)
def test_a_job_without_vcpu_or_memory_anywhere_is_refused(
    batch: Any, ec2_queue: str, properties: dict[str, Any], missing: str
) -> None:
    definition = register_ec2_container(batch, **properties)["jobDefinitionArn"]  # overrides may still give them
    message = refused(helpers.submit, batch, ec2_queue, definition)
    assert missing in message


def test_vcpu_and_memory_may_come_from_the_overrides_or_the_legacy_fields(batch: Any, ec2_queue: str) -> None:
    definition = register_ec2_container(batch, vcpus=1)["jobDefinitionArn"]
    job = helpers.submit(batch, ec2_queue, definition, containerOverrides={"resourceRequirements": [
        {"type": "MEMORY", "value": "256"}]})
    assert helpers.wait_for_status(batch, job)["status"] == "SUCCEEDED"


def test_an_ecs_job_without_memory_in_any_container_is_refused(batch: Any, ec2_queue: str) -> None:
    main = container("main", ["true"], resourceRequirements=[{"type": "VCPU", "value": "1"}])
    definition = helpers.register_ecs(batch, [main])["jobDefinitionArn"]
    message = refused(helpers.submit, batch, ec2_queue, definition)
    assert "MEMORY" in message


# DescribeJobs: an attempt's container (AttemptContainerDetail) has containerInstanceArn ("The Amazon Resource
# Name (ARN) of the Amazon ECS container instance that hosts the job attempt") and networkInterfaces ("The
# network interfaces that are associated with the job attempt").


def test_an_ec2_attempt_names_its_container_instance(batch: Any, ec2_queue: str) -> None:
    definition = register_ec2_container(batch, resourceRequirements=resources("1", "512"))["jobDefinitionArn"]
    job = helpers.wait_for_status(batch, helpers.submit(batch, ec2_queue, definition))
    container_instance = job["attempts"][0]["container"]["containerInstanceArn"]
    assert container_instance.startswith("arn:aws:ecs:us-east-1:123456789012:container-instance/")
    assert "networkInterfaces" not in job["attempts"][0]["container"]


def test_a_fargate_attempt_has_its_network_interface(batch: Any, fargate_queue: str) -> None:
    definition = register_fargate_container(batch, resourceRequirements=resources("1", "2048"))["jobDefinitionArn"]
    job = helpers.wait_for_status(batch, helpers.submit(batch, fargate_queue, definition))
    interfaces = job["attempts"][0]["container"]["networkInterfaces"]
    assert len(interfaces) == 1 and interfaces[0]["attachmentId"] and interfaces[0]["privateIpv4Address"]
    assert "containerInstanceArn" not in job["attempts"][0]["container"]
    main = container("main", ["true"], resourceRequirements=resources("1", "2048"))
    ecs = helpers.register_ecs(batch, [main], fargate=True)["jobDefinitionArn"]
    task = helpers.wait_for_status(batch, helpers.submit(batch, fargate_queue, ecs))["attempts"][0]["taskProperties"]
    assert task[0]["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]
