"""volumes: EFS file systems and host paths of the main container, each as AWS takes it (every bound and its
neighbour), clear of the runner's volume and of each other, host paths refused on Fargate, and their place in the
content-addressed job definition (task volumes, the main container's mount points). Pure: no AWS."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from airflow_batch_runner.container_settings import ContainerSettings, check_platform, parse
from airflow_batch_runner.job_spec import build_job_definition
from tests.unit.test_container_settings import a_definition_of_its_own
from tests.unit.test_job_spec import assert_valid_for_botocore, make_spec

CE = "arn:aws:batch:us-east-1:123456789012:compute-environment/ce"
FS = "fs-0123abcd"
AP = "fsap-0123456789abcdef0"
EFS = {"containerPath": "/data", "efs": {"fileSystemId": FS, "rootDirectory": "/datasets"}, "readOnly": True}
HOST = {"containerPath": "/scratch", "hostPath": "/mnt/scratch"}


def test_efs_and_host_mounts_land_in_the_task_and_the_main_container() -> None:
    plain = make_spec("inputs_main_outputs", platform="EC2")
    spec = replace(plain, settings=parse(volumes=[EFS, HOST]))
    definition = build_job_definition(spec)
    assert_valid_for_botocore("RegisterJobDefinition", definition)
    task = definition["ecsProperties"]["taskProperties"][0]
    assert task["volumes"] == [
        {"name": "airflow-batch"},
        {"name": "user-volume-0", "efsVolumeConfiguration": {"fileSystemId": FS, "rootDirectory": "/datasets"}},
        {"name": "user-volume-1", "host": {"sourcePath": "/mnt/scratch"}},
    ]
    containers = {c["name"]: c for c in task["containers"]}
    assert containers["main"]["mountPoints"] == [
        {"sourceVolume": "airflow-batch", "containerPath": "/airflow-batch"},
        {"sourceVolume": "user-volume-0", "containerPath": "/data", "readOnly": True},
        {"sourceVolume": "user-volume-1", "containerPath": "/scratch", "readOnly": False},
    ]
    runner_only = [{"sourceVolume": "airflow-batch", "containerPath": "/airflow-batch"}]
    assert containers["outputs"]["mountPoints"] == runner_only
    array_containers = a_definition_of_its_own(plain, spec, replace(plain, settings=parse(volumes=[EFS, HOST])))
    assert [c["name"] for c in array_containers if len(c["mountPoints"]) > 1] == ["main"]


def test_an_access_point_with_iam_needs_transit_encryption() -> None:
    efs = {"fileSystemId": FS, "accessPointId": AP, "iam": "ENABLED", "transitEncryption": "ENABLED",
           "rootDirectory": "/"}
    mount = parse(volumes=[{"containerPath": "/data", "efs": efs}]).volumes[0]
    assert mount.efs == {"fileSystemId": FS, "rootDirectory": "/", "transitEncryption": "ENABLED",
                         "authorizationConfig": {"accessPointId": AP, "iam": "ENABLED"}}


@pytest.mark.parametrize("value, message", [
    (EFS, "volumes must be a list of mounts"),
    ([{"containerPath": "/data"}], "volumes must be a list of mounts"),
    ([{**HOST, "efs": {"fileSystemId": FS}}], "volumes must be a list of mounts"),
    ([{**HOST, "size": 1}], "volumes must be a list of mounts"),
    ([{**HOST, "containerPath": "data"}], r"volumes\[0\].containerPath must be an absolute path"),
    ([{**HOST, "hostPath": "mnt"}], r"volumes\[0\].hostPath must be an absolute path"),
    ([{**HOST, "readOnly": "yes"}], r"volumes\[0\].readOnly must be True or False"),
    ([{**HOST, "containerPath": "/airflow-batch/work/x"}], "would hide or lie in the runner's volume"),
    ([{**HOST, "containerPath": "/"}], "would hide or lie in the runner's volume"),
    ([HOST, {**EFS, "containerPath": "/scratch/"}], r"volumes\[1\].containerPath '/scratch/' is already mounted"),
    ([{"containerPath": "/d", "efs": {"fileSystemId": "fs-0123abc"}}], "fileSystemId must be an EFS file system id"),
    ([{"containerPath": "/d", "efs": {"fileSystemId": "fs-" + "0" * 41}}], "fileSystemId must be an EFS"),
    ([{"containerPath": "/d", "efs": {"fileSystemId": FS, "rootDirectory": "/" + "a" * 4096}}],
     "rootDirectory is at most 4096 characters; got 4097"),
    ([{"containerPath": "/d", "efs": {"fileSystemId": FS, "rootDirectory": "data"}}], "must be an absolute path"),
    ([{"containerPath": "/d", "efs": {"fileSystemId": FS, "transitEncryption": "ON"}}], "ENABLED or DISABLED"),
    ([{"containerPath": "/d", "efs": {"fileSystemId": FS, "accessPointId": "fsap-1"}}], "access point id"),
    ([{"containerPath": "/d", "efs": {"fileSystemId": FS, "accessPointId": AP}}],
     "an access point or IAM authorization needs transitEncryption ENABLED"),
    ([{"containerPath": "/d", "efs": {"fileSystemId": FS, "iam": "ENABLED", "transitEncryption": "DISABLED"}}],
     "needs transitEncryption ENABLED"),
    ([{"containerPath": "/d", "efs": {"fileSystemId": FS, "accessPointId": AP, "transitEncryption": "ENABLED",
                                      "rootDirectory": "/x"}}], "rootDirectory must be left out or '/'"),
    ([{"containerPath": "/d", "efs": {"fileSystemId": FS, "throughput": 1}}], r"volumes\[0\].efs must be"),
])
def test_bad_volumes_are_refused_naming_the_mount(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(volumes=value)


def test_the_file_system_id_bounds_and_a_root_directory_of_4096_characters_are_taken() -> None:
    for file_system in ("fs-" + "0" * 8, "fs-" + "f" * 40):
        efs = {"fileSystemId": file_system, "rootDirectory": "/" + "a" * 4095}
        parse(volumes=[{"containerPath": "/d", "efs": efs}])


def test_a_volume_and_a_tmpfs_mount_cannot_share_a_path() -> None:
    with pytest.raises(ValueError, match=r"volumes\[0\].containerPath '/scratch' is already mounted"):
        parse(tmpfs=[{"containerPath": "/scratch", "size": 64}], volumes=[HOST])


def test_a_host_path_is_refused_on_fargate_with_the_fix_and_efs_is_taken() -> None:
    settings = parse(volumes=[EFS, HOST])
    check_platform(settings, "EC2", CE)
    check_platform(parse(volumes=[EFS]), "FARGATE", CE)
    with pytest.raises(ValueError, match=r"^volumes\[1\]: a hostPath is not available on Fargate .*Use an EFS"):
        check_platform(settings, "FARGATE", CE)


def test_a_literal_volume_in_the_runners_volume_fails_when_the_dag_is_parsed() -> None:
    from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

    required: dict[str, Any] = {"task_id": "shell", "compute_environment_arn": CE, "commands": ["true"]}
    with pytest.raises(ValueError, match="would hide or lie in the runner's volume"):
        BatchRunnerOperator(**required, volumes=[{**HOST, "containerPath": "/airflow-batch"}])
    assert BatchRunnerOperator(**required, volumes=[HOST])._settings == ContainerSettings(volumes=parse(
        volumes=[HOST]).volumes)
