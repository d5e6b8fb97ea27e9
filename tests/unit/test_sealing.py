"""Explicit credentials leave the trigger's stored kwargs sealed with Airflow's Fernet key, and literal
credentials leave the serialized DAG as ``***``."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet

from airflow_batch_runner.masking import CredentialsUnreadable, can_seal, seal, unseal
from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator
from airflow_batch_runner.triggers.batch_runner import BatchRunnerTrigger
from tests import fernet

SECRETS: dict[str, Any] = {"access_key_id": "AKIAUNITSEALEDKEY001", "secret_key_id": "unit-secret-key-never-stored",
           "session_token": "unit-session-token-never-stored", "sts_role_external_id": "unit-external-id-never-stored"}


@pytest.fixture
def fernet_key() -> Iterator[Any]:
    """A fresh ``[core] fernet_key`` for the test, and a function to change it."""
    with contextlib.ExitStack() as stack:
        def use(key: str) -> None:
            stack.enter_context(fernet.fernet_key(key))

        use(Fernet.generate_key().decode())
        yield use


def _trigger(**kwargs: Any) -> BatchRunnerTrigger:
    return BatchRunnerTrigger(job_id="job-1", deadline=None, limit="60 s", poll_interval=1.0, aws_conn_id=None,
                              region_name="us-east-1", **kwargs)


def test_serialized_trigger_holds_no_credential_and_revives_with_them(fernet_key: Any) -> None:
    overrides = {**SECRETS, "endpoint_override": "http://127.0.0.1:1", "sts_role_arn": "arn:aws:iam::1:role/r"}
    classpath, kwargs = _trigger(overrides=overrides).serialize()
    stored = json.dumps(kwargs)
    assert [name for name, value in SECRETS.items() if value in stored] == []
    assert kwargs["overrides"] == {"endpoint_override": "http://127.0.0.1:1", "sts_role_arn": "arn:aws:iam::1:role/r"}
    revived = BatchRunnerTrigger(**kwargs)
    assert revived.overrides == overrides
    assert revived.serialize() == (classpath, kwargs)  # sealed once: a restarted trigger stores the same kwargs


def test_trigger_without_credentials_seals_nothing(fernet_key: Any) -> None:
    _, kwargs = _trigger(overrides={"endpoint_override": "http://127.0.0.1:1"}).serialize()
    assert kwargs["sealed_credentials"] is None


def test_a_triggerer_with_another_fernet_key_fails_the_wait_naming_the_setting(fernet_key: Any) -> None:
    _, kwargs = _trigger(overrides=dict(SECRETS)).serialize()
    fernet_key(Fernet.generate_key().decode())
    revived = BatchRunnerTrigger(**kwargs)

    async def first_event() -> dict[str, Any]:
        async for event in revived.run():
            return dict(event.payload)
        raise AssertionError("no event")

    event = asyncio.run(first_event())
    assert event["status"] == "error"
    assert "[core] fernet_key" in event["message"]
    assert revived.serialize()[1] == kwargs  # the token is kept as it came, for a triggerer that can open it


def test_a_key_rotation_still_opens_tokens_of_the_old_key(fernet_key: Any) -> None:
    old = Fernet.generate_key().decode()
    fernet_key(old)
    token = seal(SECRETS)
    fernet_key(f"{Fernet.generate_key().decode()},{old}")
    assert unseal(token) == SECRETS


def test_without_a_fernet_key_nothing_is_sealed(fernet_key: Any) -> None:
    fernet_key("")
    assert can_seal() is False
    with pytest.raises(CredentialsUnreadable, match="fernet_key"):
        seal(SECRETS)


def test_literal_credentials_are_serialized_as_stars_and_rendered_as_given() -> None:
    try:
        from airflow.serialization.serialized_objects import OperatorSerialization as serializer
    except ImportError:  # Airflow before 3.2
        from airflow.serialization.serialized_objects import SerializedBaseOperator as serializer  # type: ignore

    op = BatchRunnerOperator(task_id="shell", compute_environment_arn="ce", commands=["true"], **SECRETS)
    serialized = json.dumps(serializer.serialize_operator(op))
    assert [name for name, value in SECRETS.items() if value in serialized] == []
    assert {name: serialized.count(f'"{name}": "***"') for name in SECRETS} == dict.fromkeys(SECRETS, 1)
    assert {name: op.render_template(getattr(op, name), {}) for name in SECRETS} == SECRETS


def _serialized_dag(build: Any) -> str:
    from airflow.sdk import DAG

    try:
        from airflow.serialization.serialized_objects import DagSerialization as serializer
    except ImportError:  # Airflow before 3.2
        from airflow.serialization.serialized_objects import SerializedDAG as serializer  # type: ignore

    with DAG(dag_id="sealed_decorator", schedule=None) as dag:
        build()
    return json.dumps(serializer.to_dict(dag))


@pytest.mark.parametrize("shape", ["plain", "expand", "override"])
def test_credentials_of_the_decorator_leave_the_serialized_dag_as_stars(shape: str) -> None:
    """``@task.batch_runner(access_key_id=...)`` mapped or not, and ``.override(...)``: Airflow serializes
    the decorator's own keywords as a mapped task's partial arguments, past the operator's ``__init__``."""
    from airflow.sdk import task

    def build() -> None:
        given = {} if shape == "override" else SECRETS

        @task.batch_runner(compute_environment_arn="ce", **given)
        def shell(word: str) -> str:
            return f"echo {word}"

        if shape == "plain":
            shell("a")
        elif shape == "expand":
            shell.expand(word=["a", "b"])
        else:
            shell.override(**SECRETS).expand(word=["a", "b"])

    serialized = _serialized_dag(build)
    assert [name for name, value in SECRETS.items() if value in serialized] == []
