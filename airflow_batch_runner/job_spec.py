"""Pure: a task's resolved configuration -> the AWS Batch job definition and SubmitJob request.

No boto3, no Airflow runtime: every function here is a plain transformation, tested without AWS.
The job is one ECS multi-container task sharing a volume (see DESIGN.md, "The job on AWS Batch"):
``inputs`` (AWS CLI, copies staged inputs in) -> ``main`` (the user's commands) -> ``outputs``
(AWS CLI, copies declared files and the output dir out). Also here: the request kept within AWS's size
limits (``fit_to_limits``) and the queue the runner creates. Where things live is ``layout``'s; the
checks of the arguments that resolve into a ``JobSpec`` are ``validation``'s.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from airflow_batch_runner.container_settings import ContainerSettings
from airflow_batch_runner.layout import (
    DIR_OUTPUT_PREFIX,
    INPUTS,
    INPUTS_PREFIX,
    LOG_GROUP,
    MAIN,
    OUTPUT_DIR,
    OUTPUTS,
    OUTPUTS_FILE,
    OUTPUTS_FILE_KEY,
    RUNNER_DIR,
    SCRIPT_PATH,
    SLUG_RE,
    STAGED_SCRIPT,
    VOLUME_NAME,
    VOLUME_ROOT,
    WORK_OUTPUT_PREFIX,
    WORKING_DIR,
    TaskIdentity,
)

Platform = Literal["FARGATE", "EC2"]

AWS_CLI_IMAGE = "public.ecr.aws/aws-cli/aws-cli:2.22.0"
DEFINITION_PREFIX = "airflow-batch-runner"
MIN_ATTEMPT_SECONDS = 60
# The tags of the job definitions the runner registers (a job that propagates its tags carries them too).
DEFINITION_TAGS: Mapping[str, str] = {"airflow:managed-by": "airflow-batch-runner"}
# The queue the runner creates cancels jobs AWS Batch cannot place, even with Airflow gone: after 10 minutes
# (AWS's least) for a misconfiguration, which never resolves itself, after 4 hours for missing capacity.
QUEUE_TIME_LIMIT_ACTIONS: tuple[dict[str, Any], ...] = (
    {"reason": "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE", "state": "RUNNABLE", "maxTimeSeconds": 600,
     "action": "CANCEL"},
    {"reason": "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT", "state": "RUNNABLE", "maxTimeSeconds": 600,
     "action": "CANCEL"},
    {"reason": "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY", "state": "RUNNABLE", "maxTimeSeconds": 14_400,
     "action": "CANCEL"},
)
# AWS Batch service quotas: "Maximum job payload size (for SubmitJob API operations) 30 KiB",
# "Maximum job definition size (for RegisterJobDefinition API operations) 24 KiB".
MAX_SUBMIT_JOB_BYTES = 30 * 1024
MAX_JOB_DEFINITION_BYTES = 24 * 1024
# ECS RunTask, which starts the job's task: "A total of 8192 characters are allowed for overrides",
# JSON formatting included. The per-run overrides are kept within it.
MAX_OVERRIDES_CHARS = 8192


@dataclass(frozen=True)
class Resources:
    """The whole job's request: vCPUs and MiB of memory."""

    cpu: float
    memory: int


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
    # The commands run from a script staged through the bucket path instead of the SubmitJob request.
    staged_commands: bool = False
    execution_role_arn: str | None = None
    task_role_arn: str | None = None
    region: str | None = None
    retry_strategy: Mapping[str, Any] | None = None
    # The user's tags (ours are added on submission and win on our keys), and fair-share scheduling.
    tags: Mapping[str, str] = field(default_factory=dict)
    propagate_tags: bool = True
    share_identifier: str | None = None
    scheduling_priority: int | None = None
    sidecar_image: str = AWS_CLI_IMAGE
    # Each sidecar's share; None: the default share (see split_resources).
    sidecar_resources: Resources | None = None
    # Ephemeral storage, architecture, Linux parameters and ulimits: in the job definition (no override takes them);
    # GPUs: in the main container's override.
    settings: ContainerSettings = field(default_factory=ContainerSettings)

    @property
    def has_outputs(self) -> bool:
        return self.bucket_path is not None


def split_resources(spec: JobSpec, sidecars: Sequence[str] | None = None) -> dict[str, Resources]:
    """Sidecars take a small share; main the rest, so that the job as a whole asks for ``resources``."""
    total = spec.resources
    sidecars = sidecar_names(spec) if sidecars is None else list(sidecars)
    if spec.sidecar_resources is not None:
        cpu_share, memory_share = spec.sidecar_resources.cpu, spec.sidecar_resources.memory
    else:
        cpu_share = 0.125 if total.cpu >= 1 else total.cpu / 8
        memory_share = 128 if total.memory >= 1024 else total.memory // 8
    shares = {name: Resources(cpu_share, memory_share) for name in sidecars}
    shares[MAIN] = Resources(total.cpu - cpu_share * len(sidecars), total.memory - memory_share * len(sidecars))
    return shares


def requirements(resources: Resources) -> list[dict[str, str]]:
    return [{"type": "VCPU", "value": f"{resources.cpu:g}"}, {"type": "MEMORY", "value": str(resources.memory)}]


def log_configuration(definition_name: str, region: str | None) -> dict[str, Any]:
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
        if name == MAIN:
            container.update(spec.settings.main_container_fields())
            container["mountPoints"] = [*mount, *spec.settings.mount_points()]
        previous = names[names.index(name) - 1] if names.index(name) else None
        if previous:
            container["dependsOn"] = [{"containerName": previous, "condition": "SUCCESS"}]
        containers.append(container)
    task: dict[str, Any] = {"containers": containers,
                            "volumes": [{"name": VOLUME_NAME}, *spec.settings.task_volumes()],
                            **spec.settings.task_fields()}
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
        container["resourceRequirements"] = requirements(shares[container["name"]])
        container["logConfiguration"] = log_configuration(name, spec.region)
        container["command"] = ["--version"] if container["name"] != MAIN else ["/bin/sh", "-c", "true"]
    return {"jobDefinitionName": name, **body, "tags": dict(DEFINITION_TAGS)}


# After the user's commands: declared outputs that are missing fail the container, naming each; a
# declared directory must hold something. The patterns are the positional parameters of the function.
_CHECK_OUTPUTS = r"""abr_check_outputs() {
  missing=0
  IFS=''  # a declared name with a space is one name; its glob still expands
  for p in "$@"; do
    for m in $p; do break; done
    if [ -d "$m" ]; then
      if [ -z "$(ls -A "$m")" ]; then
        echo "airflow-batch-runner: output directory $p in $WORKING_DIR is empty" >&2; missing=1
      fi
    elif [ ! -f "$m" ]; then
      echo "airflow-batch-runner: output file $p was not written in $WORKING_DIR (or is not a regular file)" >&2
      missing=1
    fi
  done
  return $missing
}"""
# The AWS CLI cannot upload a dangling symbolic link, a fifo, a socket or a device, and fails the
# outputs sidecar over any such entry under the volume: leave them out, saying so in the log.
_SKIP_SPECIAL = r"""abr_leave_out() {
  if [ -L "$1" ] && [ ! -e "$1" ]; then
    echo "airflow-batch-runner: not collecting $1: a dangling symbolic link" >&2; rm -f "$1"
  elif [ -e "$1" ] && [ ! -f "$1" ] && [ ! -d "$1" ]; then
    echo "airflow-batch-runner: not collecting $1: not a regular file (a fifo, socket or device)" >&2; rm -f "$1"
  fi
}
abr_walk() {
  for f in "$1"/* "$1"/.[!.]* "$1"/..?*; do
    abr_leave_out "$f"
    if [ -d "$f" ] && [ ! -L "$f" ]; then abr_walk "$f"; fi
  done
}
abr_skip_special() {
  if command -v find >/dev/null 2>&1; then
    find "$1" \( -type l -o -type p -o -type s -o -type b -o -type c \) -print |
      while IFS= read -r f; do abr_leave_out "$f"; done
  else
    abr_walk "$1"  # an image without find: the shell alone, slower on big trees
  fi
}"""


def command_lines(commands: Sequence[str]) -> list[str]:
    """The user's commands, each run so that the first one failing ends the script with its code."""
    return [f"{{ {command}\n}} || exit $?" for command in commands if command.strip()]


def staged_script(commands: Sequence[str]) -> str:
    """The file that carries commands too long for the SubmitJob request (see ``fit_to_limits``)."""
    return "\n".join(['cd "$WORKING_DIR" || exit 1', *command_lines(commands)]) + "\n"


def main_script(
    commands: Sequence[str], output_patterns: Sequence[str], collect: bool = False, staged: bool = False
) -> str:
    """The main container's shell script. The user's commands run in a subshell (or, staged, a child
    shell), so that an ``exit`` among them cannot skip what follows: the check that every declared
    output was written, and, when outputs are collected, leaving out what the AWS CLI cannot upload."""
    lines = ['mkdir -p "$WORKING_DIR" "$OUTPUT_DIR"', 'cd "$WORKING_DIR" || exit 1']
    if staged:
        lines.append(f'mv "$WORKING_DIR/{STAGED_SCRIPT}" {SCRIPT_PATH} || exit 1')
        lines.append(f'rmdir "$WORKING_DIR/{RUNNER_DIR}" 2>/dev/null')
        lines.append(f"/bin/sh {SCRIPT_PATH} || exit $?")
    else:
        lines += ["(", *command_lines(commands), ") || exit $?"]
    if output_patterns or collect:
        lines.append('cd "$WORKING_DIR" || exit 1')
    if output_patterns:
        quoted = " ".join(shlex.quote(p) for p in output_patterns)
        lines += [_CHECK_OUTPUTS, f"abr_check_outputs {quoted} || exit 1"]
    if collect:
        lines += [_SKIP_SPECIAL, 'abr_skip_special "$WORKING_DIR"', 'abr_skip_special "$OUTPUT_DIR"']
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
        # A declared directory is collected with everything in it.
        includes += ["--include", f"{WORK_OUTPUT_PREFIX}{pattern}", "--include", f"{WORK_OUTPUT_PREFIX}{pattern}/*"]
    commands[OUTPUTS] = [
        "s3", "cp", "--recursive", "--only-show-errors", f"{VOLUME_ROOT}/", spec.bucket_path,
        "--exclude", "*", *includes, "--include", f"{DIR_OUTPUT_PREFIX}*", "--include", OUTPUTS_FILE_KEY,
    ]
    return commands


def _container_overrides(spec: JobSpec) -> list[dict[str, Any]]:
    shares = split_resources(spec)
    environment = job_environment(spec)
    commands = _sidecar_commands(spec) if spec.bucket_path else {}
    script = main_script(spec.commands, spec.output_patterns, collect=spec.has_outputs, staged=spec.staged_commands)
    commands[MAIN] = ["/bin/sh", "-c", script]
    overrides = []
    for name in container_names(spec):
        override: dict[str, Any] = {
            "name": name,
            "command": commands[name],
            "resourceRequirements": requirements(shares[name]),
        }
        if name == MAIN:
            override["resourceRequirements"] += spec.settings.main_requirements()
            override["environment"] = environment
        overrides.append(override)
    return overrides


def build_submit_request(
    spec: JobSpec,
    identity: TaskIdentity,
    job_queue: str,
    attempt_duration_seconds: int | None,
) -> dict[str, Any]:
    """The SubmitJob request: per-run commands, environment and resources travel as overrides."""
    request: dict[str, Any] = {
        "jobName": identity.job_name,
        "jobQueue": job_queue,
        "jobDefinition": definition_name(spec),
        "ecsPropertiesOverride": {"taskProperties": [{"containers": _container_overrides(spec)}]},
        "tags": {**spec.tags, **identity.tags()},
        "propagateTags": spec.propagate_tags,
        **spec.settings.submit_fields(),
    }
    if spec.retry_strategy:
        request["retryStrategy"] = spec.retry_strategy
    if spec.share_identifier:
        request["shareIdentifier"] = spec.share_identifier
    if spec.scheduling_priority is not None:
        request["schedulingPriorityOverride"] = spec.scheduling_priority
    if attempt_duration_seconds is not None:
        request["timeout"] = {"attemptDurationSeconds": max(MIN_ATTEMPT_SECONDS, int(attempt_duration_seconds))}
    return request


def json_size(request: Mapping[str, Any]) -> int:
    """Bytes of a request body as botocore serialises it (``json.dumps`` with its default separators)."""
    return len(json.dumps(request).encode())


def fit_to_limits(
    spec: JobSpec,
    identity: TaskIdentity,
    job_queue: str,
    attempt_duration_seconds: int | None,
    build: Callable[[JobSpec], Mapping[str, Any]] | None = None,
) -> JobSpec:
    """The spec whose SubmitJob request AWS accepts: commands too long for it run from a script staged
    through the bucket path; an environment too big for it is a ValueError naming ``env``. ``build`` makes
    the request that is submitted (one job's by default; see ``array_spec.fit_to_limits``)."""

    def single(candidate: JobSpec) -> Mapping[str, Any]:
        return build_submit_request(candidate, identity, job_queue, attempt_duration_seconds)

    def overrides(candidate: JobSpec) -> int:
        return len(json.dumps((build or single)(candidate)["ecsPropertiesOverride"]))

    def fits(candidate: JobSpec) -> bool:
        request = (build or single)(candidate)
        return len(json.dumps(request["ecsPropertiesOverride"])) <= MAX_OVERRIDES_CHARS and \
            json_size(request) <= MAX_SUBMIT_JOB_BYTES

    if fits(spec):
        return spec
    if not fits(replace(spec, commands=("true",))):
        raise ValueError(_what_does_not_fit(replace(spec, commands=("true",)), overrides, fits))
    if spec.bucket_path is None:
        raise ValueError(
            f"commands: {sum(len(c) for c in spec.commands)} characters of commands do not fit in the SubmitJob "
            f"request (AWS starts a job with at most {MAX_OVERRIDES_CHARS} characters of overrides); pass "
            "bucket='my-bucket' so that they travel as a script file through S3"
        )
    staged = replace(spec, staged_commands=True, has_inputs=True)
    if not fits(staged):
        raise ValueError(_what_does_not_fit(staged, overrides, fits))
    return staged


def _what_does_not_fit(
    spec: JobSpec, overrides: Callable[[JobSpec], int], fits: Callable[[JobSpec], bool]
) -> str:
    """The message for a spec whose commands take no room and still does not fit: what takes the room (the
    environment, the declared output names, or both: each with its share of the container overrides) and the fix."""
    total = overrides(spec)
    env_share = total - overrides(replace(spec, env={}))
    names = len(spec.output_patterns)
    outputs_share = total - overrides(replace(spec, output_patterns=()))
    of = f"of the {total} characters of the job's container overrides"
    limit = f"ECS starts a job with at most {MAX_OVERRIDES_CHARS} (JSON included)"
    env_fix = "pass large values as input_files instead"
    outputs_fix = (
        "declare fewer names: a folder ('results', collected with everything in it), a glob ('out_*.csv'), or "
        "write the files to {{ output_dir }}, which is collected whole"
    )
    without_env = env_share == 0 or fits(replace(spec, env={}))
    without_outputs = outputs_share == 0 or fits(replace(spec, output_patterns=()))
    if outputs_share == 0 or (without_env and not without_outputs):
        return f"env: the environment takes {env_share} {of}; {limit}. Nothing else is that big: {env_fix}"
    if env_share == 0 or (without_outputs and not without_env):
        return (f"output_files: the {names} declared names take {outputs_share} {of} (the main container checks "
                f"each, the outputs sidecar collects each); {limit}. Nothing else is that big: {outputs_fix}")
    return (f"env and output_files: the environment takes {env_share} and the {names} declared output names "
            f"{outputs_share} {of}; {limit}. Make {'either' if without_env else 'both'} smaller: {env_fix}, "
            f"{'or' if without_env else 'and'} {outputs_fix}")


def queue_name_for(compute_environment_arn: str) -> str:
    """The queue this runner creates (once, then reuses) for a compute environment."""
    ce_name = compute_environment_arn.rsplit("/", 1)[-1]
    digest = hashlib.sha256(compute_environment_arn.encode()).hexdigest()[:8]
    return f"{DEFINITION_PREFIX}-{SLUG_RE.sub('-', ce_name)[:80]}-{digest}"
