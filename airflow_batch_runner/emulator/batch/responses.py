"""AWS Batch's REST-JSON wire protocol: request paths to backend operations, results to HTTP answers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote

from airflow_batch_runner.emulator.batch import validation as v
from airflow_batch_runner.emulator.batch.backend import BatchBackend
from airflow_batch_runner.emulator.batch.validation import ClientException

# POST /v1/<lowercase operation> -> (operation name, backend method)
OPERATIONS: dict[str, tuple[str, str]] = {
    "createcomputeenvironment": ("CreateComputeEnvironment", "create_compute_environment"),
    "describecomputeenvironments": ("DescribeComputeEnvironments", "describe_compute_environments"),
    "updatecomputeenvironment": ("UpdateComputeEnvironment", "update_compute_environment"),
    "deletecomputeenvironment": ("DeleteComputeEnvironment", "delete_compute_environment"),
    "createjobqueue": ("CreateJobQueue", "create_job_queue"),
    "describejobqueues": ("DescribeJobQueues", "describe_job_queues"),
    "updatejobqueue": ("UpdateJobQueue", "update_job_queue"),
    "deletejobqueue": ("DeleteJobQueue", "delete_job_queue"),
    "registerjobdefinition": ("RegisterJobDefinition", "register_job_definition"),
    "describejobdefinitions": ("DescribeJobDefinitions", "describe_job_definitions"),
    "deregisterjobdefinition": ("DeregisterJobDefinition", "deregister_job_definition"),
    "submitjob": ("SubmitJob", "submit_job"),
    "describejobs": ("DescribeJobs", "describe_jobs"),
    "listjobs": ("ListJobs", "list_jobs"),
    "terminatejob": ("TerminateJob", "terminate_job"),
    "canceljob": ("CancelJob", "cancel_job"),
    "createschedulingpolicy": ("CreateSchedulingPolicy", "create_scheduling_policy"),
    "describeschedulingpolicies": ("DescribeSchedulingPolicies", "describe_scheduling_policies"),
    "listschedulingpolicies": ("ListSchedulingPolicies", "list_scheduling_policies"),
    "updateschedulingpolicy": ("UpdateSchedulingPolicy", "update_scheduling_policy"),
    "deleteschedulingpolicy": ("DeleteSchedulingPolicy", "delete_scheduling_policy"),
    "createconsumableresource": ("CreateConsumableResource", "create_consumable_resource"),
    "describeconsumableresource": ("DescribeConsumableResource", "describe_consumable_resource"),
    "listconsumableresources": ("ListConsumableResources", "list_consumable_resources"),
    "updateconsumableresource": ("UpdateConsumableResource", "update_consumable_resource"),
    "deleteconsumableresource": ("DeleteConsumableResource", "delete_consumable_resource"),
    "listjobsbyconsumableresource": ("ListJobsByConsumableResource", "list_jobs_by_consumable_resource"),
}
TAGS_PREFIX = "/v1/tags/"

# Request members this emulator does not implement: refused by name rather than accepted and ignored.
UNSUPPORTED: dict[str, dict[str, str]] = {
    "CreateComputeEnvironment": {"context": "context", "ecsSettings": "ECS settings"},
    "UpdateComputeEnvironment": {
        "updatePolicy": "infrastructure update policies", "context": "context", "ecsSettings": "ECS settings",
        "eksConfiguration": "EKS compute environments",
    },
    "CreateJobQueue": {"serviceEnvironmentOrder": "service environments (SageMaker training jobs)"},
    "UpdateJobQueue": {"serviceEnvironmentOrder": "service environments (SageMaker training jobs)"},
    "RegisterJobDefinition": {
        "nodeProperties": "multi-node parallel jobs",
        "eksProperties": "EKS jobs",
    },
    "SubmitJob": {
        "nodeOverrides": "multi-node parallel jobs",
        "eksPropertiesOverride": "EKS jobs",
    },
    "CreateSchedulingPolicy": {"quotaSharePolicy": "quota share policies"},
    "UpdateSchedulingPolicy": {"quotaSharePolicy": "quota share policies"},
}


def operation_name(method: str, path: str) -> str:
    """The API operation a Batch request calls, for routing, statistics and fault injection."""
    if path.startswith(TAGS_PREFIX):
        return {"POST": "TagResource", "GET": "ListTagsForResource", "DELETE": "UntagResource"}.get(
            method, "Unknown"
        )
    entry = OPERATIONS.get(path.removeprefix("/v1/").strip("/").lower())
    return entry[0] if entry else "Unknown"


def handle(
    backend: BatchBackend, method: str, path: str, query: str, body: bytes
) -> tuple[int, dict[str, str], bytes]:
    """Answer one Batch request: (status, headers, body)."""
    try:
        v.check_request_size(operation_name(method, path), body)
        params: dict[str, Any] = json.loads(body) if body.strip() else {}
        result = _dispatch(backend, method, path, query, params)
        return 200, {"Content-Type": "application/json", **request_id()}, json.dumps(result).encode()
    except ClientException as exc:
        return error_response(exc.status, exc.code, exc.message)
    except (ValueError, KeyError, TypeError) as exc:
        return error_response(400, "ClientException", f"Invalid request: {exc}")


def _dispatch(backend: BatchBackend, method: str, path: str, query: str, params: dict[str, Any]) -> Any:
    if path.startswith(TAGS_PREFIX):
        arn = unquote(path[len(TAGS_PREFIX) :])
        if method == "POST":
            return backend.tag_resource(arn, params.get("tags") or {})
        if method == "GET":
            return backend.list_tags_for_resource(arn)
        if method == "DELETE":
            return backend.untag_resource(arn, parse_qs(query).get("tagKeys", []))
    entry = OPERATIONS.get(path.removeprefix("/v1/").strip("/").lower())
    if entry is None or method != "POST":
        raise ClientException(f"Unknown operation {method} {path}")
    for member, feature in UNSUPPORTED.get(entry[0], {}).items():
        if params.get(member) is not None:
            raise ClientException(f"{member}: {feature} are not supported by this emulator")
    method_fn: Callable[[dict[str, Any]], Any] = getattr(backend, entry[1])
    return method_fn(params)


def request_id() -> dict[str, str]:
    """The header AWS puts on every answer, success or error."""
    return {"x-amzn-RequestId": str(uuid.uuid4())}


def error_response(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code, **request_id()}
    return status, headers, json.dumps({"__type": code, "message": message}).encode()
