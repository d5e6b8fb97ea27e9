"""Consumable resources (resource-aware scheduling): Create, Describe, List, Update and DeleteConsumableResource,
ListJobsByConsumableResource, and what a job asks of them (``consumableResourceProperties`` of its definition,
``consumableResourcePropertiesOverride`` of SubmitJob).

The user guide ("Resource-aware scheduling"): a job "runs only when the specified resource dependencies are
available", else it "will wait in RUNNABLE state until all the required resources become available"; "resources are
locked once the job moves to STARTING and are then unlocked when the job moves to SUCCEEDED or FAILED"; "you can
specify up to 5 resources for each job". Placing and releasing is ``capacity.py``'s; the store is here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from airflow_batch_runner.emulator.batch import validation as v
from airflow_batch_runner.emulator.batch.environments import Environments
from airflow_batch_runner.emulator.batch.jobs import Job
from airflow_batch_runner.emulator.batch.resources import ConsumableResource, name_of, tags_dict
from airflow_batch_runner.emulator.batch.validation import ClientException, paginate

MAX_PER_JOB = 5
RESOURCE_TYPES = ("REPLENISHABLE", "NON_REPLENISHABLE")
OPERATIONS = ("SET", "ADD", "REMOVE")


def _quantity(value: Any, field_name: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ClientException(f"{field_name} must be a whole number of at least {least}; got {value!r}")
    return value


def check_requirements(properties: Any, where: str) -> list[dict[str, Any]]:
    """A ``ConsumableResourceProperties``: each requirement names a resource and a quantity, at most 5 of them,
    each resource once."""
    if properties is None:
        return []
    requirements = properties.get("consumableResourceList") if isinstance(properties, Mapping) else None
    if not isinstance(requirements, list):
        raise ClientException(f"{where}.consumableResourceList must be a list")
    if len(requirements) > MAX_PER_JOB:
        raise ClientException(f"{where}.consumableResourceList: a job can require at most {MAX_PER_JOB} consumable "
                              f"resources; got {len(requirements)}")
    seen: set[str] = set()
    for index, requirement in enumerate(requirements):
        at = f"{where}.consumableResourceList[{index}]"
        ref = requirement.get("consumableResource") if isinstance(requirement, Mapping) else None
        if not isinstance(ref, str) or not ref:
            raise ClientException(f"{at}.consumableResource must name a consumable resource")
        _quantity(requirement.get("quantity"), f"{at}.quantity", 1)
        if name_of(ref) in seen:
            raise ClientException(f"{at}: consumable resource {ref} is required twice")
        seen.add(name_of(ref))
    return [dict(requirement) for requirement in requirements]


def merged(definition: Iterable[Mapping[str, Any]], override: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The definition's requirements with SubmitJob's override: an overridden resource takes its new quantity, a new
    one is added."""
    out = {name_of(r["consumableResource"]): dict(r) for r in definition}
    for requirement in override:
        out[name_of(requirement["consumableResource"])] = dict(requirement)
    return list(out.values())


class ConsumableResources(Environments):
    """One region's consumable resources, by name (the store is ``Environments.consumable_resources``)."""

    def _consumable(self, ref: str) -> ConsumableResource:
        resource = self.consumable_resources.get(name_of(ref))
        if resource is None:
            raise ClientException(f"Consumable resource {ref} does not exist")
        return resource

    def resolve_requirements(self, requirements: Iterable[Mapping[str, Any]]) -> dict[str, int]:
        """A job's requirements by resource name, each resource existing (at SubmitJob)."""
        return {self._consumable(str(r["consumableResource"])).name: int(r["quantity"]) for r in requirements}

    def create_consumable_resource(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.require(params, "consumableResourceName")
        name = params["consumableResourceName"]
        v.check_name(name, "consumableResourceName")
        v.check_tags(params.get("tags"))
        total = _quantity(params.get("totalQuantity", 0), "totalQuantity", 0)
        resource_type = params.get("resourceType", "REPLENISHABLE")
        if resource_type not in RESOURCE_TYPES:
            raise ClientException(f"resourceType must be one of {', '.join(RESOURCE_TYPES)}; got {resource_type!r}")
        with self.lock:
            if name in self.consumable_resources:
                raise ClientException(f"Object already exists: consumable resource {name}")
            resource = ConsumableResource(name, self._arn("consumable-resource", name), total, resource_type,
                                          tags_dict(params.get("tags")))
            self.consumable_resources[name] = resource
            self.tags_by_arn[resource.arn] = resource.tags
        return {"consumableResourceName": name, "consumableResourceArn": resource.arn}

    def describe_consumable_resource(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.require(params, "consumableResource")
        with self.lock:
            return self._consumable(params["consumableResource"]).describe()

    def list_consumable_resources(self, params: Mapping[str, Any]) -> dict[str, Any]:
        patterns: list[str] = []
        for entry in params.get("filters") or []:
            if entry.get("name") != "CONSUMABLE_RESOURCE_NAME":
                raise ClientException(f"filter name {entry.get('name')!r} is invalid; use CONSUMABLE_RESOURCE_NAME")
            patterns += [str(value).lower() for value in entry.get("values") or []]
        with self.lock:
            items = [r.summary() for r in self.consumable_resources.values()
                     if not patterns or any(_matches(r.name, p) for p in patterns)]
        return paginate(items, params, "consumableResources")

    def update_consumable_resource(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.require(params, "consumableResource")
        operation = params.get("operation", "SET")
        if operation not in OPERATIONS:
            raise ClientException(f"operation must be one of {', '.join(OPERATIONS)}; got {operation!r}")
        quantity = _quantity(params.get("quantity", 0), "quantity", 0)
        with self.lock:
            resource = self._consumable(params["consumableResource"])
            total = {"SET": quantity, "ADD": resource.total + quantity, "REMOVE": resource.total - quantity}[operation]
            if total < 0:
                raise ClientException(f"quantity {quantity} is more than the {resource.total} of consumable resource "
                                      f"{resource.name}")
            resource.total = total
        self._capacity_changed()
        return {"consumableResourceName": resource.name, "consumableResourceArn": resource.arn,
                "totalQuantity": resource.total}

    def delete_consumable_resource(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.require(params, "consumableResource")
        with self.lock:
            resource = self._consumable(params["consumableResource"])
            del self.consumable_resources[resource.name]
            self.tags_by_arn.pop(resource.arn, None)
        return {}

    def list_jobs_by_consumable_resource(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.require(params, "consumableResource")
        statuses: list[str] = []
        names: list[str] = []
        for entry in params.get("filters") or []:
            wanted = {"JOB_STATUS": statuses, "JOB_NAME": names}.get(str(entry.get("name")))
            if wanted is None:
                raise ClientException(f"filter name {entry.get('name')!r} is invalid; use JOB_STATUS or JOB_NAME")
            wanted += [str(value) for value in entry.get("values") or []]
        with self.lock:
            resource = self._consumable(params["consumableResource"])
            items = [_job_summary(job, resource.name) for job in self.jobs.values()
                     if resource.name in job.consumables and job.array_index is None
                     and (not statuses or job.status in statuses)
                     and (not names or any(_matches(job.name, n.lower()) for n in names))]
        return paginate(items, params, "jobs")


def _matches(name: str, pattern: str) -> bool:
    """Case-insensitive; a value ending with ``*`` matches the names beginning with what precedes it."""
    return name.lower().startswith(pattern[:-1]) if pattern.endswith("*") else name.lower() == pattern


def _job_summary(job: Job, resource: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "jobArn": job.arn, "jobQueueArn": job.queue.arn, "jobName": job.name, "jobStatus": job.status,
        "jobDefinitionArn": job.definition.arn, "quantity": job.consumables[resource], "createdAt": job.created_at,
        "consumableResourceProperties": {"consumableResourceList": [
            {"consumableResource": name, "quantity": quantity} for name, quantity in job.consumables.items()]},
    }
    for key, value in (("shareIdentifier", job.share_identifier), ("statusReason", job.status_reason),
                       ("startedAt", job.started_at)):
        if value is not None:
            out[key] = value
    return out
