"""Shared fixtures: one emulator per test session, reset before each test that uses it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from airflow_batch_runner.emulator.testing import control, running_emulator

# Placeholder credentials: the emulator accepts any; nothing may reach a real account.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="session")
def emulator_session_url() -> Iterator[str]:
    with running_emulator(step_delay=0.05) as url:
        yield url


@pytest.fixture
def emulator_url(emulator_session_url: str) -> str:
    """The endpoint of a freshly reset emulator."""
    control(emulator_session_url, "reset", {})
    return emulator_session_url
