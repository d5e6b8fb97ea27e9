"""Client-side helpers for the emulator tests: AWS clients, Batch setup, waiting on jobs.

Everything here talks to the emulator the way any AWS client would: boto3 against its endpoint.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

REGION = "us-east-1"
TERMINAL = ("SUCCEEDED", "FAILED")
ALL_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
EXECUTION_ROLE = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
FARGATE_NETWORK = {"assignPublicIp": "ENABLED"}
LOG_GROUP = "/aws/batch/job"


def client(url: str, service: str, region: str = REGION, **config: Any) -> Any:
    """A boto3 client for ``service`` on the emulator; ``config`` goes to botocore's Config."""
    factory: Any = boto3.client  # one helper for every service: no per-service stub overload
    return factory(
        service,
        endpoint_url=url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(**config) if config else None,
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll until ``predicate()`` returns something truthy and return it; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)


def until_released(path: Path) -> str:
    """A shell command that runs until the test creates ``path`` (the emulator runs job commands on this host):
    a job that lasts exactly as long as the test needs, however loaded the host."""
    return f"until [ -e {path} ]; do sleep 0.05; done"


def client_error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    """(code, message, HTTP status) of a botocore ClientError."""
    err = excinfo.value.response
    return err["Error"]["Code"], err["Error"].get("Message", ""), err["ResponseMetadata"]["HTTPStatusCode"]


def caught_up(batch: Any, region: str = "us-west-2", timeout: float = 30.0) -> None:
    """Return once a job submitted now, in another Region, has run to its end: proof that the emulator has
    taken every step that was due before this call. Its steps (a job's next status, a placement, a blocked
    job's recheck) all run on one timer loop in the order they were scheduled, and the witness needs several
    of them. A test that checks that something did *not* happen waits on this instead of sleeping; the
    witness uses neither the capacity nor the request quotas of the test's own Region (not inside a hold)."""
    witness = client(batch.meta.endpoint_url, "batch", region=region)
    ce = create_compute_environment(witness, max_vcpus=1)
    job_id = submit(witness, create_queue(witness, ce), register_container(witness, ["true"])["jobDefinitionArn"])
    assert wait_for_status(witness, job_id, timeout=timeout)["status"] == "SUCCEEDED"


@contextmanager
def held(url: str, *kinds: str) -> Iterator[None]:
    """Compute environments and/or job queues (``"computeEnvironments"``, ``"jobQueues"``) created, updated or
    deleted inside the block stay CREATING, UPDATING or DELETING until it ends (the emulator's holds)."""
    from airflow_batch_runner.emulator.testing import control

    control(url, "holds", dict.fromkeys(kinds, True))
    try:
        yield
    finally:
        control(url, "holds", dict.fromkeys(kinds, False))


# Compute environments and queues


def create_compute_environment(
    batch: Any, name: str | None = None, platform: str = "EC2", state: str = "ENABLED", wait: bool = True,
    max_vcpus: int = 16,
) -> str:
    """A MANAGED compute environment of ``platform`` (EC2 or FARGATE); returns its ARN."""
    name = unique("ce") if name is None else name
    resources: dict[str, Any] = {
        "type": platform,
        "maxvCpus": max_vcpus,
        "subnets": ["subnet-0123456789abcdef0"],
        "securityGroupIds": ["sg-0123456789abcdef0"],
    }
    if platform in ("EC2", "SPOT"):
        resources.update({"minvCpus": 0, "instanceTypes": ["optimal"], "instanceRole": "ecsInstanceRole"})
    arn: str = batch.create_compute_environment(
        computeEnvironmentName=name, type="MANAGED", state=state, computeResources=resources
    )["computeEnvironmentArn"]
    if wait:
        wait_until(
            lambda: batch.describe_compute_environments(computeEnvironments=[arn])["computeEnvironments"][0][
                "status"
            ]
            == "VALID"
        )
    return arn


def queue_status(batch: Any, queue: str) -> str | None:
    queues = batch.describe_job_queues(jobQueues=[queue])["jobQueues"]
    return queues[0]["status"] if queues else None


def create_queue(
    batch: Any, ce_arn: str, name: str | None = None, wait: bool = True, priority: int = 1, **params: Any
) -> str:
    """A job queue on one compute environment; waits until it is VALID; returns its ARN."""
    name = unique("queue") if name is None else name
    arn: str = batch.create_job_queue(
        jobQueueName=name,
        state="ENABLED",
        priority=priority,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce_arn}],
        **params,
    )["jobQueueArn"]
    if wait:
        wait_until(lambda: queue_status(batch, arn) == "VALID")
    return arn


def create_queue_for(batch: Any, platform: str = "EC2") -> str:
    return create_queue(batch, create_compute_environment(batch, platform=platform))


# Job definitions


def awslogs(prefix: str, group: str = LOG_GROUP) -> dict[str, Any]:
    return {
        "logDriver": "awslogs",
        "options": {"awslogs-group": group, "awslogs-region": REGION, "awslogs-stream-prefix": prefix},
    }


def container(
    name: str,
    command: Sequence[str],
    essential: bool = True,
    depends_on: Iterable[tuple[str, str]] = (),
    image: str = "public.ecr.aws/docker/library/busybox:latest",
    mounts: Iterable[tuple[str, str]] = (),
    log_prefix: str | None = "job",
    **extra: Any,
) -> dict[str, Any]:
    """One entry of ``ecsProperties.taskProperties[0].containers``."""
    spec: dict[str, Any] = {"name": name, "image": image, "command": list(command), "essential": essential}
    if depends_on:
        spec["dependsOn"] = [{"containerName": target, "condition": cond} for target, cond in depends_on]
    if mounts:
        spec["mountPoints"] = [
            {"sourceVolume": volume, "containerPath": path, "readOnly": False} for volume, path in mounts
        ]
    if log_prefix is not None:
        spec["logConfiguration"] = awslogs(log_prefix)
    spec.update(extra)
    return spec


def resources(vcpu: str, memory: str) -> list[dict[str, str]]:
    return [{"type": "VCPU", "value": vcpu}, {"type": "MEMORY", "value": memory}]


def ecs_properties(
    containers: list[dict[str, Any]], volumes: Iterable[str] = (), fargate: bool = False, **task: Any
) -> dict[str, Any]:
    """One task of ``ecsProperties``. AWS needs a job's vCPUs and memory somewhere: a task none of whose
    containers gives resourceRequirements gets 1 vCPU and 512 MiB (2048 on Fargate) on its first container."""
    if containers and not any(c.get("resourceRequirements") for c in containers):
        needs = resources("1", "2048" if fargate else "512")
        containers = [{**containers[0], "resourceRequirements": needs}, *containers[1:]]
    properties: dict[str, Any] = {"containers": containers}
    if volumes:
        properties["volumes"] = [{"name": name} for name in volumes]
    if fargate:
        properties.update({"executionRoleArn": EXECUTION_ROLE, "networkConfiguration": FARGATE_NETWORK})
    properties.update(task)
    return {"taskProperties": [properties]}


def register_ecs(
    batch: Any,
    containers: list[dict[str, Any]],
    name: str | None = None,
    volumes: Iterable[str] = (),
    fargate: bool = False,
    **params: Any,
) -> dict[str, Any]:
    """Register an ECS (multi-container) job definition; returns RegisterJobDefinition's answer."""
    answer: dict[str, Any] = batch.register_job_definition(
        jobDefinitionName=unique("ecs-def") if name is None else name,
        type="container",
        platformCapabilities=["FARGATE" if fargate else "EC2"],
        ecsProperties=ecs_properties(containers, volumes, fargate),
        **params,
    )
    return answer


def register_container(
    batch: Any,
    command: Sequence[str],
    name: str | None = None,
    image: str = "public.ecr.aws/docker/library/busybox:latest",
    **params: Any,
) -> dict[str, Any]:
    """Register a container-type job definition on EC2; returns RegisterJobDefinition's answer."""
    answer: dict[str, Any] = batch.register_job_definition(
        jobDefinitionName=unique("container-def") if name is None else name,
        type="container",
        platformCapabilities=["EC2"],
        containerProperties={"image": image, "command": list(command), "resourceRequirements": resources("1", "512")},
        **params,
    )
    return answer


def submit(batch: Any, queue: str, definition: str, name: str | None = None, **params: Any) -> str:
    """Submit a job; returns its id."""
    job_name = unique("job") if name is None else name
    job_id: str = batch.submit_job(jobName=job_name, jobQueue=queue, jobDefinition=definition, **params)["jobId"]
    return job_id


# Jobs


def describe(batch: Any, job_id: str) -> dict[str, Any]:
    jobs = batch.describe_jobs(jobs=[job_id])["jobs"]
    assert len(jobs) == 1, f"job {job_id} not found"
    job: dict[str, Any] = jobs[0]
    return job


def wait_for_status(
    batch: Any, job_id: str, statuses: Sequence[str] = TERMINAL, timeout: float = 30.0, interval: float = 0.02
) -> dict[str, Any]:
    """Poll DescribeJobs until the job reaches one of ``statuses``; returns its description."""
    job: dict[str, Any] = wait_until(
        lambda: (lambda j: j if j["status"] in statuses else None)(describe(batch, job_id)), timeout, interval
    )
    return job


def watch_job(
    batch: Any, job_id: str, timeout: float = 30.0, interval: float = 0.005
) -> tuple[dict[str, Any], list[str]]:
    """Poll a job fast until it ends; returns its last description and the statuses seen, in order."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        job = describe(batch, job_id)
        if not seen or seen[-1] != job["status"]:
            seen.append(job["status"])
        if job["status"] in TERMINAL:
            return job, seen
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id} still {job['status']} after {timeout} s; seen {seen}")
        time.sleep(interval)


def container_results(job: dict[str, Any], attempt: int = 0) -> dict[str, dict[str, Any]]:
    """The containers of one attempt of an ECS job, by name."""
    task = job["attempts"][attempt]["taskProperties"][0]
    return {c["name"]: c for c in task["containers"]}


def wait_ingested(logs: Any, timeout: float = 30.0) -> None:
    """Wait until every line written so far is readable (the emulator's Logs ingestion delay)."""
    from airflow_batch_runner.emulator.testing import control

    wait_until(lambda: control(logs.meta.endpoint_url, "logs")["pending_batches"] == 0, timeout=timeout)


def log_messages(logs: Any, stream: str, group: str = LOG_GROUP, ingested: bool = True) -> list[str]:
    """Every message of a log stream, oldest first; [] when the stream does not exist yet.
    ``ingested``: first wait until every line written so far is readable."""
    if ingested:
        wait_ingested(logs)
    try:
        events = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            return []
        raise
    return [event["message"] for event in events]


def wait_for_lines(batch: Any, logs: Any, job_id: str, name: str, lines: list[str], timeout: float = 30.0) -> None:
    """Wait until container ``name`` of the job's current attempt has logged exactly ``lines``: a sign from inside
    the process that it has come that far."""

    def logged() -> bool:
        job = describe(batch, job_id)
        containers = {c["name"]: c for c in job.get("ecsProperties", {}).get("taskProperties", [{}])[0]
                      .get("containers", [])}
        stream = containers.get(name, {}).get("logStreamName")
        return bool(stream) and log_messages(logs, stream) == lines

    wait_until(logged, timeout)
