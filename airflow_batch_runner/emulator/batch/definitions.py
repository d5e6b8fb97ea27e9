"""Job definitions: RegisterJobDefinition, DescribeJobDefinitions, DeregisterJobDefinition, and finding a
definition by ARN, ``name:revision`` or name, with the rules AWS applies at registration."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from airflow_batch_runner.emulator.batch import consumables, retries, scheduling, task_settings, volumes
from airflow_batch_runner.emulator.batch import validation as v
from airflow_batch_runner.emulator.batch.environments import Environments, Infrastructure
from airflow_batch_runner.emulator.batch.resources import JobDefinition, name_of, tags_dict
from airflow_batch_runner.emulator.batch.validation import ClientException, paginate


class Definitions(Environments):
    """One region's job definitions, each name's revisions in order."""

    def __init__(self, infrastructure: Infrastructure) -> None:
        super().__init__(infrastructure)
        self.definitions: dict[str, list[JobDefinition]] = {}
    def register_job_definition(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.require(params, "jobDefinitionName", "type")
        name = params["jobDefinitionName"]
        v.check_name(name, "jobDefinitionName")
        v.check_tags(params.get("tags"))
        v.check_timeout(params.get("timeout"))
        retries.check_retry_strategy(params.get("retryStrategy"))
        priority = params.get("schedulingPriority")
        if priority is not None:
            scheduling.check_priority(priority, "schedulingPriority")
        requirements = consumables.check_requirements(params.get("consumableResourceProperties"),
                                                      "consumableResourceProperties")
        def_type = params["type"]
        if def_type not in ("container", "multinode"):
            raise ClientException("type must be container or multinode")
        platforms = list(params.get("platformCapabilities") or ["EC2"])
        if any(p not in ("EC2", "FARGATE") for p in platforms) or len(platforms) != 1:
            raise ClientException("platformCapabilities must be exactly one of EC2, FARGATE")
        kinds = ("containerProperties", "ecsProperties", "nodeProperties", "eksProperties")
        given = [k for k in kinds if params.get(k)]
        if len(given) != 1:
            raise ClientException(
                "Exactly one of containerProperties, ecsProperties, nodeProperties, eksProperties is required"
            )
        if given[0] in ("nodeProperties", "eksProperties"):
            raise ClientException(f"{given[0]} is not supported by this emulator")
        if def_type != "container":
            raise ClientException(f"{given[0]} requires type container")
        fargate = platforms == ["FARGATE"]
        container_props: dict[str, Any] | None = None
        ecs_props: dict[str, Any] | None = None
        if given[0] == "containerProperties":
            container_props = v.container_defaults(params["containerProperties"], fargate)
        else:
            ecs_props = params["ecsProperties"]
        if container_props is not None:
            v.require(container_props, "image")
            v.check_environment(container_props.get("environment"), "containerProperties")
            v.check_platform_fields([container_props], container_props, fargate, "containerProperties")
            task_settings.check(container_props, [container_props], fargate, "containerProperties",
                                container_properties=True)
            volumes.check(container_props.get("volumes") or [], fargate, "containerProperties")
            if fargate:
                v.check_fargate_task(
                    {
                        "executionRoleArn": container_props.get("executionRoleArn"),
                        "networkConfiguration": container_props.get("networkConfiguration"),
                    },
                    [container_props],
                    "containerProperties",
                )
        else:
            assert ecs_props is not None
            tasks = ecs_props.get("taskProperties") or []
            if len(tasks) != 1:
                raise ClientException("ecsProperties.taskProperties must contain exactly one task")
            v.check_ecs_containers(tasks[0].get("containers") or [])
            for container in tasks[0]["containers"]:
                v.check_environment(container.get("environment"), f"container {container['name']!r}")
            v.check_platform_fields(tasks[0]["containers"], tasks[0], fargate, "ecsProperties.taskProperties[0]")
            task_settings.check(tasks[0], tasks[0]["containers"], fargate, "ecsProperties.taskProperties[0]")
            volumes.check(tasks[0].get("volumes") or [], fargate, "ecsProperties.taskProperties[0]")
            if fargate:
                v.check_fargate_task(tasks[0], tasks[0]["containers"], "ecsProperties.taskProperties[0]")
        with self.lock:
            revisions = self.definitions.setdefault(name, [])
            revision = len(revisions) + 1
            definition = JobDefinition(
                name=name,
                revision=revision,
                arn=self._arn("job-definition", f"{name}:{revision}"),
                def_type=def_type,
                platform_capabilities=platforms,
                container_properties=copy.deepcopy(container_props),
                ecs_properties=copy.deepcopy(ecs_props),
                parameters=dict(params.get("parameters") or {}),
                timeout=params.get("timeout"),
                retry_strategy=v.normalised_retry_strategy(params.get("retryStrategy")),
                propagate_tags=params.get("propagateTags"),
                scheduling_priority=priority,
                tags=tags_dict(params.get("tags")),
                consumable_resources=requirements,
            )
            revisions.append(definition)
            self.tags_by_arn[definition.arn] = definition.tags
        return {"jobDefinitionName": name, "jobDefinitionArn": definition.arn, "revision": revision}

    def find_definition(self, ref: str) -> JobDefinition | None:
        """By ARN, name:revision, or name (the latest ACTIVE revision)."""
        name, _, revision = name_of(ref).partition(":")
        revisions = self.definitions.get(name, [])
        if revision:
            idx = int(revision) - 1 if revision.isdigit() else -1
            return revisions[idx] if 0 <= idx < len(revisions) else None
        active = [d for d in revisions if d.status == "ACTIVE"]
        return active[-1] if active else None

    def describe_job_definitions(self, params: Mapping[str, Any]) -> dict[str, Any]:
        refs = params.get("jobDefinitions")
        name_filter = params.get("jobDefinitionName")
        status = params.get("status")
        if status is not None and status not in ("ACTIVE", "INACTIVE"):
            raise ClientException(f"status {status!r} is invalid; use ACTIVE or INACTIVE")
        with self.lock:
            if refs:
                items = []
                for ref in refs:
                    plain = name_of(ref)
                    if ":" in plain:
                        found = self.find_definition(ref)
                        items.extend([found] if found else [])
                    else:
                        items.extend(self.definitions.get(plain, []))
            elif name_filter:
                items = list(self.definitions.get(name_filter, []))
            else:
                items = [d for revs in self.definitions.values() for d in revs]
            described = [d.describe() for d in items if status is None or d.status == status]
        return paginate(described, params, "jobDefinitions")

    def deregister_job_definition(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.require(params, "jobDefinition")
        with self.lock:
            definition = self.find_definition(params["jobDefinition"])
            if definition is None:
                raise ClientException(f"jobDefinition {params['jobDefinition']} does not exist")
            definition.status = "INACTIVE"
        return {}
