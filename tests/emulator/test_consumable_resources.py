"""Consumable resources, from the API reference (CreateConsumableResource: a unique name, totalQuantity
"non-negative", resourceType REPLENISHABLE (default) or NON_REPLENISHABLE; UpdateConsumableResource SET, ADD or
REMOVE; ListConsumableResources' name filter, case-insensitive, "*" a prefix; ListJobsByConsumableResource) and
the user guide ("Resource-aware scheduling": a job "will wait in RUNNABLE state until all the required resources
become available"; they "are locked once the job moves to STARTING and are then unlocked when the job moves to
SUCCEEDED or FAILED"; "you can specify up to 5 resources for each job"; a quantity can be changed at SubmitJob)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.emulator import helpers
from tests.emulator.test_batch_validation import refused
from tests.emulator.test_capacity import LONG, settle_runnable, statuses

pytestmark = pytest.mark.timeout(120)


def create(batch: Any, total: int = 1, **params: Any) -> str:
    name = helpers.unique("licence")
    batch.create_consumable_resource(consumableResourceName=name, totalQuantity=total, **params)
    return name


def requiring(batch: Any, command: list[str], *needs: tuple[str, int]) -> str:
    """An EC2 container job definition of 1 vCPU requiring ``needs`` (resource, quantity)."""
    return str(batch.register_job_definition(
        jobDefinitionName=helpers.unique("needs"), type="container", platformCapabilities=["EC2"],
        containerProperties={"image": "busybox", "command": command, "resourceRequirements": helpers.resources("1",
                                                                                                             "512")},
        consumableResourceProperties={"consumableResourceList": [
            {"consumableResource": name, "quantity": quantity} for name, quantity in needs]},
    )["jobDefinitionArn"])


def described(batch: Any, name: str) -> dict[str, Any]:
    return dict(batch.describe_consumable_resource(consumableResource=name))


def test_a_created_resource_is_described_listed_updated_and_deleted(batch: Any) -> None:
    name = create(batch, 3)
    resource = described(batch, name)
    assert resource["consumableResourceArn"].endswith(f":consumable-resource/{name}")
    assert (resource["totalQuantity"], resource["inUseQuantity"], resource["availableQuantity"],
            resource["resourceType"]) == (3, 0, 3, "REPLENISHABLE")
    assert described(batch, resource["consumableResourceArn"])["consumableResourceName"] == name  # by ARN too
    listed = batch.list_consumable_resources(filters=[{"name": "CONSUMABLE_RESOURCE_NAME",
                                                       "values": [name[:-3].upper() + "*"]}])["consumableResources"]
    assert [r["consumableResourceName"] for r in listed] == [name]
    for operation, quantity, total in (("ADD", 2, 5), ("REMOVE", 4, 1), ("SET", 7, 7)):
        answer = batch.update_consumable_resource(consumableResource=name, operation=operation, quantity=quantity)
        assert answer["totalQuantity"] == total
    batch.delete_consumable_resource(consumableResource=name)
    assert "does not exist" in refused(batch.describe_consumable_resource, consumableResource=name)


def test_what_the_reference_refuses_is_refused(batch: Any) -> None:
    name = create(batch)
    assert "already exists" in refused(batch.create_consumable_resource, consumableResourceName=name)
    assert "totalQuantity" in refused(create, batch, -1)
    assert "resourceType" in refused(create, batch, 1, resourceType="RENEWABLE")
    assert "operation" in refused(batch.update_consumable_resource, consumableResource=name, operation="MULTIPLY",
                                  quantity=1)
    assert "quantity" in refused(batch.update_consumable_resource, consumableResource=name, operation="SET",
                                 quantity=-1)


def test_a_job_can_require_five_resources_not_six(batch: Any, ec2_queue: str) -> None:
    names = [create(batch) for _ in range(6)]
    five = requiring(batch, ["true"], *[(n, 1) for n in names[:5]])
    assert "at most 5" in refused(requiring, batch, ["true"], *[(n, 1) for n in names])
    override = {"consumableResourceList": [{"consumableResource": names[5], "quantity": 1}]}
    assert "at most 5" in refused(helpers.submit, batch, ec2_queue, five, consumableResourcePropertiesOverride=override)
    assert helpers.wait_for_status(batch, helpers.submit(batch, ec2_queue, five))["status"] == "SUCCEEDED"


def test_a_job_requiring_a_resource_that_does_not_exist_is_refused_at_submission(batch: Any, ec2_queue: str) -> None:
    name = create(batch)
    definition = requiring(batch, ["true"], (name, 1))
    batch.delete_consumable_resource(consumableResource=name)
    assert "does not exist" in refused(helpers.submit, batch, ec2_queue, definition)


def test_a_job_waits_runnable_while_its_resource_is_in_use_and_runs_once_it_is_released(
    batch: Any, ec2_queue: str
) -> None:
    name = create(batch, 1)
    long = requiring(batch, LONG, (name, 1))
    first = helpers.submit(batch, ec2_queue, long)
    helpers.wait_for_status(batch, first, ("RUNNING",))
    second = helpers.submit(batch, ec2_queue, long)
    settle_runnable(batch, [second])
    assert statuses(batch, [second]) == {second: "RUNNABLE"}  # vCPUs to spare, no licence
    resource = described(batch, name)
    assert (resource["inUseQuantity"], resource["availableQuantity"]) == (1, 0)
    jobs = batch.list_jobs_by_consumable_resource(consumableResource=name)["jobs"]
    assert {(j["jobArn"].rsplit("/", 1)[-1], j["jobStatus"], j["quantity"]) for j in jobs} == {
        (first, "RUNNING", 1), (second, "RUNNABLE", 1)}
    running = batch.list_jobs_by_consumable_resource(
        consumableResource=name, filters=[{"name": "JOB_STATUS", "values": ["RUNNING"]}])["jobs"]
    assert [j["jobName"] for j in running] == [helpers.describe(batch, first)["jobName"]]
    described_job = helpers.describe(batch, second)
    assert described_job["consumableResourceProperties"] == {
        "consumableResourceList": [{"consumableResource": name, "quantity": 1}]}
    batch.terminate_job(jobId=first, reason="release the licence")
    helpers.wait_for_status(batch, second, ("RUNNING",))
    batch.terminate_job(jobId=second, reason="done")


def test_an_override_quantity_waits_for_an_update_that_makes_room(batch: Any, ec2_queue: str) -> None:
    name = create(batch, 1)
    definition = requiring(batch, ["true"], (name, 1))
    override = {"consumableResourceList": [{"consumableResource": name, "quantity": 2}]}
    job_id = helpers.submit(batch, ec2_queue, definition, consumableResourcePropertiesOverride=override)
    settle_runnable(batch, [job_id])
    assert statuses(batch, [job_id]) == {job_id: "RUNNABLE"}
    batch.update_consumable_resource(consumableResource=name, operation="ADD", quantity=1)
    assert helpers.wait_for_status(batch, job_id)["status"] == "SUCCEEDED"


def test_a_non_replenishable_resource_is_not_given_back_when_the_job_ends(batch: Any, ec2_queue: str) -> None:
    name = create(batch, 1, resourceType="NON_REPLENISHABLE")
    definition = requiring(batch, ["true"], (name, 1))
    assert helpers.wait_for_status(batch, helpers.submit(batch, ec2_queue, definition))["status"] == "SUCCEEDED"
    assert described(batch, name)["availableQuantity"] == 0
    later = helpers.submit(batch, ec2_queue, definition)
    settle_runnable(batch, [later])
    assert statuses(batch, [later]) == {later: "RUNNABLE"}
