"""Pure: what a job asks of its task and main container beyond image, commands and resources: ephemeral storage,
CPU architecture, shared memory, an init process, tmpfs mounts, ulimits, GPUs, the credentials of a private
registry and consumable resources.

Each argument is put in shape and checked against AWS's own bounds (``parse``), then against what the compute
environment's platform allows (``check_platform``): a ValueError naming the argument and the fix. AWS Batch takes
none of them in SubmitJob's ``ecsPropertiesOverride`` (its task override holds only containers' command,
environment and resources), so they go into the job definition, whose content-hash name then differs for each
combination (registered once, then reused). GPUs are the exception: a ``GPU`` resource requirement, which the task
override does take, so they travel with the main container's VCPU and MEMORY in SubmitJob (``main_requirements``)
and leave the definition alone; so do consumable resources, in SubmitJob's ``consumableResourcePropertiesOverride``
(``submit_fields``). No boto3, no Airflow runtime.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from airflow_batch_runner import container_properties as properties
from airflow_batch_runner import volumes as mounts
from airflow_batch_runner.layout import VOLUME_ROOT

if TYPE_CHECKING:
    from airflow_batch_runner.job_spec import Platform

# EphemeralStorage.sizeInGiB: "The minimum supported value is 21 GiB and the maximum supported value is 200 GiB."
MIN_EPHEMERAL_GIB, MAX_EPHEMERAL_GIB = 21, 200
# RuntimePlatform.cpuArchitecture: "Valid values are X86_64 and ARM64."
CPU_ARCHITECTURES = ("X86_64", "ARM64")
# Ulimit.name, and Tmpfs.mountOptions, as the API reference lists them.
ULIMIT_NAMES = ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss",
                "rtprio", "rttime", "sigpending", "stack")
TMPFS_MOUNT_OPTIONS = (
    "defaults", "ro", "rw", "suid", "nosuid", "dev", "nodev", "exec", "noexec", "sync", "async", "dirsync",
    "remount", "mand", "nomand", "atime", "noatime", "diratime", "nodiratime", "bind", "rbind", "unbindable",
    "runbindable", "private", "rprivate", "shared", "rshared", "slave", "rslave", "relatime", "norelatime",
    "strictatime", "nostrictatime", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol",
)
# RepositoryCredentials.credentialsParameter: "The Amazon Resource Name (ARN) of the secret containing the private
# repository credentials", a Secrets Manager secret: arn:<partition>:secretsmanager:<region>:<account>:secret:<name>,
# the name of 1 to 512 of the characters Secrets Manager allows (letters, digits, /_+=.@-), with or without the
# 6-character suffix Secrets Manager adds to the ARN.
MAX_SECRET_NAME = 512
SECRET_ARN_RE = re.compile(
    r"arn:aws(?:-[a-z]+)*:secretsmanager:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:secret:"
    rf"[A-Za-z0-9/_+=.@-]{{1,{MAX_SECRET_NAME}}}"
)
# Resource-aware scheduling: "You can specify up to 5 resources for each job" (AWS Batch user guide). A resource is
# named by its name (as Batch names its resources: up to 128 letters, digits, - and _) or its ARN.
MAX_CONSUMABLE_RESOURCES = 5
CONSUMABLE_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")
CONSUMABLE_ARN_RE = re.compile(r"arn:aws(?:-[a-z]+)*:batch:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:consumable-resource/"
                               r"[A-Za-z0-9_-]{1,128}")
# Docker's (and so ECS's) "unlimited" for a ulimit, as AWS's EFA examples use it for memlock.
UNLIMITED = -1
FARGATE_ONLY = ("ephemeral_storage", "cpu_architecture")
# LinuxParameters: sharedMemorySize and tmpfs "isn't applicable to jobs that are running on Fargate resources".
EC2_ONLY = ("shared_memory", "tmpfs")
# ResourceRequirement type GPU: "GPUs aren't available for jobs that are running on Fargate resources."
GPU_ONLY_ON_EC2 = "gpus"


@dataclass(frozen=True)
class ContainerSettings:
    """The resolved arguments; None or empty: not asked for (AWS's defaults)."""

    ephemeral_storage: int | None = None
    cpu_architecture: str | None = None
    shared_memory: int | None = None
    init_process: bool | None = None
    tmpfs: tuple[Mapping[str, Any], ...] = ()
    ulimits: tuple[Mapping[str, Any], ...] = ()
    gpus: int | None = None
    repository_credentials: str | None = None
    consumable_resources: tuple[tuple[str, int], ...] = ()  # (name or ARN, quantity)
    container_properties: tuple[tuple[str, Any], ...] = ()  # the escape hatch's members (container_properties.py)
    volumes: tuple[mounts.Mount, ...] = ()  # EFS file systems and host paths of the main container (volumes.py)

    def given(self) -> list[str]:
        return [name for name in (*FARGATE_ONLY, *EC2_ONLY, "init_process", "ulimits", "gpus",
                                  "repository_credentials", "consumable_resources", "container_properties",
                                  "volumes")
                if getattr(self, name) not in (None, ())]

    def task_volumes(self) -> list[dict[str, Any]]:
        """The task's volumes beside the runner's own."""
        return mounts.task_volumes(self.volumes)

    def mount_points(self) -> list[dict[str, Any]]:
        """The main container's mount points beside the runner's own."""
        return mounts.mount_points(self.volumes)

    def submit_fields(self) -> dict[str, Any]:
        """SubmitJob's own fields: the consumable resources the job holds while it runs."""
        if not self.consumable_resources:
            return {}
        return {"consumableResourcePropertiesOverride": {"consumableResourceList": [
            {"consumableResource": name, "quantity": quantity} for name, quantity in self.consumable_resources]}}

    def main_requirements(self) -> list[dict[str, str]]:
        """What the main container asks for beside its VCPU and MEMORY: ``GPU``, in SubmitJob's override."""
        return [{"type": "GPU", "value": str(self.gpus)}] if self.gpus is not None else []

    def task_fields(self) -> dict[str, Any]:
        """The job definition's task-level fields (ecsProperties.taskProperties[0])."""
        fields: dict[str, Any] = {}
        if self.ephemeral_storage is not None:
            fields["ephemeralStorage"] = {"sizeInGiB": self.ephemeral_storage}
        if self.cpu_architecture is not None:
            fields["runtimePlatform"] = {"cpuArchitecture": self.cpu_architecture, "operatingSystemFamily": "LINUX"}
        return fields

    def main_container_fields(self) -> dict[str, Any]:
        """The main container's ``linuxParameters``, ``ulimits`` and ``repositoryCredentials``."""
        linux: dict[str, Any] = {}
        if self.shared_memory is not None:
            linux["sharedMemorySize"] = self.shared_memory
        if self.init_process is not None:
            linux["initProcessEnabled"] = self.init_process
        if self.tmpfs:
            linux["tmpfs"] = [dict(mount) for mount in self.tmpfs]
        fields: dict[str, Any] = {"linuxParameters": linux} if linux else {}
        if self.ulimits:
            fields["ulimits"] = [dict(limit) for limit in self.ulimits]
        if self.repository_credentials is not None:
            fields["repositoryCredentials"] = {"credentialsParameter": self.repository_credentials}
        fields.update(dict(self.container_properties))
        return fields


def _whole(value: Any, argument: str, what: str) -> int:
    """A whole number, or a string of one (a rendered template); bool is not a number here."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"{argument} must be {what}; got {type(value).__name__} {value!r}")


def check_ephemeral_storage(value: Any) -> int | None:
    if value is None or value == "":
        return None
    what = f"a whole number of GiB from {MIN_EPHEMERAL_GIB} to {MAX_EPHEMERAL_GIB}"
    size = _whole(value, "ephemeral_storage", what)
    if not MIN_EPHEMERAL_GIB <= size <= MAX_EPHEMERAL_GIB:
        raise ValueError(
            f"ephemeral_storage must be {what} (AWS Fargate's ephemeralStorage.sizeInGiB; a task without it gets "
            f"20 GiB); got {size}"
        )
    return size


def check_cpu_architecture(value: Any) -> str | None:
    if value is None or value == "":
        return None
    name = value.strip().upper() if isinstance(value, str) else value
    if name not in CPU_ARCHITECTURES:
        raise ValueError(f"cpu_architecture must be 'X86_64' or 'ARM64' (AWS's runtimePlatform.cpuArchitecture); "
                         f"got {value!r}")
    return str(name)


def check_shared_memory(value: Any) -> int | None:
    if value is None or value == "":
        return None
    size = _whole(value, "shared_memory", "a whole number of MiB (the size of /dev/shm)")
    if size < 1:
        raise ValueError(f"shared_memory must be at least 1 MiB (the size of /dev/shm, linuxParameters."
                         f"sharedMemorySize); got {size}")
    return size


def check_init_process(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"init_process must be True or False (a rendered 'true' or 'false' too); got {value!r}")


def check_gpus(value: Any) -> int | None:
    if value is None or value == "":
        return None
    what = "a whole number of GPUs, at least 1 (leave it out for none)"
    count = _whole(value, "gpus", what)
    if count < 1:
        raise ValueError(f"gpus must be {what}: AWS's GPU resource requirement is the number of physical GPUs "
                         f"reserved for the main container; got {count}")
    return count


def check_repository_credentials(value: Any) -> str | None:
    if value is None or value == "":
        return None
    arn = value.strip() if isinstance(value, str) else value
    if not isinstance(arn, str) or not SECRET_ARN_RE.fullmatch(arn):
        raise ValueError(
            "repository_credentials must be the ARN of a Secrets Manager secret holding the private registry's "
            '{"username": ..., "password": ...} (arn:aws:secretsmanager:<region>:<12-digit account>:secret:<name>, '
            f"the name 1 to {MAX_SECRET_NAME} letters, digits or /_+=.@-); got {value!r}"
        )
    return arn


def check_consumable_resources(value: Any) -> tuple[tuple[str, int], ...]:
    """``{"licence-x": 1}``: each consumable resource (name or ARN) and the quantity the job holds while it runs."""
    if value is None or value == "" or value == {}:
        return ()
    shape = 'a mapping of consumable resource (name or ARN) to quantity, e.g. {"licence-x": 1}'
    if not isinstance(value, Mapping):
        raise ValueError(f"consumable_resources must be {shape}; got {type(value).__name__} {value!r}")
    if len(value) > MAX_CONSUMABLE_RESOURCES:
        raise ValueError(f"consumable_resources: AWS Batch lets a job require at most {MAX_CONSUMABLE_RESOURCES} "
                         f"consumable resources; got {len(value)}. Split the work, or combine resources")
    resources: list[tuple[str, int]] = []
    for name, quantity in value.items():
        if not isinstance(name, str) or not (CONSUMABLE_NAME_RE.fullmatch(name) or CONSUMABLE_ARN_RE.fullmatch(name)):
            raise ValueError(f"consumable_resources: {name!r} is neither a consumable resource name (1 to 128 "
                             "letters, digits, - or _) nor its ARN "
                             "(arn:aws:batch:<region>:<account>:consumable-resource/<name>)")
        where = f"consumable_resources[{name!r}]"
        amount = _whole(quantity, where, "a whole number of at least 1")
        if amount < 1:
            raise ValueError(f"{where} must be a whole number of at least 1 (the quantity the job holds while it "
                             f"runs); got {amount}")
        short = name.rsplit("/", 1)[-1]
        if any(other.rsplit("/", 1)[-1] == short for other, _ in resources):
            raise ValueError(f"consumable_resources: {short!r} is given twice (by name and by ARN)")
        resources.append((name, amount))
    return tuple(resources)


def check_execution_role(settings: ContainerSettings, execution_role_arn: str | None) -> None:
    """ECS pulls a private registry's image with the task execution role, which must be able to read the secret."""
    if settings.repository_credentials is not None and not execution_role_arn:
        raise ValueError(
            "repository_credentials needs execution_role_arn: ECS reads the registry's secret with the task execution "
            "role. Pass the ARN of a role with AmazonECSTaskExecutionRolePolicy and secretsmanager:GetSecretValue on "
            f"{settings.repository_credentials} (and kms:Decrypt on its key if it has its own)"
        )


def _entries(value: Any, argument: str, shape: str, required: AbstractSet[str], optional: AbstractSet[str] = frozenset()
             ) -> list[tuple[str, Mapping[str, Any]]]:
    """A list of AWS objects, each with its place (``tmpfs[0]``) for the messages; None or "" is none."""
    shape = f"{argument} must be a list of {shape}"
    if value is None or value == "":
        return []
    if isinstance(value, (Mapping, str)) or not isinstance(value, Sequence):
        raise ValueError(f"{shape}; got {type(value).__name__} {value!r}")
    for index, item in enumerate(value):
        if not isinstance(item, Mapping) or not required <= set(item) <= required | optional:
            raise ValueError(f"{shape}; {argument}[{index}] is {item!r}")
    return [(f"{argument}[{index}]", item) for index, item in enumerate(value)]


def check_tmpfs(value: Any) -> tuple[dict[str, Any], ...]:
    """``[{"containerPath": "/scratch", "size": 1024, "mountOptions": ["noexec"]}]``, as AWS's Tmpfs."""
    mounts: list[dict[str, Any]] = []
    seen: set[str] = set()
    for where, item in _entries(value, "tmpfs", '{"containerPath": "/scratch", "size": <MiB>, "mountOptions": [...]}',
                                {"containerPath", "size"}, {"mountOptions"}):
        path = item["containerPath"]
        if not isinstance(path, str) or not path.startswith("/") or "\n" in path or "\x00" in path:
            raise ValueError(f"{where}.containerPath must be an absolute path in the container; got {path!r}")
        normal = str(PurePosixPath(path))
        volume = PurePosixPath(VOLUME_ROOT)
        if PurePosixPath(normal) == volume or volume in PurePosixPath(normal).parents or \
                PurePosixPath(normal) in volume.parents:
            raise ValueError(f"{where}.containerPath {path!r} would hide or lie in the runner's volume at "
                             f"{VOLUME_ROOT} (the working and output dirs): mount it elsewhere, e.g. /scratch")
        if normal in seen:
            raise ValueError(f"{where}.containerPath {path!r} is given twice")
        seen.add(normal)
        size = _whole(item["size"], f"{where}.size", "a whole number of MiB")
        if size < 1:
            raise ValueError(f"{where}.size must be at least 1 MiB; got {size}")
        mount: dict[str, Any] = {"containerPath": path, "size": size}
        options = item.get("mountOptions")
        if options is not None:
            if isinstance(options, str) or not isinstance(options, Sequence):
                raise ValueError(f"{where}.mountOptions must be a list of options; got {options!r}")
            wrong = [o for o in options if o not in TMPFS_MOUNT_OPTIONS]
            if wrong:
                raise ValueError(f"{where}.mountOptions: {wrong} are not tmpfs mount options AWS accepts; use "
                                 f"some of {', '.join(TMPFS_MOUNT_OPTIONS)}")
            mount["mountOptions"] = list(options)
        mounts.append(mount)
    return tuple(mounts)


def check_ulimits(value: Any) -> tuple[dict[str, Any], ...]:
    """``[{"name": "nofile", "softLimit": 4096, "hardLimit": 8192}]``, as AWS's Ulimit; -1 is unlimited."""
    limits: list[dict[str, Any]] = []
    for where, item in _entries(value, "ulimits", '{"name": "nofile", "softLimit": <n>, "hardLimit": <n>}',
                                {"name", "softLimit", "hardLimit"}):
        name = item["name"]
        if name not in ULIMIT_NAMES:
            raise ValueError(f"{where}.name must be one of {', '.join(ULIMIT_NAMES)}; got {name!r}")
        if any(limit["name"] == name for limit in limits):
            raise ValueError(f"{where}: the ulimit {name!r} is given twice")
        what = f"a whole number, or {UNLIMITED} for unlimited"
        soft = _whole(item["softLimit"], f"{where}.softLimit", what)
        hard = _whole(item["hardLimit"], f"{where}.hardLimit", what)
        for label, amount in (("softLimit", soft), ("hardLimit", hard)):
            if amount < UNLIMITED:
                raise ValueError(f"{where}.{label} must be {what}; got {amount}")
        if hard != UNLIMITED and (soft == UNLIMITED or soft > hard):
            raise ValueError(f"{where}: softLimit {soft} is above hardLimit {hard}; a soft limit cannot pass its "
                             "hard limit")
        limits.append({"name": name, "softLimit": soft, "hardLimit": hard})
    return tuple(limits)


def parse(*, ephemeral_storage: Any = None, cpu_architecture: Any = None, shared_memory: Any = None,
          init_process: Any = None, tmpfs: Any = None, ulimits: Any = None, gpus: Any = None,
          repository_credentials: Any = None, consumable_resources: Any = None,
          container_properties: Any = None, volumes: Any = None) -> ContainerSettings:
    """The arguments in shape, each within AWS's bounds, or a ValueError naming it."""
    checked_tmpfs = check_tmpfs(tmpfs)
    return ContainerSettings(
        ephemeral_storage=check_ephemeral_storage(ephemeral_storage),
        cpu_architecture=check_cpu_architecture(cpu_architecture),
        shared_memory=check_shared_memory(shared_memory),
        init_process=check_init_process(init_process),
        tmpfs=checked_tmpfs,
        ulimits=check_ulimits(ulimits),
        gpus=check_gpus(gpus),
        repository_credentials=check_repository_credentials(repository_credentials),
        consumable_resources=check_consumable_resources(consumable_resources),
        container_properties=properties.check(container_properties),
        volumes=mounts.check(volumes, [str(m["containerPath"]) for m in checked_tmpfs]),
    )


# Per platform: the arguments it refuses, why (AWS's words), what to do instead.
REFUSED: dict[str, tuple[tuple[str, ...], str, str]] = {
    "EC2": (FARGATE_ONLY, "only for Fargate (AWS Batch's ephemeralStorage and runtimePlatform are for jobs on "
            "Fargate resources)", "On EC2 the instances decide: their launch template's volumes give the storage, "
            "their instance types the architecture (Graviton types for ARM64). Remove the argument, or use a "
            "Fargate compute environment"),
    "FARGATE": (EC2_ONLY, "not available on Fargate (AWS Batch's linuxParameters.sharedMemorySize and tmpfs aren't "
                "applicable to jobs on Fargate resources)", "Use an EC2 compute environment, or write scratch files "
                "to the working dir (on Fargate, ephemeral_storage makes it bigger)"),
}


def check_platform(settings: ContainerSettings, platform: Platform, compute_environment: str) -> None:
    """What the compute environment's platform refuses, as AWS Batch refuses it, naming the argument and the fix."""
    properties.check_platform(settings.container_properties, platform == "FARGATE")
    mounts.check_platform(settings.volumes, platform == "FARGATE")
    if platform == "FARGATE" and settings.gpus is not None:
        raise ValueError(f"gpus: GPUs aren't available for jobs that are running on Fargate resources (AWS Batch), and "
                         f"{compute_environment} is a Fargate compute environment. Use an EC2 compute environment "
                         "whose instance types have GPUs (instanceTypes such as g4dn, g5 or p3), or leave gpus out")
    refused, why, fix = REFUSED[platform]
    wrong = [name for name in refused if name in settings.given()]
    if wrong:
        kind = "an EC2" if platform == "EC2" else "a Fargate"
        raise ValueError(f"{' and '.join(wrong)}: {why}, and {compute_environment} is {kind} compute environment. "
                         f"{fix}")
