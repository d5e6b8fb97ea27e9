"""A task's volumes beyond an empty one: EFS file systems (``efsVolumeConfiguration``) and host paths (``host``).

``check`` is RegisterJobDefinition's, from the API reference (Volume, EFSVolumeConfiguration,
EFSAuthorizationConfig, Host). ``start_failure`` is the ECS agent's when the task starts: a file system that does
not exist in the Region (the emulator's EFS, moto's) stops the task before any container starts. ``directory`` is
what stands in for each on this machine: one directory per EFS file system, shared by every job that mounts it
(its ``rootDirectory`` a subdirectory), and one per host path, shared likewise (the emulator's one "instance").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from airflow_batch_runner.emulator.batch.validation import ClientException

SWITCHES = ("ENABLED", "DISABLED")


def check(volumes: Iterable[Mapping[str, Any]], fargate: bool, where: str) -> None:
    for volume in volumes:
        at = f"{where} volume {volume.get('name')!r}"
        efs, host = volume.get("efsVolumeConfiguration"), volume.get("host")
        if efs is not None and host is not None:
            raise ClientException(f"{at}: give either host or efsVolumeConfiguration, not both")
        if host is not None and fargate and (host or {}).get("sourcePath") is not None:
            raise ClientException(f"{at}: host.sourcePath isn't applicable to jobs that are running on Fargate "
                                  "resources")
        if host is not None and host.get("sourcePath") is not None and not str(host["sourcePath"]).startswith("/"):
            raise ClientException(f"{at}: host.sourcePath must be an absolute path")
        if efs is not None:
            _check_efs(efs, at)


def _check_efs(efs: Mapping[str, Any], at: str) -> None:
    if not isinstance(efs.get("fileSystemId"), str) or not efs["fileSystemId"]:
        raise ClientException(f"{at}: efsVolumeConfiguration.fileSystemId is required")
    encryption = efs.get("transitEncryption", "DISABLED")
    if encryption not in SWITCHES:
        raise ClientException(f"{at}: efsVolumeConfiguration.transitEncryption must be ENABLED or DISABLED")
    authorization = efs.get("authorizationConfig") or {}
    if authorization.get("iam", "DISABLED") not in SWITCHES:
        raise ClientException(f"{at}: authorizationConfig.iam must be ENABLED or DISABLED")
    if (authorization.get("iam") == "ENABLED" or authorization.get("accessPointId")) and encryption != "ENABLED":
        raise ClientException(f"{at}: transit encryption must be enabled when IAM authorization or an access point "
                              "is used (efsVolumeConfiguration.transitEncryption ENABLED)")
    if authorization.get("accessPointId") and efs.get("rootDirectory") not in (None, "/"):
        raise ClientException(f"{at}: with an access point, rootDirectory must be omitted or set to /")


def start_failure(volumes: Iterable[Mapping[str, Any]], exists: Callable[[str], bool]) -> str | None:
    """The task's stop reason when an EFS file system it mounts does not exist, else None."""
    for volume in volumes:
        file_system = (volume.get("efsVolumeConfiguration") or {}).get("fileSystemId")
        if file_system and not exists(str(file_system)):
            return (f"ResourceInitializationError: failed to invoke EFS utils commands to set up EFS volumes: "
                    f"file system {file_system} of volume {volume.get('name')!r} does not exist")
    return None


def directory(root: Path, volume: Mapping[str, Any]) -> Path | None:
    """The directory standing in for an EFS or host volume under the emulator's ``root``; None for an empty one."""
    efs, host = volume.get("efsVolumeConfiguration"), (volume.get("host") or {}).get("sourcePath")
    if efs is not None:
        return root / "efs" / str(efs["fileSystemId"]) / str(efs.get("rootDirectory") or "/").lstrip("/")
    if host is not None:
        return root / "hosts" / str(host).lstrip("/")
    return None
