"""gpus end to end (a real Airflow, the emulator): a job on an EC2 compute environment with GPU instance types gets
its GPUs (the emulator's EMULATOR_GPUS stand-in, docs: emulator) and keeps its definition, on
the worker and deferred, in every child of an array and from @task.batch_runner. On Fargate, or below 1, the task
fails naming ``gpus`` before anything is created (test_container_settings' refusal tables)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.conftest import AwsWorld, load_dag, run_dag, wait_valid
from tests.e2e.test_failures import task_dag

SEEN = 'echo "$EMULATOR_GPUS" > seen.txt'


def gpu_ce(aws: AwsWorld) -> str:
    """An EC2 compute environment of g4dn.12xlarge instances (48 vCPUs, 4 GPUs each), up to two of them."""
    batch = aws.client("batch")
    arn = str(batch.create_compute_environment(
        computeEnvironmentName=f"gpu-{uuid.uuid4().hex[:6]}", type="MANAGED",
        computeResources={"type": "EC2", "minvCpus": 0, "maxvCpus": 96, "instanceTypes": ["g4dn.12xlarge"],
                          "instanceRole": "ecsInstanceRole", "subnets": ["subnet-1"], "securityGroupIds": ["sg-1"]},
    )["computeEnvironmentArn"])
    wait_valid(batch, [arn])
    return arn


def definition_of(aws: AwsWorld, job_id: str) -> str:
    return str(aws.client("batch").describe_jobs(jobs=[job_id])["jobs"][0]["jobDefinition"])


def main_override(aws: AwsWorld, job_id: str) -> dict[str, Any]:
    job = aws.client("batch").describe_jobs(jobs=[job_id])["jobs"][0]
    return next(c for c in job["ecsProperties"]["taskProperties"][0]["containers"] if c["name"] == "main")


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_an_ec2_job_gets_its_gpus_and_the_definition_of_a_job_without_them(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], deferrable: bool
) -> None:
    ce = gpu_ce(aws)
    plain = run_dag(task_dag(f"no_gpus_{deferrable}", compute_environment_arn=ce, commands=[SEEN],
                             output_files=["seen.txt"], deferrable=deferrable), capsys)
    assert plain.state == "success", plain.output[-3000:]
    assert plain.xcom is not None
    assert aws.read(plain.xcom["output_files"]["seen.txt"]) == "\n"
    dag = task_dag(f"gpus_{deferrable}", compute_environment_arn=ce, params={"gpus": 3}, deferrable=deferrable,
                   commands=[SEEN], output_files=["seen.txt"], gpus="{{ params.gpus }}")
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    assert aws.read(result.xcom["output_files"]["seen.txt"]) == "3\n"
    assert {"type": "GPU", "value": "3"} in main_override(aws, result.xcom["job_id"])["resourceRequirements"]
    # the job definition is the plain one's (the same images and settings: GPUs travel in the override)
    assert definition_of(aws, result.xcom["job_id"]) == definition_of(aws, plain.xcom["job_id"])


def test_every_child_of_an_array_gets_its_gpus(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    dag = task_dag("array_gpus", compute_environment_arn=gpu_ce(aws), array_size=2, commands=[SEEN],
                   output_files=["seen.txt"], gpus=2)
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    for index in ("0", "1"):
        assert aws.read(result.xcom["children"][index]["output_files"]["seen.txt"]) == "2\n"


def decorated_dag(dag_id: str, commands: list[str], **kwargs: Any) -> Any:
    """A DAG of one ``@task.batch_runner`` "shell" returning ``commands``; kwargs are written with repr()."""
    args = {"task_id": "shell", "completion_check_interval": 0.2, **kwargs}
    rendered = ",\n            ".join(f"{k}={v!r}" for k, v in args.items())
    return load_dag(dag_id, f"""
    import datetime
    from airflow.sdk import DAG, task

    with DAG({dag_id!r}, schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:

        @task.batch_runner(
            {rendered},
        )
        def shell():
            return {commands!r}

        shell()
    """)


def test_the_decorator_takes_gpus_as_the_operator_does(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    dag = decorated_dag("decorated_gpus", [SEEN], compute_environment_arn=gpu_ce(aws), bucket="{{ var.value.bucket }}",
                        output_files=["seen.txt"], gpus=1)
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    assert aws.read(result.xcom["output_files"]["seen.txt"]) == "1\n"
