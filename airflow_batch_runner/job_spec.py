"""Pure: a task's configuration -> the AWS Batch job definition and SubmitJob request.

No boto3, no Airflow runtime: every function here is a plain transformation, tested without AWS.
The job is one ECS multi-container task sharing a volume (see DESIGN.md, "The job on AWS Batch"):
``inputs`` (AWS CLI, copies staged inputs in) -> ``main`` (the user's commands) -> ``outputs``
(AWS CLI, copies declared files and the output dir out).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Literal

from airflow_batch_runner.fargate import describe_fargate_pairs, is_valid_fargate_pair

Platform = Literal["FARGATE", "EC2"]

VOLUME_NAME = "airflow-batch"
VOLUME_ROOT = "/airflow-batch"
WORKING_DIR = f"{VOLUME_ROOT}/work"
OUTPUT_DIR = f"{VOLUME_ROOT}/output"
INPUTS_PREFIX = "inputs/"
# Output files land under these prefixes of the bucket path, mirroring the volume.
WORK_OUTPUT_PREFIX = "work/"
DIR_OUTPUT_PREFIX = "output/"
# Values for the XCom's outputs and metrics too big for a log line (see results.py); collected with the files.
OUTPUTS_FILE_KEY = "outputs.json"
OUTPUTS_FILE = f"{VOLUME_ROOT}/{OUTPUTS_FILE_KEY}"
BUCKET_PREFIX = "airflow-batch-runner"
AWS_CLI_IMAGE = "public.ecr.aws/aws-cli/aws-cli:2.22.0"
MAIN = "main"
INPUTS = "inputs"
OUTPUTS = "outputs"
LOG_GROUP = "/aws/batch/job"
DEFINITION_PREFIX = "airflow-batch-runner"
MIN_ATTEMPT_SECONDS = 60
# AWS Batch's most attempts per job, and the rules that retry a Spot reclaim and nothing else: EC2 Spot
# (the instance is gone: "Host EC2 (instance i-...) terminated.") and Fargate Spot ("Your Spot Task was
# interrupted."); any other end exits. The first matching rule wins.
MAX_ATTEMPTS = 10
SPOT_RETRY_RULES: tuple[dict[str, str], ...] = (
    {"onStatusReason": "Host EC2*", "action": "RETRY"},
    {"onStatusReason": "Your Spot Task was interrupted*", "action": "RETRY"},
    {"onReason": "*", "action": "EXIT"},
)
# AWS Batch: "You must specify at least 4 MiB of memory" for a container.
MIN_CONTAINER_MEMORY = 4
DEFAULT_RESOURCES: dict[str, dict[str, str]] = {"request": {"cpu": "1", "memory": "2048"}}
# Kestra spellings of the template variables, beside the Airflow ones.
TEMPLATE_ALIASES = {"workingDir": "working_dir", "outputDir": "output_dir", "bucketPath": "bucket_path"}
IMAGE_RE = re.compile(
    r"^(?:[a-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
SLUG_RE = re.compile(r"[^A-Za-z0-9_-]+")
SEGMENT_RE = re.compile(r"[^A-Za-z0-9._=-]+")


@dataclass(frozen=True)
class Resources:
    """The whole job's request: vCPUs and MiB of memory."""

    cpu: float
    memory: int


@dataclass(frozen=True)
class TaskIdentity:
    dag_id: str
    task_id: str
    run_id: str
    map_index: int = -1
    try_number: int = 1

    @property
    def run_key(self) -> str:
        """Stable across tries of one task instance: finds the job again after a lost worker."""
        raw = "\x00".join((self.dag_id, self.task_id, self.run_id, str(self.map_index)))
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    @property
    def job_name(self) -> str:
        slug = SLUG_RE.sub("-", f"{self.dag_id}-{self.task_id}").strip("-_")[:100] or "task"
        if not slug[0].isalnum():
            slug = f"t{slug}"
        return f"{slug}-{self.run_key}"

    def tags(self) -> dict[str, str]:
        return {
            "airflow:dag_id": self.dag_id[:256],
            "airflow:task_id": self.task_id[:256],
            "airflow:run_id": self.run_id[:256],
            "airflow:map_index": str(self.map_index),
            "airflow:try_number": str(self.try_number),
            "airflow:run_key": self.run_key,
        }

    def task_prefix(self, bucket: str) -> str:
        """Where every submission of this task instance keeps its files."""
        segments = [self.dag_id, self.run_id, self.task_id, str(self.map_index)]
        path = "/".join(SEGMENT_RE.sub("_", s) for s in segments)
        return f"s3://{bucket}/{BUCKET_PREFIX}/{path}/"

    def bucket_path(self, bucket: str, submission_id: str) -> str:
        """A fresh prefix per submission, so a retry never mixes its files with an earlier attempt's."""
        return f"{self.task_prefix(bucket)}{SEGMENT_RE.sub('_', submission_id)}/"


@dataclass(frozen=True)
class JobSpec:
    """Everything that decides the job, resolved and validated."""

    image: str
    commands: tuple[str, ...]
    platform: Platform
    resources: Resources
    env: Mapping[str, str] = field(default_factory=dict)
    bucket_path: str | None = None
    has_inputs: bool = False
    output_patterns: tuple[str, ...] = ()
    execution_role_arn: str | None = None
    task_role_arn: str | None = None
    region: str | None = None
    retry_strategy: Mapping[str, Any] | None = None
    sidecar_image: str = AWS_CLI_IMAGE
    # Each sidecar's share; None: the default share (see split_resources).
    sidecar_resources: Resources | None = None

    @property
    def has_outputs(self) -> bool:
        return self.bucket_path is not None


# Validation


def parse_resources(value: Any, argument: str = "resources") -> Resources:
    """``{"request": {"cpu": "1", "memory": "2048"}}`` -> Resources, or a ValueError naming the argument."""
    shape = f'{argument} must look like {{"request": {{"cpu": "1", "memory": "2048"}}}} (vCPUs, MiB)'
    if not isinstance(value, Mapping) or set(value) != {"request"} or not isinstance(value["request"], Mapping):
        raise ValueError(f"{shape}; got {value!r}")
    request = value["request"]
    if set(request) != {"cpu", "memory"}:
        raise ValueError(f"{shape}; got keys {sorted(request)}")
    try:
        cpu, memory = float(request["cpu"]), int(str(request["memory"]))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{shape}; cpu must be a number and memory a whole number of MiB") from exc
    # float() accepts "nan" and "inf": refuse them here rather than at AWS.
    if not 0 < cpu < math.inf or memory <= 0:
        raise ValueError(f"{argument}: cpu and memory must be positive; got cpu={cpu:g} memory={memory}")
    return Resources(cpu, memory)


def check_sidecar_resources(total: Resources, sidecar: Resources | None, sidecars: int) -> None:
    """The sidecars' shares must leave the main container something: AWS needs at least
    MIN_CONTAINER_MEMORY MiB per container, and a container with no vCPU share cannot be placed.
    The job's total stays ``resources``, so on Fargate it remains the pair that was validated."""
    if sidecar is None or not sidecars:
        return
    main_cpu = total.cpu - sidecar.cpu * sidecars
    main_memory = total.memory - sidecar.memory * sidecars
    if sidecar.memory < MIN_CONTAINER_MEMORY or main_cpu <= 0 or main_memory < MIN_CONTAINER_MEMORY:
        raise ValueError(
            f"sidecar_resources: {sidecars} sidecar(s) of {sidecar.cpu:g} vCPU and {sidecar.memory} MiB leave the "
            f"main container {main_cpu:g} vCPU and {main_memory} MiB of resources' {total.cpu:g} vCPU and "
            f"{total.memory} MiB; every container needs more than 0 vCPU and at least {MIN_CONTAINER_MEMORY} MiB. "
            "Give the sidecars less, or the job more resources"
        )


def check_fargate_resources(resources: Resources) -> None:
    if not is_valid_fargate_pair(resources.cpu, resources.memory):
        raise ValueError(
            f"resources: Fargate does not offer {resources.cpu:g} vCPU with {resources.memory} MiB. "
            f"Valid combinations: {describe_fargate_pairs()}"
        )


def check_relative_name(name: str, argument: str) -> str:
    """A file name or glob relative to the working dir that cannot escape it."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{argument}: file names must be non-empty strings; got {name!r}")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name:
        raise ValueError(
            f"{argument}: {name!r} escapes the working directory; use a path relative to it, without '..'"
        )
    return str(path)


def retry_strategy_for(spot_retries: int, retry_strategy: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The job's retryStrategy: Spot interruptions retried ``spot_retries`` times and nothing else, or the
    user's own strategy as given; None (one attempt) by default."""
    if isinstance(spot_retries, bool) or not isinstance(spot_retries, int) or not 0 <= spot_retries < MAX_ATTEMPTS:
        raise ValueError(f"spot_retries must be a whole number from 0 to {MAX_ATTEMPTS - 1}; got {spot_retries!r}")
    if retry_strategy is not None:
        if spot_retries:
            raise ValueError("give spot_retries or retry_strategy, not both: retry_strategy replaces the Spot rules")
        if not isinstance(retry_strategy, Mapping) or not retry_strategy:
            raise ValueError(
                'retry_strategy is AWS Batch\'s RetryStrategy, e.g. {"attempts": 3, "evaluateOnExit": '
                '[{"onExitCode": "137", "action": "RETRY"}, {"onReason": "*", "action": "EXIT"}]}; '
                f"got {retry_strategy!r}"
            )
        return dict(retry_strategy)
    if not spot_retries:
        return None
    return {"attempts": spot_retries + 1, "evaluateOnExit": [dict(rule) for rule in SPOT_RETRY_RULES]}


def check_image(image: str, argument: str = "container_image") -> str:
    if not isinstance(image, str) or not IMAGE_RE.match(image):
        raise ValueError(
            f"{argument} {image!r} is not a valid image reference; "
            "use e.g. 'ubuntu:24.04' or '123456789012.dkr.ecr.eu-west-1.amazonaws.com/repo:tag'"
        )
    return image


def check_commands(commands: Any) -> tuple[str, ...]:
    if isinstance(commands, str):
        commands = [commands]
    if not isinstance(commands, Sequence) or not commands or not all(isinstance(c, str) for c in commands):
        raise ValueError("commands must be a non-empty list of shell command strings")
    if not any(c.strip() for c in commands):
        raise ValueError("commands must contain at least one non-blank command")
    return tuple(commands)


def compute_environment_platform(description: Mapping[str, Any] | None, arn: str) -> Platform:
    """FARGATE or EC2 from DescribeComputeEnvironments, or a ValueError for anything we cannot run on."""
    if description is None:
        raise ValueError(
            f"compute_environment_arn {arn!r} does not exist in this account and region; "
            "check the ARN and region_name"
        )
    if description.get("containerOrchestrationType") == "EKS" or description.get("eksConfiguration"):
        raise ValueError(
            f"compute_environment_arn {arn!r} is an EKS compute environment; this runner needs ECS "
            "(EC2, SPOT, FARGATE or FARGATE_SPOT). Use the Kubernetes pod operator for EKS."
        )
    resource_type = (description.get("computeResources") or {}).get("type", "EC2")
    return "FARGATE" if resource_type in ("FARGATE", "FARGATE_SPOT") else "EC2"


# Building


def split_resources(spec: JobSpec) -> dict[str, Resources]:
    """Sidecars take a small share; main the rest, so that the job as a whole asks for ``resources``."""
    total = spec.resources
    sidecars = sidecar_names(spec)
    if spec.sidecar_resources is not None:
        cpu_share, memory_share = spec.sidecar_resources.cpu, spec.sidecar_resources.memory
    else:
        cpu_share = 0.125 if total.cpu >= 1 else total.cpu / 8
        memory_share = 128 if total.memory >= 1024 else total.memory // 8
    shares = {name: Resources(cpu_share, memory_share) for name in sidecars}
    shares[MAIN] = Resources(total.cpu - cpu_share * len(sidecars), total.memory - memory_share * len(sidecars))
    return shares


def _requirements(resources: Resources) -> list[dict[str, str]]:
    return [{"type": "VCPU", "value": f"{resources.cpu:g}"}, {"type": "MEMORY", "value": str(resources.memory)}]


def _log_configuration(definition_name: str, region: str | None) -> dict[str, Any]:
    options = {"awslogs-group": LOG_GROUP, "awslogs-stream-prefix": definition_name}
    if region:
        options["awslogs-region"] = region
    return {"logDriver": "awslogs", "options": options}


def sidecar_names(spec: JobSpec) -> list[str]:
    return [name for name, used in ((INPUTS, spec.has_inputs), (OUTPUTS, spec.has_outputs)) if used]


def container_names(spec: JobSpec) -> list[str]:
    return [name for name, used in ((INPUTS, spec.has_inputs), (MAIN, True), (OUTPUTS, spec.has_outputs)) if used]


def _definition_body(spec: JobSpec) -> dict[str, Any]:
    """The stable part of the job: images, volume, mounts, roles, platform. No per-run data."""
    mount = [{"sourceVolume": VOLUME_NAME, "containerPath": VOLUME_ROOT}]
    names = container_names(spec)
    containers: list[dict[str, Any]] = []
    for name in names:
        container: dict[str, Any] = {
            "name": name,
            "image": spec.image if name == MAIN else spec.sidecar_image,
            # The last container is the one whose end ends the task; COMPLETE/SUCCESS targets
            # cannot be essential.
            "essential": name == names[-1],
            "mountPoints": mount,
        }
        previous = names[names.index(name) - 1] if names.index(name) else None
        if previous:
            container["dependsOn"] = [{"containerName": previous, "condition": "SUCCESS"}]
        containers.append(container)
    task: dict[str, Any] = {"containers": containers, "volumes": [{"name": VOLUME_NAME}]}
    if spec.execution_role_arn:
        task["executionRoleArn"] = spec.execution_role_arn
    if spec.task_role_arn:
        task["taskRoleArn"] = spec.task_role_arn
    if spec.platform == "FARGATE":
        task["networkConfiguration"] = {"assignPublicIp": "ENABLED"}
        task["platformVersion"] = "LATEST"
    return {"type": "container", "platformCapabilities": [spec.platform], "ecsProperties": {"taskProperties": [task]}}


def definition_name(spec: JobSpec) -> str:
    """A content-hash name: any ACTIVE revision under it has exactly this content."""
    body = _definition_body(spec)
    body["logRegion"] = spec.region
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:20]
    return f"{DEFINITION_PREFIX}-{digest}"


def build_job_definition(spec: JobSpec) -> dict[str, Any]:
    """The RegisterJobDefinition request."""
    name = definition_name(spec)
    body = _definition_body(spec)
    shares = split_resources(spec)
    for container in body["ecsProperties"]["taskProperties"][0]["containers"]:
        # Resources and commands are overridden on every submission; these keep the definition valid.
        container["resourceRequirements"] = _requirements(shares[container["name"]])
        container["logConfiguration"] = _log_configuration(name, spec.region)
        container["command"] = ["--version"] if container["name"] != MAIN else ["/bin/sh", "-c", "true"]
    return {"jobDefinitionName": name, **body, "tags": {"airflow:managed-by": "airflow-batch-runner"}}


def main_script(commands: Sequence[str], output_patterns: Sequence[str]) -> str:
    """The main container's shell script: the first failing command fails the container, and a
    declared output that was never written fails it too, with a line saying which."""
    lines = ['mkdir -p "$WORKING_DIR" "$OUTPUT_DIR"', 'cd "$WORKING_DIR"']
    for command in commands:
        if command.strip():
            lines.append(f"{{ {command}\n}} || exit $?")
    if output_patterns:
        quoted = " ".join(shlex.quote(p) for p in output_patterns)
        lines.append('cd "$WORKING_DIR"')
        # IFS='': a declared name with a space is one name (globs still expand), not several words.
        lines.append(
            f"IFS=''; for p in {quoted}; do set -- $p; [ -e \"$1\" ] || "
            '{ echo "airflow-batch-runner: output file $p was not written in $WORKING_DIR" >&2; exit 1; }; done'
        )
    return "\n".join(lines)


def job_environment(spec: JobSpec) -> list[dict[str, str]]:
    env = {**spec.env, "WORKING_DIR": WORKING_DIR, "OUTPUT_DIR": OUTPUT_DIR}
    if spec.bucket_path:
        env["BUCKET_PATH"] = spec.bucket_path
        env["OUTPUTS_FILE"] = OUTPUTS_FILE
    return [{"name": k, "value": str(v)} for k, v in env.items()]


def _sidecar_commands(spec: JobSpec) -> dict[str, list[str]]:
    assert spec.bucket_path is not None
    commands = {}
    if spec.has_inputs:
        commands[INPUTS] = [
            "s3", "cp", "--recursive", "--only-show-errors", f"{spec.bucket_path}{INPUTS_PREFIX}", f"{WORKING_DIR}/",
        ]
    includes: list[str] = []
    for pattern in spec.output_patterns:
        includes += ["--include", f"{WORK_OUTPUT_PREFIX}{pattern}"]
    commands[OUTPUTS] = [
        "s3", "cp", "--recursive", "--only-show-errors", f"{VOLUME_ROOT}/", spec.bucket_path,
        "--exclude", "*", *includes, "--include", f"{DIR_OUTPUT_PREFIX}*", "--include", OUTPUTS_FILE_KEY,
    ]
    return commands


def build_submit_request(
    spec: JobSpec,
    identity: TaskIdentity,
    job_queue: str,
    attempt_duration_seconds: int | None,
) -> dict[str, Any]:
    """The SubmitJob request: per-run commands, environment and resources travel as overrides."""
    shares = split_resources(spec)
    environment = job_environment(spec)
    commands = _sidecar_commands(spec) if spec.bucket_path else {}
    commands[MAIN] = ["/bin/sh", "-c", main_script(spec.commands, spec.output_patterns)]
    overrides = []
    for name in container_names(spec):
        override: dict[str, Any] = {
            "name": name,
            "command": commands[name],
            "resourceRequirements": _requirements(shares[name]),
        }
        if name == MAIN:
            override["environment"] = environment
        overrides.append(override)
    request: dict[str, Any] = {
        "jobName": identity.job_name,
        "jobQueue": job_queue,
        "jobDefinition": definition_name(spec),
        "ecsPropertiesOverride": {"taskProperties": [{"containers": overrides}]},
        "tags": identity.tags(),
        "propagateTags": True,
    }
    if spec.retry_strategy:
        request["retryStrategy"] = spec.retry_strategy
    if attempt_duration_seconds is not None:
        request["timeout"] = {"attemptDurationSeconds": max(MIN_ATTEMPT_SECONDS, int(attempt_duration_seconds))}
    return request


def queue_name_for(compute_environment_arn: str) -> str:
    """The queue this runner creates (once, then reuses) for a compute environment."""
    ce_name = compute_environment_arn.rsplit("/", 1)[-1]
    digest = hashlib.sha256(compute_environment_arn.encode()).hexdigest()[:8]
    return f"{DEFINITION_PREFIX}-{SLUG_RE.sub('-', ce_name)[:80]}-{digest}"


def bucket_and_key(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def output_name(key_under_bucket_path: str) -> str | None:
    """The XCom name of an object the outputs sidecar wrote, relative to its own directory."""
    for prefix in (WORK_OUTPUT_PREFIX, DIR_OUTPUT_PREFIX):
        if key_under_bucket_path.startswith(prefix):
            return key_under_bucket_path[len(prefix):]
    return None
