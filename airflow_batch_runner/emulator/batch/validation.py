"""The rules a real AWS Batch account enforces on requests, as pure functions.

Each rule raises ``ClientException`` with a message shaped like the one AWS returns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from airflow_batch_runner.fargate import is_valid_fargate_pair

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
JOB_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
CONTAINER_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
DEPENDENCY_CONDITIONS = ("START", "COMPLETE", "SUCCESS", "HEALTHY")
MAX_CONTAINERS = 10
MIN_ATTEMPT_DURATION = 60
MAX_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
RESERVED_ENV_PREFIX = "AWS_BATCH"
# Service quotas: "Maximum job definition size (for RegisterJobDefinition API operations) 24 KiB",
# "Maximum job payload size (for SubmitJob API operations) 30 KiB".
MAX_REQUEST_BYTES = {"RegisterJobDefinition": 24 * 1024, "SubmitJob": 30 * 1024}

class ClientException(Exception):
    """A 400 ClientException, as AWS Batch answers a request it refuses."""

    code = "ClientException"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def require(params: Mapping[str, Any], *names: str) -> None:
    for name in names:
        if params.get(name) in (None, "", [], {}):
            raise ClientException(f"{name} is required")


def check_name(value: str, field: str, pattern: re.Pattern[str] = NAME_RE) -> None:
    if not pattern.match(value or ""):
        raise ClientException(
            f"Error executing request, Exception : {field} {value!r} is invalid. It can contain up to "
            "128 letters (uppercase and lowercase), numbers, hyphens, and underscores"
            + (", and must start with a letter or number." if pattern is JOB_NAME_RE else ".")
        )


def check_request_size(operation: str, body: bytes) -> None:
    """AWS's size quotas on a job definition and a job, measured on the request as sent."""
    limit = MAX_REQUEST_BYTES.get(operation)
    if limit is None or len(body) <= limit:
        return
    if operation == "SubmitJob":
        got = -(-len(body) // 1024)
        raise ClientException(f"Error executing request, Exception : Job size must be less than 30 KiB, got {got} KiB")
    raise ClientException(
        "Error executing request, Exception : Limits Error: JobDefinitionsize is above the limits 24 KB"
    )


def check_environment(entries: Iterable[Mapping[str, Any]] | None, where: str) -> None:
    """``AWS_BATCH`` is the prefix of the variables Batch sets: no definition or override may use it."""
    for entry in entries or []:
        name = str(entry.get("name") or "")
        if name.startswith(RESERVED_ENV_PREFIX):
            raise ClientException(
                f"Error executing request, Exception : {where}: environment variable {name!r} is invalid. "
                f"Environment variables cannot start with {RESERVED_ENV_PREFIX}; it is reserved for variables "
                "that AWS Batch sets."
            )


MAX_REASON = 1024


def check_reason(reason: Any) -> None:
    """TerminateJob's and CancelJob's reason: "This parameter has a limit of 1024 characters"."""
    if len(str(reason)) > MAX_REASON:
        raise ClientException(f"reason can have at most {MAX_REASON} characters, got {len(str(reason))}")


def check_state(state: Any, *allowed: str) -> None:
    if state not in allowed:
        raise ClientException(f"state {state} must be one of {' | '.join(allowed)}")


def check_tags(tags: Mapping[str, str] | None) -> None:
    """The user guide's "Tag restrictions" (the service model's TagrisTagsMap, TagKey, TagValue), which botocore
    does not check beyond the map's minimum size."""
    if tags and len(tags) > MAX_TAGS:
        raise ClientException(f"tags: a resource can have at most {MAX_TAGS} tags")
    for key, value in (tags or {}).items():
        if not 1 <= len(str(key)) <= MAX_TAG_KEY:
            raise ClientException(f"tags: a tag key must have 1 to {MAX_TAG_KEY} characters, got {len(str(key))}")
        if len(str(value)) > MAX_TAG_VALUE:
            raise ClientException(
                f"tags: the value of tag {key!r} must have at most {MAX_TAG_VALUE} characters, got {len(str(value))}"
            )


def propagated_tags_failure(tags: Mapping[str, str], propagate: bool) -> str | None:
    """The statusReason of a job whose tags cannot all be propagated to its ECS task, None when they can.
    SubmitJob's propagateTags: "If the total number of combined tags from the job and job definition is over 50,
    the job is moved to the FAILED state." (``tags``: the job's and the definition's, combined; keys with the
    reserved ``aws:`` prefix do not count against the limit.) AWS documents no wording for the reason."""
    counted = [key for key in tags if not key.lower().startswith("aws:")]
    if not propagate or len(counted) <= MAX_TAGS:
        return None
    return (f"Job failed: {len(counted)} tags of the job and its job definition to propagate to the ECS task, "
            f"more than the {MAX_TAGS} a task can have")


def check_timeout(timeout: Mapping[str, Any] | None) -> None:
    if timeout and "attemptDurationSeconds" in timeout:
        seconds = timeout["attemptDurationSeconds"]
        if not isinstance(seconds, int) or seconds < MIN_ATTEMPT_DURATION:
            raise ClientException(
                f"timeout.attemptDurationSeconds must be at least {MIN_ATTEMPT_DURATION} seconds, got {seconds}"
            )


def normalised_retry_strategy(strategy: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """As AWS stores it: evaluateOnExit actions in lower case (they are case-insensitive)."""
    if strategy is None:
        return None
    out = dict(strategy)
    if "evaluateOnExit" in out:
        out["evaluateOnExit"] = [{**rule, "action": str(rule["action"]).lower()} for rule in out["evaluateOnExit"]]
    return out


# Fields of containerProperties AWS reports as an empty list when the definition omits them.
CONTAINER_LIST_DEFAULTS = (
    "command", "environment", "mountPoints", "volumes", "ulimits", "secrets", "resourceRequirements",
)


def container_defaults(container: Mapping[str, Any], fargate: bool) -> dict[str, Any]:
    """containerProperties as AWS stores them: empty lists for what was omitted, Fargate platform LATEST."""
    out: dict[str, Any] = {name: [] for name in CONTAINER_LIST_DEFAULTS}
    out.update(container)
    if fargate and "fargatePlatformConfiguration" not in out:
        out["fargatePlatformConfiguration"] = {"platformVersion": "LATEST"}
    if fargate:  # NetworkConfiguration.assignPublicIp: 'The default value is "DISABLED".'
        out["networkConfiguration"] = {"assignPublicIp": "DISABLED", **(out.get("networkConfiguration") or {})}
    return out


def resource_totals(containers: Iterable[Mapping[str, Any]]) -> tuple[float, int]:
    """Sum VCPU and MEMORY (MiB) resourceRequirements over containers."""
    vcpu, memory = 0.0, 0
    for container in containers:
        for req in container.get("resourceRequirements") or []:
            if req.get("type") == "VCPU":
                vcpu += float(req["value"])
            elif req.get("type") == "MEMORY":
                memory += int(req["value"])
    return vcpu, memory


def check_fargate_resources(vcpu: float, memory: int) -> None:
    if not is_valid_fargate_pair(vcpu, memory):
        raise ClientException(
            f"Fargate resource requirements are not valid: {vcpu:g} vCPU with {memory} MiB of memory is not "
            "a supported combination (see the Fargate task CPU and memory table)"
        )


def check_ecs_containers(containers: list[Mapping[str, Any]]) -> None:
    """Rules of ecsProperties.taskProperties[].containers."""
    if not containers:
        raise ClientException("ecsProperties.taskProperties[0].containers must contain at least one container")
    if len(containers) > MAX_CONTAINERS:
        raise ClientException(f"A task can have at most {MAX_CONTAINERS} containers")
    names: dict[str, bool] = {}
    for container in containers:
        name = container.get("name") or ""
        if not CONTAINER_NAME_RE.match(name):
            raise ClientException(f"Container name {name!r} is invalid")
        if name in names:
            raise ClientException(f"Container names must be unique; {name!r} is used twice")
        if not container.get("image"):
            raise ClientException(f"Container {name!r}: image is required")
        names[name] = bool(container.get("essential", True))
    if not any(names.values()):
        raise ClientException("At least one container in the task must be marked essential")
    for container in containers:
        for dep in container.get("dependsOn") or []:
            target, condition = dep.get("containerName"), dep.get("condition")
            if target not in names:
                raise ClientException(
                    f"Container {container['name']!r} depends on {target!r}, which is not a container of the task"
                )
            if target == container["name"]:
                raise ClientException(f"Container {target!r} cannot depend on itself")
            if condition not in DEPENDENCY_CONDITIONS:
                raise ClientException(
                    f"dependsOn condition {condition!r} is invalid; use one of {', '.join(DEPENDENCY_CONDITIONS)}"
                )
            if condition in ("COMPLETE", "SUCCESS") and names[target]:
                raise ClientException(
                    f"Dependency condition {condition} cannot be set on essential container {target!r}"
                )
    _check_acyclic(containers)


def _check_acyclic(containers: list[Mapping[str, Any]]) -> None:
    graph = {c["name"]: [d["containerName"] for d in c.get("dependsOn") or []] for c in containers}
    state: dict[str, int] = {}

    def visit(node: str) -> None:
        if state.get(node) == 1:
            raise ClientException(f"Container dependencies form a cycle through {node!r}")
        if state.get(node) == 2:
            return
        state[node] = 1
        for nxt in graph[node]:
            visit(nxt)
        state[node] = 2

    for node in graph:
        visit(node)


def check_fargate_task(task: Mapping[str, Any], containers: list[Mapping[str, Any]], where: str) -> None:
    """Fargate needs an execution role and a valid cpu/memory pair (networkConfiguration is optional: its
    assignPublicIp defaults to DISABLED)."""
    if not task.get("executionRoleArn"):
        raise ClientException(f"{where}: executionRoleArn is required for the FARGATE platform")
    vcpu, memory = resource_totals(containers)
    if vcpu or memory:
        check_fargate_resources(vcpu, memory)


INSTANCE_TYPE_CHOICES = ("optimal", "default_x86_64", "default_arm64")
# computeResources fields AWS documents as "isn't applicable to jobs that are running on Fargate
# resources. Don't specify it."
EC2_ONLY_RESOURCES = (
    "allocationStrategy", "minvCpus", "desiredvCpus", "instanceTypes", "imageId", "ec2KeyPair", "instanceRole",
    "tags", "placementGroup", "bidPercentage", "spotIamFleetRole", "launchTemplate", "ec2Configuration",
    "scalingPolicy",
)


def check_compute_resources(resources: Mapping[str, Any], known_instance_type: Callable[[str], bool]) -> None:
    """What CreateComputeEnvironment's computeResources must hold for its type (EC2, SPOT, FARGATE...)."""
    resource_type = resources.get("type")
    if resource_type == "ECS_MANAGED_INSTANCES":
        raise ClientException("computeResources.type ECS_MANAGED_INSTANCES is not supported by this emulator")
    require(resources, "maxvCpus", "subnets")
    if resource_type in ("FARGATE", "FARGATE_SPOT"):
        given = [name for name in EC2_ONLY_RESOURCES if name in resources]
        if given:
            raise ClientException(
                f"Error executing request, Exception : computeResources.{given[0]} is not applicable to "
                f"{resource_type} compute resources; don't specify it."
            )
        if not resources.get("securityGroupIds"):
            raise ClientException(
                f"Error executing request, Exception : computeResources.securityGroupIds is required for "
                f"{resource_type} compute resources (at least one security group)."
            )
        return
    if not resources.get("instanceRole"):
        raise ClientException("Error executing request, Exception : Instance role is required.")
    minimum = resources.get("minvCpus", 0)
    if not 0 <= minimum <= resources["maxvCpus"]:
        raise ClientException("computeResources.minvCpus must be between 0 and maxvCpus")
    types = resources.get("instanceTypes")
    if types is not None and not types:
        raise ClientException("computeResources.instanceTypes: at least one instance type must be provided")
    for instance_type in types or []:
        if instance_type not in INSTANCE_TYPE_CHOICES and not known_instance_type(instance_type):
            raise ClientException(f"Instance type {instance_type} does not exist")
    if (
        resource_type == "SPOT"
        and resources.get("allocationStrategy", "BEST_FIT") == "BEST_FIT"
        and not resources.get("spotIamFleetRole")
    ):
        raise ClientException(
            "computeResources.spotIamFleetRole is required for a SPOT compute environment with the "
            "BEST_FIT allocation strategy (the default)"
        )


def paginate(
    items: list[dict[str, Any]], params: Mapping[str, Any], key: str, max_page: int = 100
) -> dict[str, Any]:
    """Pages with an opaque nextToken (the offset, as AWS's tokens are opaque to clients anyway)."""
    limit = int(params.get("maxResults") or max_page)
    if not 1 <= limit <= max_page:
        raise ClientException(f"maxResults must be between 1 and {max_page}")
    token = params.get("nextToken")
    try:
        start = int(token) if token else 0
    except ValueError as exc:
        raise ClientException("nextToken is invalid") from exc
    page = items[start : start + limit]
    out: dict[str, Any] = {key: page}
    if start + limit < len(items):
        out["nextToken"] = str(start + limit)
    return out


def check_platform_fields(
    containers: Iterable[Mapping[str, Any]], task: Mapping[str, Any], fargate: bool, where: str
) -> None:
    """At RegisterJobDefinition: what the API reference says each platform must not be given. ``task`` holds the
    task-level fields (an ecsProperties task, or containerProperties itself)."""
    containers = list(containers)
    for spec in containers:
        check_gpu_values(spec.get("resourceRequirements"), where)
    if not fargate:
        for name in ("fargatePlatformConfiguration", "networkConfiguration"):
            if task.get(name):
                raise ClientException(
                    f"{where}.{name}: jobs that are running on EC2 resources must not specify this parameter"
                )
        return
    for spec in containers:
        for legacy in ("vcpus", "memory"):
            if spec.get(legacy) is not None:
                raise ClientException(
                    f"{where}.{legacy} is not supported for jobs running on Fargate resources; use resourceRequirements"
                )
        _check_no_gpu(spec.get("resourceRequirements"), where)


def check_gpu_values(requirements: Iterable[Mapping[str, Any]] | None, where: str) -> None:
    """A GPU requirement's value is "the number of physical GPUs to reserve for the container"."""
    for req in requirements or []:
        value = req.get("value")
        if req.get("type") == "GPU" and not (isinstance(value, str) and value.isdigit() and int(value) > 0):
            raise ClientException(f"{where}: resourceRequirements of type GPU must have a value that is a whole "
                                  f"number of GPUs, at least 1; got {value!r}")


def _check_no_gpu(requirements: Iterable[Mapping[str, Any]] | None, where: str) -> None:
    if any(req.get("type") == "GPU" for req in requirements or []):
        raise ClientException(
            f"{where}: resourceRequirements of type GPU aren't available for jobs running on Fargate resources"
        )


def check_overrides(overrides: Iterable[tuple[Mapping[str, Any], str]], fargate: bool) -> None:
    """At SubmitJob: containerOverrides (or an ecsPropertiesOverride container) fields a job's platform refuses."""
    for override, where in overrides:
        if override.get("instanceType") is not None:
            raise ClientException(
                f"{where}.instanceType is only for multi-node parallel jobs; it isn't applicable to single-node "
                "container jobs or jobs that run on Fargate resources"
            )
        check_gpu_values(override.get("resourceRequirements"), where)
        if fargate:
            for legacy in ("vcpus", "memory"):
                if override.get(legacy) is not None:
                    raise ClientException(
                        f"{where}.{legacy} is not supported for jobs running on Fargate resources; use "
                        "resourceRequirements"
                    )
            _check_no_gpu(override.get("resourceRequirements"), where)


def job_resources(containers: Iterable[Mapping[str, Any]]) -> tuple[float, int]:
    """A job's vCPUs and memory (MiB): each container's resourceRequirements, else its legacy vcpus/memory."""
    vcpu, memory = 0.0, 0
    for spec in containers:
        own_vcpu, own_memory = resource_totals([spec])
        vcpu += own_vcpu or float(spec.get("vcpus") or 0)
        memory += own_memory or int(spec.get("memory") or 0)
    return vcpu, memory


MIN_JOB_MEMORY = 4


def check_job_resources(containers: Iterable[Mapping[str, Any]]) -> None:
    """At SubmitJob: vCPUs and memory "can be specified in several places" (the definition, the overrides), but
    must be somewhere; at least 4 MiB of memory."""
    vcpu, memory = job_resources(containers)
    if vcpu <= 0:
        raise ClientException(
            "The job has no VCPU resource requirement: give one in the job definition or in the overrides"
        )
    if memory < MIN_JOB_MEMORY:
        raise ClientException(
            f"The job needs a MEMORY resource requirement of at least {MIN_JOB_MEMORY} MiB, in the job definition "
            f"or in the overrides; it has {memory}"
        )
