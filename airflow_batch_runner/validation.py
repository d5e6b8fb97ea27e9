"""Pure: a task's arguments checked, each refusal a ValueError naming the argument and what is accepted.

Run before anything is created in AWS (see DESIGN.md, "Errors before anything is created"): images, commands,
file names, the environment, tags, resources, retry strategy, fair share, the compute environment's platform.
No boto3, no Airflow runtime.
"""

from __future__ import annotations

import math
import re
from collections import ChainMap
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from pathlib import PurePosixPath
from typing import Any

from airflow_batch_runner.fargate import describe_fargate_pairs, is_valid_fargate_pair
from airflow_batch_runner.job_spec import Platform, Resources
from airflow_batch_runner.layout import RUNNER_DIR, RUNNER_ENV

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
IMAGE_RE = re.compile(
    r"^(?:[a-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Set by AWS Batch itself ("Environment variables cannot start with AWS_BATCH").
RESERVED_ENV_PREFIX = "AWS_BATCH"


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


def check_scheduling_priority(scheduling_priority: Any) -> None:
    """None, or a whole number 0-9999 (SubmitJob's schedulingPriorityOverride)."""
    if scheduling_priority is not None and (
        isinstance(scheduling_priority, bool) or not isinstance(scheduling_priority, int)
        or not 0 <= scheduling_priority <= MAX_SCHEDULING_PRIORITY
    ):
        raise ValueError(f"scheduling_priority must be a whole number from 0 to {MAX_SCHEDULING_PRIORITY}; "
                         f"got {scheduling_priority!r}")


def check_fair_share(
    share_identifier: str | None, scheduling_priority: int | None, scheduling_policy_arn: str | None
) -> None:
    """Fair-share arguments against the queue: AWS requires a share identifier on a queue with a scheduling
    policy and refuses one elsewhere; a priority is 0-9999 and only means something on such a queue."""
    check_scheduling_priority(scheduling_priority)
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
