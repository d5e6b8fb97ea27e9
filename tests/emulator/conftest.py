"""Fixtures of the emulator tests: clients on a freshly reset emulator, and ready job queues."""

from __future__ import annotations

from typing import Any

import pytest

from tests.emulator import helpers


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes a minute or so; still run by default")


@pytest.fixture
def batch(emulator_url: str) -> Any:
    return helpers.client(emulator_url, "batch")


@pytest.fixture
def logs(emulator_url: str) -> Any:
    return helpers.client(emulator_url, "logs")


@pytest.fixture
def s3(emulator_url: str) -> Any:
    return helpers.client(emulator_url, "s3")


@pytest.fixture
def ec2_queue(batch: Any) -> str:
    """The ARN of a VALID, ENABLED job queue on a VALID EC2 compute environment."""
    return helpers.create_queue_for(batch, "EC2")


@pytest.fixture
def fargate_queue(batch: Any) -> str:
    """The ARN of a VALID, ENABLED job queue on a VALID Fargate compute environment."""
    return helpers.create_queue_for(batch, "FARGATE")
