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
from collections import ChainMap
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
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
# RetryStrategy's evaluateOnExit: at most 5 rules; each pattern at most 512 characters: onStatusReason and onReason
# "letters, numbers, periods (.), colons (:), and white space", onExitCode "only numbers", each may end with *.
MAX_EVALUATE_ON_EXIT = 5
MAX_EXIT_PATTERN = 512
_REASON_PATTERN = re.compile(r"[A-Za-z0-9.:\s]*\*?")
EXIT_RULE_PATTERNS = {"onStatusReason": _REASON_PATTERN, "onReason": _REASON_PATTERN,
                      "onExitCode": re.compile(r"[0-9]*\*?")}
MAX_TAGS = 50
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
MAX_SCHEDULING_PRIORITY = 9999
# SubmitJob's shareIdentifier: "limited to 255 alphanumeric characters, and can be followed by an asterisk (*)".
SHARE_IDENTIFIER_RE = re.compile(r"[A-Za-z0-9]{1,255}\*?")
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
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Set by AWS Batch itself ("Environment variables cannot start with AWS_BATCH"), and by the runner.
RESERVED_ENV_PREFIX = "AWS_BATCH"
RUNNER_ENV = ("WORKING_DIR", "OUTPUT_DIR", "BUCKET_PATH", "OUTPUTS_FILE")
# Long commands travel as this script: staged under inputs/ (so the inputs sidecar copies it into the
# working dir) and moved out of the working dir by the main container before it runs.
RUNNER_DIR = ".airflow-batch-runner"
STAGED_SCRIPT = f"{RUNNER_DIR}/commands.sh"
SCRIPT_PATH = f"{VOLUME_ROOT}/commands.sh"
# AWS Batch service quotas: "Maximum job payload size (for SubmitJob API operations) 30 KiB",
# "Maximum job definition size (for RegisterJobDefinition API operations) 24 KiB".
MAX_SUBMIT_JOB_BYTES = 30 * 1024
MAX_JOB_DEFINITION_BYTES = 24 * 1024
# ECS RunTask, which starts the job's task: "A total of 8192 characters are allowed for overrides",
# JSON formatting included. The per-run overrides are kept within it.
MAX_OVERRIDES_CHARS = 8192
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
    """A file name or glob relative to the working dir that cannot escape it, nor name the dir itself."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{argument}: file names must be non-empty strings; got {name!r}")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValueError(
            f"{argument}: {name!r} contains a control character (newline, tab, ...); use a plain file name"
        )
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name:
        raise ValueError(
            f"{argument}: {name!r} escapes the working directory; use a path relative to it, without '..'"
        )
    if str(path) == ".":
        raise ValueError(f"{argument}: {name!r} names the working directory itself; name a file or a folder in it")
    if path.parts[0] == RUNNER_DIR:
        raise ValueError(f"{argument}: {name!r} is under {RUNNER_DIR}/, which the runner reserves; choose another name")
    return str(path)


def check_input_files(files: Mapping[Any, Any], argument: str = "input_files") -> dict[str, str]:
    """name -> content or ``s3://`` URI, each name normalised by ``check_relative_name``; two names of one file
    (``a.txt`` and ``./a.txt``, ``a/`` and ``a``) are a ValueError naming both, never one silently dropped."""
    checked: dict[str, str] = {}
    given: dict[str, Any] = {}
    for name, value in files.items():
        path = check_relative_name(name, argument)
        if not isinstance(value, str):
            raise ValueError(f"{argument}[{name!r}] must be a string (content or s3:// URI); got {value!r}")
        if path in given:
            raise ValueError(
                f"{argument}: {given[path]!r} and {name!r} name the same file {path!r} of the working dir; "
                "give each file one name"
            )
        checked[path], given[path] = value, name
    return checked


def check_staged_names(shared: Mapping[str, Iterable[str]], children: Sequence[Iterable[str]] = ()) -> None:
    """The files staged into one working dir, by the argument that names them (``input_files``,
    ``project_files``; names normalised): no file named twice, and no file where another name needs a folder
    (``a`` and ``a/b.txt``). Each array child's own names (``array_input_files[i]``) are checked against the
    shared ones: a child's file would silently replace a shared file of the same name."""
    files: dict[str, str] = {}  # name -> the argument that stages it
    folders: dict[str, str] = {}  # folder -> the argument of a file in it
    for argument, names in shared.items():
        for name in names:
            _stage_one(name, argument, files, folders)
    for index, names in enumerate(children):
        child_files: ChainMap[str, str] = ChainMap({}, files)
        child_folders: ChainMap[str, str] = ChainMap({}, folders)
        for name in names:
            _stage_one(name, f"array_input_files[{index}]", child_files, child_folders)


def _stage_one(name: str, argument: str, files: MutableMapping[str, str], folders: MutableMapping[str, str]) -> None:
    if name in files:
        raise ValueError(
            f"{argument}: {name!r} is also a file of {files[name]}, staged to the same place in the working dir: "
            "one would silently replace the other. Rename one of them"
        )
    if name in folders:
        raise ValueError(
            f"{argument}: {name!r} is a file where {folders[name]} puts a folder of files in the working dir; "
            "rename one of them"
        )
    parts = PurePosixPath(name).parts
    parents = ["/".join(parts[:i]) for i in range(1, len(parts))]
    for parent in parents:
        if parent in files:
            raise ValueError(
                f"{argument}: {name!r} needs a folder {parent!r} in the working dir, where {files[parent]} puts a "
                "file; rename one of them"
            )
    files[name] = argument
    for parent in parents:
        folders.setdefault(parent, argument)


def check_env(env: Any) -> dict[str, str]:
    """Environment variable names a shell can read, none that AWS Batch or the runner sets."""
    if env is None:
        return {}
    if not isinstance(env, Mapping):
        raise ValueError(f"env must be a mapping of variable names to values; got {type(env).__name__}")
    checked = {}
    for name, value in env.items():
        if not isinstance(name, str) or not ENV_NAME_RE.match(name):
            raise ValueError(
                f"env: {name!r} is not a valid environment variable name; use letters, digits and underscores, "
                "not starting with a digit"
            )
        if name.startswith(RESERVED_ENV_PREFIX):
            raise ValueError(
                f"env: {name!r} starts with {RESERVED_ENV_PREFIX}, which AWS Batch reserves for the variables it "
                "sets; rename it"
            )
        if name in RUNNER_ENV:
            raise ValueError(
                f"env: {name!r} is set by the runner (with {', '.join(RUNNER_ENV[:-1])} and {RUNNER_ENV[-1]}); "
                "choose another name"
            )
        text = str(value)
        if "\x00" in text:
            raise ValueError(f"env: the value of {name!r} contains a NUL character, which no environment can hold")
        checked[name] = text
    return checked


def check_tags(tags: Any, ours: Mapping[str, str], propagated: Mapping[str, str] | None = None) -> dict[str, str]:
    """The user's job tags as AWS takes them: at most MAX_TAGS with ours, keys of 1-128 and values of at most
    256 characters, no ``aws:`` key. Our own keys are ours (dropped from the user's, with ours winning).
    ``propagated``: the job definition's tags, when the job propagates its tags to its ECS task: AWS then adds
    them, and fails the job (FAILED, after submission) when the job's and the definition's exceed MAX_TAGS."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise ValueError(f"tags must be a mapping of tag keys to values; got {type(tags).__name__}")
    checked: dict[str, str] = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 128 or key.lower().startswith("aws:"):
            raise ValueError(f"tags: {key!r} is not a valid tag key: 1 to 128 characters, not starting with aws:")
        if not isinstance(value, str) or len(value) > 256:
            raise ValueError(f"tags[{key!r}] must be a string of at most 256 characters; got {value!r}")
        checked[key] = value
    total = len(set(checked) | set(ours))
    added = set(propagated or {}) - set(checked) - set(ours)
    if total > MAX_TAGS and not added:
        raise ValueError(
            f"tags: AWS allows {MAX_TAGS} tags on a job and the runner sets {len(ours)}; "
            f"give at most {MAX_TAGS - len(ours)} of your own (got {len(checked)})"
        )
    if total + len(added) > MAX_TAGS:
        raise ValueError(
            f"tags: with propagate_tags=True AWS Batch copies the job's tags and its job definition's "
            f"({', '.join(sorted(added))}) to the ECS task, and fails a job with more than {MAX_TAGS} of them in all; "
            f"the runner sets {len(ours)} on the job and {len(added)} on the definition: give at most "
            f"{MAX_TAGS - len(ours) - len(added)} of your own (got {len(checked)}), or pass propagate_tags=False"
        )
    return checked


def check_fair_share(
    share_identifier: str | None, scheduling_priority: int | None, scheduling_policy_arn: str | None
) -> None:
    """Fair-share arguments against the queue: AWS requires a share identifier on a queue with a scheduling
    policy and refuses one elsewhere; a priority is 0-9999 and only means something on such a queue."""
    if scheduling_priority is not None and (
        isinstance(scheduling_priority, bool) or not isinstance(scheduling_priority, int)
        or not 0 <= scheduling_priority <= MAX_SCHEDULING_PRIORITY
    ):
        raise ValueError(f"scheduling_priority must be a whole number from 0 to {MAX_SCHEDULING_PRIORITY}; "
                         f"got {scheduling_priority!r}")
    if share_identifier is not None and not (isinstance(share_identifier, str)
                                             and SHARE_IDENTIFIER_RE.fullmatch(share_identifier)):
        raise ValueError(
            f"share_identifier {share_identifier!r} is not one AWS Batch accepts: 1 to 255 letters and digits only "
            "(no '_', '-', space or other character), optionally followed by '*'; e.g. 'teamA'"
        )
    if scheduling_policy_arn and not share_identifier:
        raise ValueError(
            f"the job queue has the fair-share scheduling policy {scheduling_policy_arn}: AWS Batch requires a "
            "share_identifier for its jobs"
        )
    if not scheduling_policy_arn and (share_identifier or scheduling_priority is not None):
        raise ValueError(
            "share_identifier and scheduling_priority need a fair-share queue: pass job_queue_arn of a queue with a "
            "scheduling policy (the queue the runner creates has none)"
        )


def retry_strategy_for(spot_retries: int, retry_strategy: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The job's retryStrategy: Spot interruptions retried ``spot_retries`` times and nothing else, or the
    user's own strategy as given; None (one attempt) by default."""
    if isinstance(spot_retries, bool) or not isinstance(spot_retries, int) or not 0 <= spot_retries < MAX_ATTEMPTS:
        raise ValueError(f"spot_retries must be a whole number from 0 to {MAX_ATTEMPTS - 1}; got {spot_retries!r}")
    if retry_strategy is not None:
        if spot_retries:
            raise ValueError("give spot_retries or retry_strategy, not both: retry_strategy replaces the Spot rules")
        return check_retry_strategy(retry_strategy)
    if not spot_retries:
        return None
    return {"attempts": spot_retries + 1, "evaluateOnExit": [dict(rule) for rule in SPOT_RETRY_RULES]}


def check_retry_strategy(strategy: Any) -> dict[str, Any]:
    """AWS Batch's RetryStrategy within its documented bounds (API reference: RetryStrategy, EvaluateOnExit), so
    that SubmitJob cannot refuse it after something was created: ``attempts`` 1-10; at most 5 ``evaluateOnExit``
    rules, each an ``action`` RETRY or EXIT (any case) and optional patterns of at most 512 characters:
    ``onStatusReason`` and ``onReason`` letters, digits, periods, colons and white space, ``onExitCode`` digits,
    each optionally ending with ``*``."""
    example = ('e.g. {"attempts": 3, "evaluateOnExit": [{"onExitCode": "137", "action": "RETRY"}, '
               '{"onReason": "*", "action": "EXIT"}]}')
    if not isinstance(strategy, Mapping) or not strategy:
        raise ValueError(f"retry_strategy is AWS Batch's RetryStrategy, a dict, {example}; got {strategy!r}")
    unknown = sorted(str(key) for key in strategy if key not in ("attempts", "evaluateOnExit"))
    if unknown:
        raise ValueError(f"retry_strategy has no field {unknown[0]!r}: AWS Batch's RetryStrategy has attempts and "
                         f"evaluateOnExit, {example}")
    attempts = strategy.get("attempts")
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= MAX_ATTEMPTS:
        raise ValueError(f"retry_strategy: attempts must be a whole number from 1 to {MAX_ATTEMPTS} (AWS Batch's "
                         f"bounds; it is required with evaluateOnExit); got {attempts!r}")
    rules = strategy.get("evaluateOnExit")
    if rules is None:
        return dict(strategy)
    if isinstance(rules, (str, bytes, Mapping)) or not isinstance(rules, Sequence) or \
            len(rules) > MAX_EVALUATE_ON_EXIT:
        raise ValueError(f"retry_strategy: evaluateOnExit must be a list of at most {MAX_EVALUATE_ON_EXIT} rules "
                         f"(AWS Batch's limit; the first that matches decides); got {rules!r}")
    return {**strategy, "evaluateOnExit": [_check_exit_rule(index, rule) for index, rule in enumerate(rules)]}


def _check_exit_rule(index: int, rule: Any) -> dict[str, Any]:
    where = f"retry_strategy: evaluateOnExit[{index}]"
    if not isinstance(rule, Mapping):
        raise ValueError(f'{where} must be a dict such as {{"onExitCode": "137", "action": "RETRY"}}; got {rule!r}')
    unknown = sorted(str(key) for key in rule if key not in ("action", *EXIT_RULE_PATTERNS))
    if unknown:
        raise ValueError(f"{where} has no field {unknown[0]!r}; AWS Batch's fields are action, "
                         f"{', '.join(EXIT_RULE_PATTERNS)}")
    action = rule.get("action")
    if not isinstance(action, str) or action.upper() not in ("RETRY", "EXIT"):
        raise ValueError(f"{where}: action must be RETRY or EXIT (any case); got {action!r}")
    for name, allowed in EXIT_RULE_PATTERNS.items():
        pattern = rule.get(name)
        if pattern is None:
            continue
        if not isinstance(pattern, str) or len(pattern) > MAX_EXIT_PATTERN or not allowed.fullmatch(pattern):
            kind = "digits" if name == "onExitCode" else "letters, digits, periods, colons and white space"
            raise ValueError(
                f"{where}: {name} {pattern!r} is not a pattern AWS Batch accepts: at most {MAX_EXIT_PATTERN} "
                f"characters of {kind}, optionally ending with * (which matches any rest)"
            )
    return dict(rule)


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


def is_s3_uri(value: str) -> bool:
    """An input file's value that names an object to copy: ``s3://...`` on one line. Anything else, a value with a
    line break included (a text that starts with ``s3://``), is the file's content."""
    return value.startswith("s3://") and "\n" not in value and "\r" not in value


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


def output_names(keys_under_bucket_path: Iterable[str]) -> dict[str, str]:
    """XCom name -> key for every collected object, each reachable. A file is named relative to the
    dir it came from; a file of the output dir whose relative name a working-dir file already has is
    named by its full path in the container (``{{ output_dir }}/<name>``), which no declared name can be."""
    work: dict[str, str] = {}
    out: dict[str, str] = {}
    for key in keys_under_bucket_path:
        name = output_name(key)
        if name:
            (work if key.startswith(WORK_OUTPUT_PREFIX) else out)[name] = key
    names = dict(work)
    for name, key in out.items():
        names[f"{OUTPUT_DIR}/{name}" if name in work else name] = key
    return names
