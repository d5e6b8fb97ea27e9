"""container_properties end to end (a real Airflow, the emulator): a secret and a user reach the main container
through the escape hatch, for one job, every child of an array and @task.batch_runner. What the runner owns, what
Fargate refuses and a secret that is also in env fail the task naming them before anything is created
(test_container_settings' refusal tables)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.conftest import AwsWorld, run_dag
from tests.e2e.test_failures import task_dag
from tests.e2e.test_gpus import decorated_dag

SEEN = 'echo "$TOKEN" > seen.txt'


def secret(aws: AwsWorld) -> dict[str, str]:
    arn = aws.client("secretsmanager").create_secret(Name=f"token-{uuid.uuid4().hex[:8]}",
                                                      SecretString="from-the-hatch")["ARN"]
    return {"name": "TOKEN", "valueFrom": str(arn)}


def main_of(aws: AwsWorld, job_id: str) -> dict[str, Any]:
    batch = aws.client("batch")
    arn = batch.describe_jobs(jobs=[job_id])["jobs"][0]["jobDefinition"]
    task = batch.describe_job_definitions(jobDefinitions=[arn])["jobDefinitions"][0]["ecsProperties"]
    return next(c for c in task["taskProperties"][0]["containers"] if c["name"] == "main")


def test_a_secret_and_a_user_reach_the_main_container(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    token = secret(aws)
    dag = task_dag("hatch", commands=[SEEN], output_files=["seen.txt"], params={"user": "1000"},
                   container_properties={"secrets": [token], "user": "{{ params.user }}", "stopTimeout": 30})
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    assert aws.read(result.xcom["output_files"]["seen.txt"]) == "from-the-hatch\n"
    main = main_of(aws, result.xcom["job_id"])
    assert (main["secrets"], main["user"], main["stopTimeout"]) == ([token], "1000", 30)


def test_every_child_of_an_array_reads_the_secret(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    dag = task_dag("hatch_array", array_size=2, commands=[SEEN], output_files=["seen.txt"],
                   container_properties={"secrets": [secret(aws)]})
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    for index in ("0", "1"):
        assert aws.read(result.xcom["children"][index]["output_files"]["seen.txt"]) == "from-the-hatch\n"


def test_the_decorator_takes_container_properties_as_the_operator_does(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = decorated_dag("decorated_hatch", [SEEN], compute_environment_arn=aws.ec2_ce, bucket="{{ var.value.bucket }}",
                        output_files=["seen.txt"], container_properties={"secrets": [secret(aws)], "privileged": True})
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    assert aws.read(result.xcom["output_files"]["seen.txt"]) == "from-the-hatch\n"
    assert main_of(aws, result.xcom["job_id"])["privileged"] is True
