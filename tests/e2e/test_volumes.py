"""volumes end to end (a real Airflow, the emulator's EFS and host volumes): what one task writes on an EFS file
system (Fargate) or a host path (EC2) the next task reads, on the worker and deferred, in every child of an array
and from @task.batch_runner; a file system that does not exist fails the task with ECS's reason. Bad mounts fail
before anything is created (test_container_settings' refusal tables)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.conftest import AwsWorld, run_dag
from tests.e2e.test_failures import task_dag
from tests.e2e.test_gpus import decorated_dag

READ = "cat /data/seed > seen.txt"


def file_system(aws: AwsWorld) -> str:
    return str(aws.client("efs").create_file_system(CreationToken=uuid.uuid4().hex)["FileSystemId"])


def seeded(aws: AwsWorld, capsys: pytest.CaptureFixture[str], volume: dict[str, Any], **kwargs: Any) -> None:
    """A first task writes /data/seed."""
    result = run_dag(task_dag(f"seed_{uuid.uuid4().hex[:6]}", commands=["echo seed > /data/seed"], bucket=None,
                              volumes=[volume], **kwargs), capsys)
    assert result.state == "success", result.output[-3000:]


def reads_the_seed(aws: AwsWorld, capsys: pytest.CaptureFixture[str], dag: Any) -> None:
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    assert aws.read(result.xcom["output_files"]["seen.txt"]) == "seed\n"


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_what_a_task_writes_on_an_efs_file_system_the_next_task_reads(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], deferrable: bool
) -> None:
    volume = {"containerPath": "/data", "efs": {"fileSystemId": file_system(aws), "rootDirectory": "/runs",
                                                "transitEncryption": "ENABLED", "iam": "ENABLED"}}
    seeded(aws, capsys, volume, deferrable=deferrable)
    reads_the_seed(aws, capsys, task_dag(f"efs_reader_{deferrable}", commands=[READ], output_files=["seen.txt"],
                                         deferrable=deferrable, volumes=[{**volume, "readOnly": True}]))


def test_a_host_path_on_ec2_is_shared_by_the_tasks_that_mount_it(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    volume = {"containerPath": "/data", "hostPath": f"/mnt/{uuid.uuid4().hex}"}
    seeded(aws, capsys, volume, compute_environment_arn=aws.ec2_ce)
    reads_the_seed(aws, capsys, task_dag("host_reader", compute_environment_arn=aws.ec2_ce, commands=[READ],
                                         output_files=["seen.txt"], params={"path": volume["hostPath"]},
                                         volumes=[{"containerPath": "/data", "hostPath": "{{ params.path }}"}]))


def test_every_child_of_an_array_and_a_decorated_task_mount_the_file_system(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    volume = {"containerPath": "/data", "efs": {"fileSystemId": file_system(aws)}}
    seeded(aws, capsys, volume)
    array = run_dag(task_dag("efs_array", array_size=2, commands=[READ], output_files=["seen.txt"],
                             volumes=[volume]), capsys)
    assert array.state == "success", array.output[-3000:]
    assert array.xcom is not None
    for index in ("0", "1"):
        assert aws.read(array.xcom["children"][index]["output_files"]["seen.txt"]) == "seed\n"
    reads_the_seed(aws, capsys, decorated_dag("decorated_efs", [READ], compute_environment_arn=aws.fargate_ce,
                                              execution_role_arn="{{ var.value.execution_role_arn }}",
                                              bucket="{{ var.value.bucket }}", output_files=["seen.txt"],
                                              volumes=[volume]))


def test_a_file_system_that_does_not_exist_fails_the_task_with_ecs_reason(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    volume = {"containerPath": "/data", "efs": {"fileSystemId": "fs-0000000000000000f"}}
    result = run_dag(task_dag("no_efs", commands=["true"], volumes=[volume]), capsys)
    assert result.state == "failed"
    assert "ResourceInitializationError: failed to invoke EFS utils commands" in result.output, result.output[-3000:]
    assert "fs-0000000000000000f" in result.output
