"""Ephemeral storage, runtime platform, Linux parameters and ulimits, from the API reference (EphemeralStorage,
RuntimePlatform, LinuxParameters, Tmpfs, Ulimit, ContainerProperties, TaskContainerProperties): what
RegisterJobDefinition refuses on each platform, and what a job can see of what it was granted (the emulator's
stand-ins: docs/reference/emulator.md, "Where the emulator differs")."""

from __future__ import annotations

from typing import Any

import pytest

from tests.emulator import helpers
from tests.emulator.helpers import container, resources
from tests.emulator.test_batch_validation import refused
from tests.emulator.test_platform_rules import register_ec2_container, register_fargate_container


def register_task(batch: Any, fargate: bool, task: dict[str, Any] | None = None, **main: Any) -> Any:
    """An ecsProperties definition of one container ``main`` with its own fields and the task's."""
    spec = container("main", main.pop("command", ["true"]), log_prefix="settings",
                     resourceRequirements=resources("1", "2048"), **main)
    return batch.register_job_definition(
        jobDefinitionName=helpers.unique("settings"), type="container",
        platformCapabilities=["FARGATE" if fargate else "EC2"],
        ecsProperties=helpers.ecs_properties([spec], fargate=fargate, **(task or {})),
    )


# EphemeralStorage.sizeInGiB: "The minimum supported value is 21 GiB and the maximum supported value is 200 GiB."


@pytest.mark.parametrize("size", [21, 200])
def test_ephemeral_storage_from_21_to_200_gib_is_taken_on_fargate(batch: Any, size: int) -> None:
    register_task(batch, True, {"ephemeralStorage": {"sizeInGiB": size}})
    register_fargate_container(batch, resourceRequirements=resources("1", "2048"),
                               ephemeralStorage={"sizeInGiB": size})


@pytest.mark.parametrize("size", [20, 201, 0])
def test_ephemeral_storage_outside_21_to_200_gib_is_refused(batch: Any, size: int) -> None:
    message = refused(register_task, batch, True, {"ephemeralStorage": {"sizeInGiB": size}})
    assert "sizeInGiB must be from 21 to 200" in message
    refused(register_fargate_container, batch, resourceRequirements=resources("1", "2048"),
            ephemeralStorage={"sizeInGiB": size})


# ephemeralStorage: "for tasks hosted on Fargate"; runtimePlatform: "for Batch jobs on Fargate".


@pytest.mark.parametrize("field, value", [("ephemeralStorage", {"sizeInGiB": 50}),
                                          ("runtimePlatform", {"cpuArchitecture": "ARM64"})])
def test_ephemeral_storage_and_runtime_platform_are_refused_on_ec2(batch: Any, field: str, value: Any) -> None:
    assert "only for jobs running on Fargate" in refused(register_task, batch, False, {field: value})
    assert "only for jobs running on Fargate" in refused(
        register_ec2_container, batch, resourceRequirements=resources("1", "512"), **{field: value})


@pytest.mark.parametrize("architecture", ["X86_64", "ARM64"])
def test_runtime_platform_takes_x86_64_and_arm64_on_linux(batch: Any, architecture: str) -> None:
    register_task(batch, True, {"runtimePlatform": {"cpuArchitecture": architecture, "operatingSystemFamily": "LINUX"}})


@pytest.mark.parametrize("platform, words", [
    ({"cpuArchitecture": "AMD64"}, "cpuArchitecture must be one of X86_64, ARM64"),
    ({"cpuArchitecture": "arm64"}, "cpuArchitecture must be one of X86_64, ARM64"),
    ({"operatingSystemFamily": "MACOS"}, "operatingSystemFamily must be one of LINUX"),
    ({"operatingSystemFamily": "WINDOWS_SERVER_2022_CORE"}, "not supported by this emulator"),
])
def test_another_runtime_platform_is_refused(batch: Any, platform: dict[str, str], words: str) -> None:
    assert words in refused(register_task, batch, True, {"runtimePlatform": platform})


# LinuxParameters: devices, maxSwap, sharedMemorySize, swappiness, tmpfs: "This parameter isn't applicable to jobs
# that are running on Fargate resources."
NOT_ON_FARGATE = {
    "devices": [{"hostPath": "/dev/fuse"}],
    "maxSwap": 0,
    "sharedMemorySize": 256,
    "swappiness": 60,
    "tmpfs": [{"containerPath": "/scratch", "size": 64}],
}


@pytest.mark.parametrize("name", sorted(NOT_ON_FARGATE))
def test_linux_parameters_fargate_does_not_take_are_refused_there_and_taken_on_ec2(batch: Any, name: str) -> None:
    linux = {name: NOT_ON_FARGATE[name]}
    message = refused(register_task, batch, True, linuxParameters=linux)
    assert f"linuxParameters.{name} isn't applicable to jobs that are running on Fargate" in message
    refused(register_fargate_container, batch, resourceRequirements=resources("1", "2048"), linuxParameters=linux)
    register_task(batch, False, linuxParameters=linux)


@pytest.mark.parametrize("fargate", [True, False])
def test_an_init_process_is_taken_on_both_platforms(batch: Any, fargate: bool) -> None:
    register_task(batch, fargate, linuxParameters={"initProcessEnabled": True})


# maxSwap: "Accepted values are 0 or any positive integer"; swappiness: "whole numbers between 0 and 100".


@pytest.mark.parametrize("linux, accepted", [
    ({"maxSwap": 0}, True), ({"maxSwap": -1}, False), ({"swappiness": 0}, True), ({"swappiness": 100}, True),
    ({"swappiness": -1}, False), ({"swappiness": 101}, False), ({"sharedMemorySize": -1}, False),
    ({"tmpfs": [{"containerPath": "scratch", "size": 64}]}, False),
    ({"tmpfs": [{"containerPath": "/scratch", "size": 64, "mountOptions": ["fast"]}]}, False),
    ({"tmpfs": [{"containerPath": "/scratch", "size": 64, "mountOptions": ["noexec", "mode"]}]}, True),
])
def test_linux_parameter_bounds_on_ec2(batch: Any, linux: dict[str, Any], accepted: bool) -> None:
    if accepted:
        register_task(batch, False, linuxParameters=linux)
    else:
        refused(register_task, batch, False, linuxParameters=linux)


# Ulimit.name: "core | cpu | ... | stack". TaskContainerProperties takes ulimits on Fargate (its nofile default is
# Fargate's); ContainerProperties.ulimits "isn't applicable to jobs that are running on Fargate resources".


@pytest.mark.parametrize("fargate", [True, False])
def test_ulimits_of_an_ecs_task_are_taken_on_both_platforms(batch: Any, fargate: bool) -> None:
    register_task(batch, fargate, ulimits=[{"name": "nofile", "softLimit": 1024, "hardLimit": 4096},
                                           {"name": "memlock", "softLimit": -1, "hardLimit": -1}])


def test_ulimits_of_a_fargate_container_properties_definition_are_refused(batch: Any) -> None:
    limits = [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}]
    assert "ulimits isn't applicable" in refused(
        register_fargate_container, batch, resourceRequirements=resources("1", "2048"), ulimits=limits)
    register_ec2_container(batch, resourceRequirements=resources("1", "512"), ulimits=limits)


def test_a_ulimit_of_another_name_is_refused(batch: Any) -> None:
    message = refused(register_task, batch, False, ulimits=[{"name": "files", "softLimit": 1, "hardLimit": 1}])
    assert "ulimit name 'files' is not valid" in message


# What the job sees.

SHOW = ('echo "storage=${EMULATOR_EPHEMERAL_STORAGE_GIB:-unset} arch=${EMULATOR_CPU_ARCHITECTURE:-unset} '
        'shm=${EMULATOR_SHM_SIZE_MIB:-unset} init=${EMULATOR_INIT_PROCESS:-unset}"')


def run_main(batch: Any, logs: Any, queue: str, definition: dict[str, Any]) -> list[str]:
    job = helpers.wait_for_status(batch, helpers.submit(batch, queue, definition["jobDefinitionArn"]))
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    return helpers.log_messages(logs, helpers.container_results(job)["main"]["logStreamName"])


def test_a_fargate_job_sees_its_ephemeral_storage_and_architecture(batch: Any, logs: Any, fargate_queue: str) -> None:
    granted = register_task(batch, True, {"ephemeralStorage": {"sizeInGiB": 150},
                                          "runtimePlatform": {"cpuArchitecture": "ARM64"}},
                            command=["sh", "-c", SHOW], linuxParameters={"initProcessEnabled": True})
    assert run_main(batch, logs, fargate_queue, granted) == ["storage=150 arch=ARM64 shm=unset init=true"]
    default = register_task(batch, True, command=["sh", "-c", SHOW])
    assert run_main(batch, logs, fargate_queue, default) == ["storage=20 arch=X86_64 shm=unset init=unset"]


def test_an_ec2_job_sees_its_shared_memory_size_and_not_fargates_storage(batch: Any, logs: Any, ec2_queue: str) -> None:
    definition = register_task(batch, False, command=["sh", "-c", SHOW], linuxParameters={"sharedMemorySize": 512})
    assert run_main(batch, logs, ec2_queue, definition) == ["storage=unset arch=unset shm=512 init=unset"]


def test_a_job_runs_with_its_ulimits(batch: Any, logs: Any, ec2_queue: str) -> None:
    definition = register_task(batch, False, command=["sh", "-c", 'echo "$(ulimit -Sn) $(ulimit -Hn) $(ulimit -Sc)"'],
                               ulimits=[{"name": "nofile", "softLimit": 256, "hardLimit": 512},
                                        {"name": "core", "softLimit": 0, "hardLimit": 0}])
    assert run_main(batch, logs, ec2_queue, definition) == ["256 512 0"]


def test_a_tmpfs_mount_is_a_writable_directory_of_its_own(batch: Any, logs: Any, ec2_queue: str) -> None:
    script = "echo kept > /scratch/a && cat /scratch/a && test ! -e /scratch/../scratch-not-here && echo ok"
    definition = register_task(batch, False, command=["sh", "-c", script],
                               linuxParameters={"tmpfs": [{"containerPath": "/scratch", "size": 16}]})
    assert run_main(batch, logs, ec2_queue, definition) == ["kept", "ok"]


# TaskContainerProperties.privileged: "This parameter is not supported for Windows containers or tasks run on
# Fargate."; startTimeout, stopTimeout: "The minimum value is 2 seconds and the maximum value for Fargate is 120
# seconds."


def test_privileged_is_refused_on_fargate_and_taken_on_ec2(batch: Any) -> None:
    assert "privileged" in refused(register_task, batch, True, privileged=True)
    register_task(batch, True, privileged=False)
    register_task(batch, False, privileged=True)


@pytest.mark.parametrize("name", ["startTimeout", "stopTimeout"])
def test_start_and_stop_timeouts_take_2_seconds_up_to_120_on_fargate(batch: Any, name: str) -> None:
    for value in (2, 120):
        register_task(batch, True, None, **{name: value})
    register_task(batch, False, None, **{name: 121})  # EC2: no maximum stated
    for fargate, value in ((True, 1), (True, 121), (False, 1)):
        assert name in refused(register_task, batch, fargate, None, **{name: value})
