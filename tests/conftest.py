"""Shared fixtures: one emulator per test session, reset before each test that uses it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

# Airflow reads its configuration at import: give the whole test session its own home first. Under
# pytest-xdist each worker gets its own (and so its own SQLite database): the home the controller made
# reaches the workers through the environment.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix=f"abr-airflow-home-{os.environ['PYTEST_XDIST_WORKER']}-")
    os.environ.pop("AIRFLOW__CORE__DAGS_FOLDER", None)
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="abr-airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
# dag.test() finds a DAG through the DAGs folder: tests write theirs (and copy the examples) there.
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", os.path.join(os.environ["AIRFLOW_HOME"], "dags"))
os.makedirs(os.environ["AIRFLOW__CORE__DAGS_FOLDER"], exist_ok=True)

import pytest  # noqa: E402

from airflow_batch_runner.emulator.testing import control, running_emulator  # noqa: E402

# Placeholder credentials: the emulator accepts any; nothing may reach a real account.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_PROFILE", None)


# --8<-- [start:fixtures]
@pytest.fixture(scope="session")
def emulator_session_url() -> Iterator[str]:
    with running_emulator(step_delay=0.05) as url:
        yield url


@pytest.fixture
def emulator_url(emulator_session_url: str) -> str:
    """The endpoint of a freshly reset emulator."""
    control(emulator_session_url, "reset", {})
    return emulator_session_url
# --8<-- [end:fixtures]
