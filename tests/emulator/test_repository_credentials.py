"""Private registry credentials, from the API reference (RepositoryCredentials: "credentialsParameter: the Amazon
Resource Name (ARN) of the secret containing the private repository credentials", required) and the ECS developer
guide ("Private registry authentication for tasks": the secret holds ``{"username": ..., "password": ...}`` and the
task execution role, which is required, reads it when the task starts)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.emulator import helpers
from tests.emulator.helpers import container
from tests.emulator.test_batch_validation import refused

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def secrets(emulator_url: str) -> Any:
    return helpers.client(emulator_url, "secretsmanager")


def register(batch: Any, credentials: Any, fargate: bool = False, **task: Any) -> str:
    main = container("main", ["true"], image="registry.example.com/team/app:1", repositoryCredentials=credentials)
    return str(batch.register_job_definition(
        jobDefinitionName=helpers.unique("private"), type="container",
        platformCapabilities=["FARGATE" if fargate else "EC2"],
        ecsProperties=helpers.ecs_properties([main], fargate=fargate, **task),
    )["jobDefinitionArn"])


def with_role(batch: Any, credentials: Any) -> str:
    return register(batch, credentials, executionRoleArn=helpers.EXECUTION_ROLE)


def registry_secret(secrets: Any, value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return str(secrets.create_secret(Name=helpers.unique("registry"), SecretString=text)["ARN"])


def test_repository_credentials_without_an_execution_role_are_refused(batch: Any) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:registry-AbCdEf"
    message = refused(register, batch, {"credentialsParameter": arn})
    assert "repositoryCredentials" in message and "executionRoleArn" in message
    assert with_role(batch, {"credentialsParameter": arn}).endswith(":1")
    assert register(batch, {"credentialsParameter": arn}, fargate=True).endswith(":1")  # Fargate's role is there


def test_an_empty_credentials_parameter_is_refused(batch: Any) -> None:
    assert "credentialsParameter" in refused(with_role, batch, {"credentialsParameter": ""})


def test_a_job_runs_while_its_registry_secret_is_readable_and_no_longer_once_it_is_deleted(
    batch: Any, secrets: Any, ec2_queue: str
) -> None:
    arn = registry_secret(secrets, {"username": "robot", "password": "s3cret"})
    definition = with_role(batch, {"credentialsParameter": arn})
    job = helpers.wait_for_status(batch, helpers.submit(batch, ec2_queue, definition))
    assert job["status"] == "SUCCEEDED"
    main = job["ecsProperties"]["taskProperties"][0]["containers"][0]
    assert main["repositoryCredentials"] == {"credentialsParameter": arn}
    secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    later = helpers.wait_for_status(batch, helpers.submit(batch, ec2_queue, definition))
    assert later["status"] == "FAILED" and arn in later["statusReason"]


@pytest.mark.parametrize("value", [None, "robot:s3cret", {"username": "robot"}, {"password": "s3cret"}, ["robot"]])
def test_a_missing_or_malformed_registry_secret_fails_the_attempt_before_any_container_starts(
    batch: Any, secrets: Any, ec2_queue: str, value: Any
) -> None:
    arn = ("arn:aws:secretsmanager:us-east-1:123456789012:secret:no-such-AbCdEf" if value is None
           else registry_secret(secrets, value))
    definition = with_role(batch, {"credentialsParameter": arn})
    job = helpers.wait_for_status(batch, helpers.submit(batch, ec2_queue, definition))
    assert job["status"] == "FAILED"
    assert job["statusReason"].startswith("ResourceInitializationError: unable to pull secrets or registry auth")
    assert arn in job["statusReason"]
    assert len(job["attempts"]) == 1 and "startedAt" not in job
