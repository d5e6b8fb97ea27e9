"""repository_credentials end to end (a real Airflow, the emulator): the main container's image is pulled with a
Secrets Manager secret's credentials (the emulator reads the secret at task start, docs: emulator, "Where the emulator
differs"), for one job, every child of an array and @task.batch_runner; a secret the task cannot read fails the
job with ECS's reason; a bad ARN or no execution role fails the task naming the argument before anything is
created (test_container_settings' refusal tables)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.conftest import AwsWorld, run_dag
from tests.e2e.test_failures import task_dag
from tests.e2e.test_gpus import decorated_dag

IMAGE = "registry.example.com/team/app:1"


def registry_secret(aws: AwsWorld, name: str) -> str:
    value = json.dumps({"username": "robot", "password": "s3cret"})
    return str(aws.client("secretsmanager").create_secret(Name=f"{name}-{aws.bucket}", SecretString=value)["ARN"])


def containers_of(aws: AwsWorld, job_id: str) -> dict[str, Any]:
    batch = aws.client("batch")
    arn = batch.describe_jobs(jobs=[job_id])["jobs"][0]["jobDefinition"]
    task = batch.describe_job_definitions(jobDefinitions=[arn])["jobDefinitions"][0]["ecsProperties"]
    return {c["name"]: c for c in task["taskProperties"][0]["containers"]}


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_a_private_image_is_pulled_with_the_secret_and_a_deleted_secret_fails_the_job(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], deferrable: bool
) -> None:
    secret = registry_secret(aws, f"registry-{deferrable}")
    dag = task_dag(f"private_{deferrable}", compute_environment_arn=aws.ec2_ce, container_image=IMAGE,
                   params={"secret": secret}, repository_credentials="{{ params.secret }}", deferrable=deferrable,
                   commands=["echo pulled > out.txt"], output_files=["out.txt"])
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    containers = containers_of(aws, result.xcom["job_id"])
    assert containers["main"]["repositoryCredentials"] == {"credentialsParameter": secret}
    assert "repositoryCredentials" not in containers["outputs"]  # the AWS CLI image is public
    aws.client("secretsmanager").delete_secret(SecretId=secret, ForceDeleteWithoutRecovery=True)
    again = run_dag(dag, capsys)
    assert again.state == "failed"
    assert "ResourceInitializationError: unable to pull secrets or registry auth" in again.output
    assert secret in again.output


def test_every_child_of_an_array_pulls_the_private_image(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    secret = registry_secret(aws, "array")
    dag = task_dag("private_array", compute_environment_arn=aws.ec2_ce, container_image=IMAGE, array_size=2,
                   repository_credentials=secret, commands=["echo pulled > out.txt"], output_files=["out.txt"])
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    assert [aws.read(result.xcom["children"][i]["output_files"]["out.txt"]) for i in ("0", "1")] == ["pulled\n"] * 2
    containers = containers_of(aws, result.xcom["job_id"])
    assert [n for n, c in containers.items() if "repositoryCredentials" in c] == ["prep", "main"]


def test_the_decorator_takes_repository_credentials_as_the_operator_does(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = registry_secret(aws, "decorated")
    dag = decorated_dag("decorated_private", ["true"], compute_environment_arn=aws.ec2_ce,
                        execution_role_arn="{{ var.value.execution_role_arn }}", container_image=IMAGE,
                        repository_credentials=secret)
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    assert containers_of(aws, result.xcom["job_id"])["main"]["repositoryCredentials"] == {
        "credentialsParameter": secret}
