"""Pure: ``container_properties``, the escape hatch: AWS Batch's ``TaskContainerProperties`` members that no argument
of the operator covers, merged into the main container of the job definition (content-addressed like the rest).

What the runner owns, or another argument says, is refused naming the argument to use instead: the container's
name, image, command, environment, resources, dependencies, essential flag, mount points (the runner's volume holds
the working and output dirs) and logging (the task log follows the main container's ``awslogs`` stream). What is
left is checked as AWS checks it, per platform. No boto3, no Airflow runtime.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_batch_runner.layout import RUNNER_ENV

# TaskContainerProperties members the runner sets, and what to use instead.
OWNED: Mapping[str, str] = {
    "name": "the runner names its containers (inputs, main, outputs)",
    "essential": "the runner decides which container ends the task",
    "dependsOn": "the runner orders its containers (inputs -> main -> outputs)",
    "image": "use container_image",
    "command": "use commands",
    "environment": "use env",
    "resourceRequirements": "use resources (and gpus)",
    "linuxParameters": "use shared_memory, init_process and tmpfs",
    "ulimits": "use ulimits",
    "repositoryCredentials": "use repository_credentials",
    "mountPoints": "use volumes (the runner mounts its own volume, the working and output dirs, at /airflow-batch)",
    "logConfiguration": "the runner sends the main container's output to CloudWatch Logs (awslogs) and follows it "
                        "into the task log",
    "firelensConfiguration": "the runner sends the main container's output to CloudWatch Logs (awslogs) and follows "
                             "it into the task log",
}
# The members left, as the API reference describes them.
ALLOWED = ("secrets", "user", "privileged", "readonlyRootFilesystem", "startTimeout", "stopTimeout")
# startTimeout, stopTimeout: "The minimum value is 2 seconds and the maximum value for Fargate is 120 seconds."
MIN_TIMEOUT, MAX_FARGATE_TIMEOUT = 2, 120
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check(value: Any) -> tuple[tuple[str, Any], ...]:
    """The members in shape, each as AWS takes it, or a ValueError naming ``container_properties`` and the fix."""
    if value is None or value == "" or value == {}:
        return ()
    if not isinstance(value, Mapping):
        raise ValueError(f"container_properties must be a mapping of AWS Batch container properties "
                         f"(TaskContainerProperties), e.g. {{\"user\": \"1000\"}}; got {type(value).__name__}")
    checked: list[tuple[str, Any]] = []
    for key, item in value.items():
        if key in OWNED:
            raise ValueError(f"container_properties[{key!r}] is the runner's: {OWNED[key]}")
        if key not in ALLOWED:
            raise ValueError(f"container_properties[{key!r}] is not a container property the runner passes on; it "
                             f"takes {', '.join(ALLOWED)} (the rest of TaskContainerProperties has its own argument)")
        checked.append((key, _member(key, item)))
    return tuple(checked)


def _member(key: str, item: Any) -> Any:
    where = f"container_properties[{key!r}]"
    if key in ("privileged", "readonlyRootFilesystem"):
        if not isinstance(item, bool):
            raise ValueError(f"{where} must be True or False; got {item!r}")
        return item
    if key == "user":
        if not isinstance(item, str) or not item.strip() or any(c.isspace() for c in item):
            raise ValueError(f"{where} must be a user as Docker takes it (user, user:group, uid, uid:gid); "
                             f"got {item!r}")
        return item
    if key in ("startTimeout", "stopTimeout"):
        if isinstance(item, bool) or not isinstance(item, int) or item < MIN_TIMEOUT:
            raise ValueError(f"{where} must be a whole number of seconds, at least {MIN_TIMEOUT}; got {item!r}")
        return item
    return _secrets(item, where)


def _secrets(item: Any, where: str) -> list[dict[str, str]]:
    """``[{"name": "TOKEN", "valueFrom": "<Secrets Manager ARN or SSM parameter>"}]``, as AWS's Secret."""
    if isinstance(item, (str, Mapping)) or not isinstance(item, Sequence):
        raise ValueError(f'{where} must be a list of {{"name": ..., "valueFrom": ...}}; got {item!r}')
    secrets: list[dict[str, str]] = []
    for index, secret in enumerate(item):
        at = f"{where}[{index}]"
        if not isinstance(secret, Mapping) or set(secret) != {"name", "valueFrom"}:
            raise ValueError(f'{at} must be {{"name": ..., "valueFrom": ...}}; got {secret!r}')
        name, source = secret["name"], secret["valueFrom"]
        if not isinstance(name, str) or not ENV_NAME_RE.match(name) or name.startswith("AWS_BATCH"):
            raise ValueError(f"{at}.name {name!r} must be an environment variable name (letters, digits, _; not "
                             "starting with a digit or AWS_BATCH)")
        if name in RUNNER_ENV:
            raise ValueError(f"{at}.name {name!r} is set by the runner; choose another name")
        if any(s["name"] == name for s in secrets):
            raise ValueError(f"{at}.name {name!r} is given twice")
        if not isinstance(source, str) or not source:
            raise ValueError(f"{at}.valueFrom must be a Secrets Manager secret ARN or an SSM parameter")
        secrets.append({"name": name, "valueFrom": source})
    return secrets


def check_platform(properties: tuple[tuple[str, Any], ...], fargate: bool) -> None:
    """What Fargate refuses: ``privileged`` ("not supported for ... tasks run on Fargate"), timeouts above 120 s."""
    if not fargate:
        return
    for key, item in properties:
        if key == "privileged" and item:
            raise ValueError("container_properties['privileged'] is not supported for jobs on Fargate (AWS); use an "
                             "EC2 compute environment, or leave it out")
        if key in ("startTimeout", "stopTimeout") and item > MAX_FARGATE_TIMEOUT:
            raise ValueError(f"container_properties[{key!r}] is at most {MAX_FARGATE_TIMEOUT} s on Fargate (AWS); "
                             f"got {item}")


def check_env(properties: tuple[tuple[str, Any], ...], env: Mapping[str, str]) -> None:
    """A secret and an ``env`` variable of the same name would race for the variable: refused."""
    for key, item in properties:
        if key == "secrets":
            both = sorted({s["name"] for s in item} & set(env))
            if both:
                raise ValueError(f"container_properties['secrets'] and env both set {', '.join(both)}; keep one")
