"""Pure: ``volumes``, the main container's EFS file systems and (on EC2) host paths, as AWS Batch's task
``volumes`` (``efsVolumeConfiguration``, ``host``) and the main container's ``mountPoints``, in the job definition.

Each mount is checked as AWS checks it (EFSVolumeConfiguration, EFSAuthorizationConfig, Host, MountPoint), and its
container path must stay clear of the runner's volume (the working and output dirs). No boto3, no Airflow runtime.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from airflow_batch_runner.layout import VOLUME_ROOT

# EFS: "fs-" and 8 to 40 hex digits (a file system id), "fsap-" likewise (an access point id).
FILE_SYSTEM_RE = re.compile(r"fs-[0-9a-f]{8,40}")
ACCESS_POINT_RE = re.compile(r"fsap-[0-9a-f]{8,40}")
MAX_ROOT_DIRECTORY = 4096  # EFS: the root directory's path, at most 4,096 characters
SWITCHES = ("ENABLED", "DISABLED")
SHAPE = ('a list of mounts, each {"containerPath": "/data", "efs": {"fileSystemId": "fs-...", "rootDirectory": ..., '
         '"accessPointId": ..., "transitEncryption": ..., "iam": ...}, "readOnly": ...} or, on EC2, '
         '{"containerPath": "/scratch", "hostPath": "/mnt/scratch", "readOnly": ...}')
VOLUME_PREFIX = "user-volume-"


@dataclass(frozen=True)
class Mount:
    container_path: str
    read_only: bool
    efs: Mapping[str, Any] | None = None  # AWS's efsVolumeConfiguration
    host_path: str | None = None


def _absolute(path: Any, where: str) -> str:
    if not isinstance(path, str) or not path.startswith("/") or "\n" in path or "\x00" in path:
        raise ValueError(f"{where} must be an absolute path; got {path!r}")
    return path


def clear_of_runner(path: str, where: str) -> str:
    """The path, normalised, when it neither hides nor lies in the runner's volume."""
    normal = PurePosixPath(path)
    volume = PurePosixPath(VOLUME_ROOT)
    if normal == volume or volume in normal.parents or normal in volume.parents:
        raise ValueError(f"{where} {path!r} would hide or lie in the runner's volume at {VOLUME_ROOT} (the working "
                         "and output dirs): mount it elsewhere, e.g. /data")
    return str(normal)


def _efs(value: Any, where: str) -> dict[str, Any]:
    known = {"fileSystemId", "rootDirectory", "accessPointId", "transitEncryption", "iam"}
    if not isinstance(value, Mapping) or "fileSystemId" not in value or not set(value) <= known:
        raise ValueError(f"{where} must be {{\"fileSystemId\": \"fs-...\"}} with, optionally, rootDirectory, "
                         f"accessPointId, transitEncryption and iam; got {value!r}")
    file_system = value["fileSystemId"]
    if not isinstance(file_system, str) or not FILE_SYSTEM_RE.fullmatch(file_system):
        raise ValueError(f"{where}.fileSystemId must be an EFS file system id (fs- and 8 to 40 hex digits); "
                         f"got {file_system!r}")
    config: dict[str, Any] = {"fileSystemId": file_system}
    root = value.get("rootDirectory")
    if root is not None:
        _absolute(root, f"{where}.rootDirectory")
        if len(root) > MAX_ROOT_DIRECTORY:
            raise ValueError(f"{where}.rootDirectory is at most {MAX_ROOT_DIRECTORY} characters; got {len(root)}")
        config["rootDirectory"] = root
    for name in ("transitEncryption", "iam"):
        if value.get(name) is not None and value[name] not in SWITCHES:
            raise ValueError(f"{where}.{name} must be ENABLED or DISABLED; got {value[name]!r}")
    if value.get("transitEncryption") is not None:
        config["transitEncryption"] = value["transitEncryption"]
    access_point = value.get("accessPointId")
    authorization: dict[str, str] = {}
    if access_point is not None:
        if not isinstance(access_point, str) or not ACCESS_POINT_RE.fullmatch(access_point):
            raise ValueError(f"{where}.accessPointId must be an EFS access point id (fsap- and 8 to 40 hex "
                             f"digits); got {access_point!r}")
        if root not in (None, "/"):
            raise ValueError(f"{where}: with an accessPointId, rootDirectory must be left out or '/' (AWS: the access "
                             "point's own root directory is used); put the directory in the access point")
        authorization["accessPointId"] = access_point
    if value.get("iam") is not None:
        authorization["iam"] = value["iam"]
    if (access_point is not None or value.get("iam") == "ENABLED") and config.get("transitEncryption") != "ENABLED":
        raise ValueError(f"{where}: an access point or IAM authorization needs transitEncryption ENABLED (AWS); "
                         "add \"transitEncryption\": \"ENABLED\"")
    if authorization:
        config["authorizationConfig"] = authorization
    return config


def check(value: Any, tmpfs_paths: Sequence[str] = ()) -> tuple[Mount, ...]:
    """The mounts in shape, or a ValueError naming ``volumes[i]`` and the fix; ``tmpfs_paths`` are taken too."""
    if value is None or value == "":
        return ()
    if isinstance(value, (str, Mapping)) or not isinstance(value, Sequence):
        raise ValueError(f"volumes must be {SHAPE}; got {type(value).__name__} {value!r}")
    mounts: list[Mount] = []
    taken = {str(PurePosixPath(p)) for p in tmpfs_paths}
    for index, item in enumerate(value):
        where = f"volumes[{index}]"
        kinds = [k for k in ("efs", "hostPath") if isinstance(item, Mapping) and k in item]
        if not isinstance(item, Mapping) or len(kinds) != 1 or not set(item) <= {"containerPath", "readOnly", *kinds}:
            raise ValueError(f"volumes must be {SHAPE}; {where} is {item!r}")
        path = clear_of_runner(_absolute(item.get("containerPath"), f"{where}.containerPath"),
                               f"{where}.containerPath")
        if path in taken:
            raise ValueError(f"{where}.containerPath {item['containerPath']!r} is already mounted (by volumes or "
                             "tmpfs); give each mount its own path")
        taken.add(path)
        read_only = item.get("readOnly", False)
        if not isinstance(read_only, bool):
            raise ValueError(f"{where}.readOnly must be True or False; got {read_only!r}")
        if kinds == ["efs"]:
            mounts.append(Mount(item["containerPath"], read_only, efs=_efs(item["efs"], f"{where}.efs")))
        else:
            host = _absolute(item["hostPath"], f"{where}.hostPath")
            mounts.append(Mount(item["containerPath"], read_only, host_path=host))
    return tuple(mounts)


def check_platform(mounts: Sequence[Mount], fargate: bool) -> None:
    """Host.sourcePath "isn't applicable to jobs that are running on Fargate resources"."""
    hosts = [f"volumes[{i}]" for i, mount in enumerate(mounts) if mount.host_path is not None]
    if fargate and hosts:
        raise ValueError(f"{', '.join(hosts)}: a hostPath is not available on Fargate (AWS Batch's host volumes are "
                         "for jobs on EC2 resources). Use an EFS file system (efs), or an EC2 compute environment")


def task_volumes(mounts: Sequence[Mount]) -> list[dict[str, Any]]:
    """The job definition's task ``volumes`` for the mounts (after the runner's own)."""
    out: list[dict[str, Any]] = []
    for index, mount in enumerate(mounts):
        volume: dict[str, Any] = {"name": f"{VOLUME_PREFIX}{index}"}
        if mount.efs is not None:
            volume["efsVolumeConfiguration"] = dict(mount.efs)
        else:
            volume["host"] = {"sourcePath": mount.host_path}
        out.append(volume)
    return out


def mount_points(mounts: Sequence[Mount]) -> list[dict[str, Any]]:
    """The main container's ``mountPoints`` for the mounts (after the runner's own)."""
    return [{"sourceVolume": f"{VOLUME_PREFIX}{index}", "containerPath": mount.container_path,
             "readOnly": mount.read_only} for index, mount in enumerate(mounts)]
