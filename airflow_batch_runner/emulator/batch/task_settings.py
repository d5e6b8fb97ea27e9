"""What a job definition asks of its task and containers beyond resources: ephemeral storage, runtime platform,
Linux parameters, ulimits and a private registry's credentials.

``check`` is RegisterJobDefinition's: AWS's bounds and what each platform refuses, from the API reference
(EphemeralStorage, RuntimePlatform, LinuxParameters, Tmpfs, Ulimit, ContainerProperties, TaskContainerProperties).
The rest is what the emulator makes of them on this machine: the variables a container can check
(``exported``), the ulimits applied to its process (``with_ulimits``), a directory standing in for each tmpfs
mount (``tmpfs_paths``), the registry credentials read at task start (``registry_failure``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from airflow_batch_runner.container_settings import (
    CPU_ARCHITECTURES,
    MAX_EPHEMERAL_GIB,
    MIN_EPHEMERAL_GIB,
    TMPFS_MOUNT_OPTIONS,
    ULIMIT_NAMES,
)
from airflow_batch_runner.emulator.batch.validation import ClientException

OS_FAMILIES = ("LINUX", "WINDOWS_SERVER_2019_CORE", "WINDOWS_SERVER_2019_FULL", "WINDOWS_SERVER_2022_CORE",
               "WINDOWS_SERVER_2022_FULL")
# LinuxParameters: devices, maxSwap, sharedMemorySize, swappiness, tmpfs "isn't applicable to jobs that are running
# on Fargate resources".
NOT_ON_FARGATE = ("devices", "maxSwap", "sharedMemorySize", "swappiness", "tmpfs")
MIN_TIMEOUT, MAX_FARGATE_TIMEOUT = 2, 120  # startTimeout, stopTimeout
FARGATE_DEFAULT_EPHEMERAL_GIB = 20  # a Fargate task without ephemeralStorage
# The variables the emulator sets in a container, standing in for what it cannot grant on this machine.
EPHEMERAL_VARIABLE = "EMULATOR_EPHEMERAL_STORAGE_GIB"
ARCHITECTURE_VARIABLE = "EMULATOR_CPU_ARCHITECTURE"
SHM_VARIABLE = "EMULATOR_SHM_SIZE_MIB"
INIT_VARIABLE = "EMULATOR_INIT_PROCESS"
GPUS_VARIABLE = "EMULATOR_GPUS"


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check(task: Mapping[str, Any], containers: Iterable[Mapping[str, Any]], fargate: bool, where: str,
          container_properties: bool = False) -> None:
    """``task`` holds the task-level fields (an ecsProperties task, or containerProperties itself)."""
    for name in ("ephemeralStorage", "runtimePlatform"):
        if task.get(name) is not None and not fargate:
            raise ClientException(f"{where}.{name} is only for jobs running on Fargate resources; this job "
                                  "definition's platformCapabilities is EC2")
    storage = task.get("ephemeralStorage")
    if storage is not None:
        size = storage.get("sizeInGiB") if isinstance(storage, Mapping) else None
        if not _integer(size) or not MIN_EPHEMERAL_GIB <= size <= MAX_EPHEMERAL_GIB:  # type: ignore[operator]
            raise ClientException(f"{where}.ephemeralStorage.sizeInGiB must be from {MIN_EPHEMERAL_GIB} to "
                                  f"{MAX_EPHEMERAL_GIB} GiB; got {size!r}")
    platform = task.get("runtimePlatform")
    if platform is not None:
        architecture = platform.get("cpuArchitecture", "X86_64")
        family = platform.get("operatingSystemFamily", "LINUX")
        if architecture not in CPU_ARCHITECTURES:
            raise ClientException(f"{where}.runtimePlatform.cpuArchitecture must be one of "
                                  f"{', '.join(CPU_ARCHITECTURES)}; got {architecture!r}")
        if family not in OS_FAMILIES:
            raise ClientException(f"{where}.runtimePlatform.operatingSystemFamily must be one of "
                                  f"{', '.join(OS_FAMILIES)}; got {family!r}")
        if family != "LINUX":
            raise ClientException(f"{where}.runtimePlatform: Windows containers are not supported by this emulator")
    for container in containers:
        at = f"{where} container {container.get('name', 'default')!r}"
        _check_repository_credentials(container.get("repositoryCredentials"), task, at)
        _check_start_and_stop(container, fargate, at)
        _check_linux(container.get("linuxParameters") or {}, fargate, at)
        if fargate and container_properties and container.get("ulimits"):
            raise ClientException(f"{at}: ulimits isn't applicable to jobs that are running on Fargate resources")
        _check_ulimits(container.get("ulimits") or [], at)


def _check_repository_credentials(credentials: Any, task: Mapping[str, Any], at: str) -> None:
    """RepositoryCredentials: credentialsParameter, the secret's ARN, is required; ECS reads it with the task execution
    role ("Private registry authentication": the task execution role is required)."""
    if credentials is None:
        return
    parameter = credentials.get("credentialsParameter") if isinstance(credentials, Mapping) else None
    if not isinstance(parameter, str) or not parameter:
        raise ClientException(f"{at}: repositoryCredentials.credentialsParameter must be the ARN of a secret")
    if not task.get("executionRoleArn"):
        raise ClientException(f"{at}: repositoryCredentials needs an executionRoleArn, with which the private "
                              "registry's credentials are read")


def _check_start_and_stop(container: Mapping[str, Any], fargate: bool, at: str) -> None:
    """``privileged``: "not supported for ... tasks run on Fargate"; ``startTimeout``, ``stopTimeout``: "The minimum
    value is 2 seconds and the maximum value for Fargate is 120 seconds"."""
    if fargate and container.get("privileged"):
        raise ClientException(f"{at}: privileged is not supported for jobs that are running on Fargate resources")
    for name in ("startTimeout", "stopTimeout"):
        value = container.get(name)
        if value is None:
            continue
        high = MAX_FARGATE_TIMEOUT if fargate else None
        if not _integer(value) or value < MIN_TIMEOUT or (high is not None and value > high):
            bound = f"from {MIN_TIMEOUT} to {high}" if high else f"at least {MIN_TIMEOUT}"
            raise ClientException(f"{at}: {name} must be a whole number of seconds {bound}; got {value!r}")


def registry_failure(container: Mapping[str, Any], read: Callable[[str], str | None]) -> str | None:
    """The task's stop reason when the container's registry credentials cannot be read (``read``: the secret's
    string, None when missing), or are not the ``{"username": ..., "password": ...}`` ECS pulls the image with."""
    ref = (container.get("repositoryCredentials") or {}).get("credentialsParameter")
    if not ref:
        return None
    text = read(str(ref))
    prefix = f"ResourceInitializationError: unable to pull secrets or registry auth: container {container['name']!r}"
    if text is None:
        return f"{prefix}: unable to retrieve the registry credentials secret {ref!r}: not found"
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(isinstance(value.get(k), str) for k in ("username", "password")):
        return f"{prefix}: the secret {ref!r} is not a JSON object with a username and a password"
    return None


def _check_linux(linux: Mapping[str, Any], fargate: bool, at: str) -> None:
    if fargate:
        for name in NOT_ON_FARGATE:
            if linux.get(name) not in (None, []):
                raise ClientException(f"{at}: linuxParameters.{name} isn't applicable to jobs that are running on "
                                      "Fargate resources")
    for name, low, high in (("sharedMemorySize", 0, None), ("maxSwap", 0, None), ("swappiness", 0, 100)):
        value = linux.get(name)
        if value is not None and (not _integer(value) or value < low or (high is not None and value > high)):
            bound = f"from {low} to {high}" if high is not None else f"{low} or more"
            raise ClientException(f"{at}: linuxParameters.{name} must be a whole number {bound}; got {value!r}")
    for mount in linux.get("tmpfs") or []:
        path, size = mount.get("containerPath"), mount.get("size")
        if not isinstance(path, str) or not path.startswith("/") or not _integer(size):
            raise ClientException(f"{at}: a tmpfs mount needs an absolute containerPath and a size in MiB; "
                                  f"got {mount!r}")
        wrong = [o for o in mount.get("mountOptions") or [] if o not in TMPFS_MOUNT_OPTIONS]
        if wrong:
            raise ClientException(f"{at}: tmpfs mountOptions {wrong} are not valid")


def _check_ulimits(limits: Iterable[Mapping[str, Any]], at: str) -> None:
    for limit in limits:
        if limit.get("name") not in ULIMIT_NAMES:
            raise ClientException(f"{at}: ulimit name {limit.get('name')!r} is not valid; use one of "
                                  f"{', '.join(ULIMIT_NAMES)}")
        if not _integer(limit.get("softLimit")) or not _integer(limit.get("hardLimit")):
            raise ClientException(f"{at}: ulimit {limit['name']!r} needs whole softLimit and hardLimit values")


def exported(task: Mapping[str, Any], container: Mapping[str, Any], fargate: bool) -> dict[str, str]:
    """What the container is granted that this machine cannot give, as variables a check in the job can read."""
    env: dict[str, str] = {}
    if fargate:
        storage = task.get("ephemeralStorage") or {}
        env[EPHEMERAL_VARIABLE] = str(storage.get("sizeInGiB", FARGATE_DEFAULT_EPHEMERAL_GIB))
        env[ARCHITECTURE_VARIABLE] = str((task.get("runtimePlatform") or {}).get("cpuArchitecture", "X86_64"))
    linux = container.get("linuxParameters") or {}
    if linux.get("sharedMemorySize") is not None:
        env[SHM_VARIABLE] = str(linux["sharedMemorySize"])
    if linux.get("initProcessEnabled") is not None:
        env[INIT_VARIABLE] = "true" if linux["initProcessEnabled"] else "false"
    gpus = [r["value"] for r in container.get("resourceRequirements") or [] if r.get("type") == "GPU"]
    if gpus:
        env[GPUS_VARIABLE] = str(gpus[-1])
    return env


# Sets the limits it is given (as JSON: [[name, soft, hard], ...]; -1 unlimited), each capped at this machine's own
# hard limit (an unprivileged process cannot raise it), then runs the container's command in its place.
_SET_LIMITS = """import json, os, resource, sys
for name, soft, hard in json.loads(sys.argv[1]):
    kind = getattr(resource, "RLIMIT_" + name.upper(), None)
    kind = 10 if kind is None and name == "locks" else kind  # Linux's RLIMIT_LOCKS, which Python does not name
    host_hard = resource.getrlimit(kind)[1]
    wanted = resource.RLIM_INFINITY if hard == -1 else hard
    if host_hard != resource.RLIM_INFINITY and (wanted == resource.RLIM_INFINITY or wanted > host_hard):
        wanted = host_hard
    soft = wanted if soft == -1 or (wanted != resource.RLIM_INFINITY and soft > wanted) else soft
    resource.setrlimit(kind, (soft, wanted))
os.execvp(sys.argv[2], sys.argv[2:])
"""


def with_ulimits(command: list[str], container: Mapping[str, Any]) -> list[str]:
    """The container's command run with its ulimits set, or the command itself when it has none."""
    limits = [[u["name"], u["softLimit"], u["hardLimit"]] for u in container.get("ulimits") or []]
    if not limits or not command:
        return command
    return [sys.executable, "-c", _SET_LIMITS, json.dumps(limits), *command]


def tmpfs_paths(container: Mapping[str, Any]) -> list[str]:
    """The container paths of its tmpfs mounts."""
    return [str(m["containerPath"]) for m in (container.get("linuxParameters") or {}).get("tmpfs") or []]
