"""ephemeral_storage, cpu_architecture, shared_memory, init_process, tmpfs and ulimits, end to end (a real Airflow,
the emulator): the job gets what was asked, a job can check it (the emulator's stand-ins,
docs/reference/emulator.md "Where the emulator differs"), each combination registers its job definition once,
and what the platform refuses, or a bound AWS sets, fails the task naming the argument before anything is
created."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.conftest import AwsWorld, load_dag, run_dag
from tests.e2e.test_failures import mutations, task_dag

SEEN_FARGATE = ('echo "$EMULATOR_EPHEMERAL_STORAGE_GIB $EMULATOR_CPU_ARCHITECTURE $EMULATOR_INIT_PROCESS '
                '$(ulimit -Sn) $(ulimit -Hn)" > seen.txt')
SEEN_EC2 = 'echo "$EMULATOR_SHM_SIZE_MIB" > seen.txt && echo scratch > /scratch/x && cat /scratch/x >> seen.txt'


def definition_of(aws: AwsWorld, job_id: str) -> dict[str, Any]:
    batch = aws.client("batch")
    arn = batch.describe_jobs(jobs=[job_id])["jobs"][0]["jobDefinition"]
    return dict(batch.describe_job_definitions(jobDefinitions=[arn])["jobDefinitions"][0])


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_a_fargate_job_gets_its_storage_architecture_init_process_and_ulimits(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], deferrable: bool
) -> None:
    dag = task_dag(f"fargate_settings_{deferrable}", params={"gib": 64, "soft": 1024}, deferrable=deferrable,
                   commands=[SEEN_FARGATE], output_files=["seen.txt"], ephemeral_storage="{{ params.gib }}",
                   cpu_architecture="arm64", init_process=True,
                   ulimits=[{"name": "nofile", "softLimit": "{{ params.soft }}", "hardLimit": 2048}])
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    assert aws.read(result.xcom["output_files"]["seen.txt"]) == "64 ARM64 true 1024 2048\n"
    task = definition_of(aws, result.xcom["job_id"])["ecsProperties"]["taskProperties"][0]
    assert task["ephemeralStorage"] == {"sizeInGiB": 64}
    assert task["runtimePlatform"] == {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"}
    main = next(c for c in task["containers"] if c["name"] == "main")
    assert main["linuxParameters"] == {"initProcessEnabled": True}
    assert main["ulimits"] == [{"name": "nofile", "softLimit": 1024, "hardLimit": 2048}]


def test_an_ec2_job_gets_its_shared_memory_and_tmpfs_and_a_second_run_reuses_the_definition(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = task_dag("ec2_settings", compute_environment_arn=aws.ec2_ce, commands=[SEEN_EC2], output_files=["seen.txt"],
                   shared_memory=256, tmpfs=[{"containerPath": "/scratch", "size": 64}])
    registered = aws.calls().get("RegisterJobDefinition", 0)
    first = run_dag(dag, capsys)
    assert first.state == "success", first.output[-3000:]
    assert first.xcom is not None
    assert aws.read(first.xcom["output_files"]["seen.txt"]) == "256\nscratch\n"
    main = next(c for c in definition_of(aws, first.xcom["job_id"])["ecsProperties"]["taskProperties"][0]["containers"]
                if c["name"] == "main")
    assert main["linuxParameters"] == {"sharedMemorySize": 256, "tmpfs": [{"containerPath": "/scratch", "size": 64}]}
    assert aws.calls().get("RegisterJobDefinition", 0) == registered + 1
    second = run_dag(dag, capsys)
    assert second.state == "success", second.output[-3000:]
    assert aws.calls().get("RegisterJobDefinition", 0) == registered + 1  # the same content: the same definition


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"ephemeral_storage": 50, "ec2": True}, r"ephemeral_storage: only for Fargate .* is an EC2 compute environment"),
    ({"cpu_architecture": "ARM64", "ec2": True}, r"cpu_architecture: only for Fargate .*Graviton types for ARM64"),
    ({"shared_memory": 256}, r"shared_memory: not available on Fargate .*Use an EC2 compute environment"),
    ({"tmpfs": [{"containerPath": "/scratch", "size": 64}]}, r"tmpfs: not available on Fargate"),
    ({"ephemeral_storage": "{{ params.gib }}", "params": {"gib": 201}},
     r"ephemeral_storage must be a whole number of GiB from 21 to 200 .*got 201"),
    ({"ephemeral_storage": "{{ params.gib }}", "params": {"gib": 20}},
     r"ephemeral_storage must be a whole number of GiB from 21 to 200 .*got 20"),
    ({"ulimits": [{"name": "nofile", "softLimit": "{{ params.soft }}", "hardLimit": 1024}], "params": {"soft": 1025}},
     r"ulimits\[0\]: softLimit 1025 is above hardLimit 1024"),
    ({"gpus": 1}, r"gpus: GPUs aren't available for jobs that are running on Fargate resources .*Use an EC2 "
                  "compute environment whose instance types have GPUs"),
    ({"gpus": "{{ params.gpus }}", "params": {"gpus": 0}, "ec2": True},
     r"gpus must be a whole number of GPUs, at least 1 .*got 0"),
    ({"repository_credentials": "arn:aws:secretsmanager:us-east-1:123456789012:secret:r", "execution_role_arn": None,
      "ec2": True}, r"repository_credentials needs execution_role_arn: ECS reads the registry's secret"),
    ({"repository_credentials": "{{ params.secret }}", "params": {"secret": "dockerhub-login"}},
     r"repository_credentials must be the ARN of a Secrets Manager secret .*got 'dockerhub-login'"),
    ({"consumable_resources": {"licence-x": "{{ params.n }}"}, "params": {"n": 0}},
     r"consumable_resources\['licence-x'\] must be a whole number of at least 1 .*got 0"),
    ({"container_properties": {"privileged": True}},
     r"container_properties\['privileged'\] is not supported for jobs on Fargate"),
    ({"container_properties": {"secrets": [{"name": "TOKEN", "valueFrom": "/app/token"}]}, "env": {"TOKEN": "x"}},
     r"container_properties\['secrets'\] and env both set TOKEN; keep one"),
    ({"volumes": [{"containerPath": "/data", "hostPath": "{{ params.path }}"}], "params": {"path": "/mnt/x"}},
     r"volumes\[0\]: a hostPath is not available on Fargate .*Use an EFS file system"),
])
def test_what_the_platform_or_aws_refuses_fails_the_task_naming_it_before_anything_is_created(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], kwargs: dict[str, Any], message: str
) -> None:
    if kwargs.pop("ec2", False):
        kwargs["compute_environment_arn"] = aws.ec2_ce
    before = mutations(aws)
    result = run_dag(task_dag("refused_settings", commands=["true"], **kwargs), capsys)
    assert result.state == "failed"
    assert re.search(message, result.output), result.output[-2000:]
    assert mutations(aws) == before


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"ephemeral_storage": 201}, "ephemeral_storage must be a whole number of GiB from 21 to 200"),
    ({"cpu_architecture": "aarch64"}, "cpu_architecture must be 'X86_64' or 'ARM64'"),
    ({"shared_memory": 0}, "shared_memory must be at least 1 MiB"),
    ({"tmpfs": [{"containerPath": "/airflow-batch/work/tmp", "size": 64}]}, "would hide or lie in the runner's volume"),
    ({"gpus": 0}, "gpus must be a whole number of GPUs, at least 1"),
    ({"repository_credentials": "arn:aws:secretsmanager:us-east-1:12345678901:secret:r"},
     "repository_credentials must be the ARN of a Secrets Manager secret"),
    ({"consumable_resources": {f"licence-{i}": 1 for i in range(6)}}, "at most 5 consumable resources; got 6"),
    ({"container_properties": {"logConfiguration": {"logDriver": "splunk"}}},
     r"container_properties\['logConfiguration'\] is the runner's: the runner sends"),
    ({"volumes": [{"containerPath": "/airflow-batch/work/data", "efs": {"fileSystemId": "fs-0123abcd"}}]},
     r"volumes\[0\].containerPath '/airflow-batch/work/data' would hide or lie in the runner's volume"),
])
def test_a_literal_out_of_bounds_fails_when_the_dag_is_parsed(aws: AwsWorld, kwargs: dict[str, Any],
                                                              message: str) -> None:
    before = mutations(aws)
    with pytest.raises(ValueError, match=message):
        task_dag("bad_settings", commands=["true"], **kwargs)
    assert mutations(aws) == before


def test_every_child_of_an_array_gets_the_settings(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    dag = task_dag("array_settings", array_size=2, commands=[SEEN_FARGATE], output_files=["seen.txt"],
                   ephemeral_storage=30, cpu_architecture="X86_64", init_process=False,
                   ulimits=[{"name": "nofile", "softLimit": 512, "hardLimit": 1024}])
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    for index in ("0", "1"):
        seen = result.xcom["children"][index]["output_files"]["seen.txt"]
        assert aws.read(seen) == "30 X86_64 false 512 1024\n"


DECORATED = """
    import datetime
    from airflow.sdk import DAG, task

    with DAG("decorated_settings", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:

        @task.batch_runner(
            task_id="shell",
            compute_environment_arn="{{ var.value.compute_environment_arn }}",
            execution_role_arn="{{ var.value.execution_role_arn }}",
            bucket="{{ var.value.bucket }}",
            output_files=["seen.txt"],
            completion_check_interval=0.2,
            ephemeral_storage=40,
            cpu_architecture="ARM64",
            init_process=True,
            ulimits=[{"name": "nofile", "softLimit": 100, "hardLimit": 200}],
        )
        def shell():
            return [%r]

        shell()
"""


def test_the_decorator_takes_the_settings_as_the_operator_does(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_dag(load_dag("decorated_settings", DECORATED % SEEN_FARGATE), capsys)
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    assert aws.read(result.xcom["output_files"]["seen.txt"]) == "40 ARM64 true 100 200\n"


FROM_XCOM = """
    import datetime
    from airflow.sdk import DAG, task
    from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

    with DAG("settings_from_xcom", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:

        @task
        def sizes() -> dict:
            return {"gib": 120, "arch": "ARM64", "init": True}

        chosen = sizes()
        BatchRunnerOperator(
            task_id="shell",
            compute_environment_arn="{{ var.value.compute_environment_arn }}",
            execution_role_arn="{{ var.value.execution_role_arn }}",
            bucket="{{ var.value.bucket }}",
            completion_check_interval=0.2,
            output_files=["seen.txt"],
            commands=[%r],
            ephemeral_storage=chosen["gib"],
            cpu_architecture=chosen["arch"],
            init_process=chosen["init"],
        )
"""


def test_the_settings_may_come_from_an_upstream_task(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_dag(load_dag("settings_from_xcom", FROM_XCOM % SEEN_FARGATE), capsys)
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    assert aws.read(result.xcom["output_files"]["seen.txt"]).split()[:3] == ["120", "ARM64", "true"]
