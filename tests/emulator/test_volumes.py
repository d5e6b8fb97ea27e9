"""EFS and host volumes, from the API reference (EFSVolumeConfiguration: "Transit encryption must be enabled if
Amazon EFS IAM authorization is used"; with an access point "the root directory parameter must either be omitted
or set to /"; EFSAuthorizationConfig: an access point needs transit encryption; Host.sourcePath "isn't applicable
to jobs that are running on Fargate resources"), and the ECS agent's failure to mount a file system that does not
exist. What a job writes on a file system (or host path) the next job that mounts it reads (the emulator's stand-in:
a directory per file system, docs: emulator)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.emulator import helpers
from tests.emulator.helpers import container
from tests.emulator.test_batch_validation import refused

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def efs(emulator_url: str) -> Any:
    return helpers.client(emulator_url, "efs")


def file_system(efs: Any) -> str:
    return str(efs.create_file_system(CreationToken=uuid.uuid4().hex)["FileSystemId"])


def register(batch: Any, volume: dict[str, Any], command: list[str], fargate: bool = False) -> str:
    properties = helpers.ecs_properties([container("main", command, mounts=[("data", "/data")])], fargate=fargate)
    properties["taskProperties"][0]["volumes"] = [{"name": "data", **volume}]
    return str(batch.register_job_definition(
        jobDefinitionName=helpers.unique("volumes"), type="container",
        platformCapabilities=["FARGATE" if fargate else "EC2"], ecsProperties=properties,
    )["jobDefinitionArn"])


@pytest.mark.parametrize("volume, words", [
    ({"host": {"sourcePath": "/mnt/data"}}, "host.sourcePath"),
    ({"efsVolumeConfiguration": {"fileSystemId": "fs-0123abcd", "authorizationConfig": {"iam": "ENABLED"}}},
     "transit encryption"),
    ({"efsVolumeConfiguration": {"fileSystemId": "fs-0123abcd",
                                 "authorizationConfig": {"accessPointId": "fsap-0123abcd"}}}, "transit encryption"),
    ({"efsVolumeConfiguration": {"fileSystemId": "fs-0123abcd", "rootDirectory": "/x", "transitEncryption": "ENABLED",
                                 "authorizationConfig": {"accessPointId": "fsap-0123abcd"}}}, "rootDirectory"),
])
def test_what_the_reference_refuses_is_refused_on_fargate(batch: Any, volume: dict[str, Any], words: str) -> None:
    assert words in refused(register, batch, volume, ["true"], fargate=True)


def test_a_file_system_that_does_not_exist_fails_the_attempt_before_any_container_starts(
    batch: Any, ec2_queue: str
) -> None:
    definition = register(batch, {"efsVolumeConfiguration": {"fileSystemId": "fs-0000000000000000f"}}, ["true"])
    job = helpers.wait_for_status(batch, helpers.submit(batch, ec2_queue, definition))
    assert job["status"] == "FAILED"
    assert job["statusReason"].startswith("ResourceInitializationError: failed to invoke EFS utils commands")
    assert "fs-0000000000000000f" in job["statusReason"] and "startedAt" not in job


@pytest.mark.parametrize("kind", ["efs", "host"])
def test_what_one_job_writes_on_a_volume_the_next_job_reads(
    batch: Any, efs: Any, ec2_queue: str, kind: str
) -> None:
    volume: dict[str, Any] = (
        {"efsVolumeConfiguration": {"fileSystemId": file_system(efs), "rootDirectory": "/shared"}} if kind == "efs"
        else {"host": {"sourcePath": f"/mnt/{uuid.uuid4().hex}"}})
    writer = register(batch, volume, ["sh", "-c", "echo hello > /data/x"])
    reader = register(batch, volume, ["sh", "-c", 'test "$(cat /data/x)" = hello'])
    assert helpers.wait_for_status(batch, helpers.submit(batch, ec2_queue, writer))["status"] == "SUCCEEDED"
    assert helpers.wait_for_status(batch, helpers.submit(batch, ec2_queue, reader))["status"] == "SUCCEEDED"
    elsewhere = {**volume["efsVolumeConfiguration"], "rootDirectory": "/other"} if kind == "efs" else None
    if elsewhere is not None:  # another root directory of the same file system is another directory
        other = register(batch, {"efsVolumeConfiguration": elsewhere}, ["sh", "-c", "test ! -e /data/x"])
        assert helpers.wait_for_status(batch, helpers.submit(batch, ec2_queue, other))["status"] == "SUCCEEDED"
