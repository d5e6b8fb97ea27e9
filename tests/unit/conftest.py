"""Unit tests of the modules that call AWS: the hook on the emulator (the network boundary), nothing else."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from airflow_batch_runner.hooks.batch_runner import BatchRunnerHook, ConnectionOverrides
from tests.emulator import helpers


def hook_for(url: str) -> BatchRunnerHook:
    """The runner's hook on the emulator; each call tried once (botocore's retries are not under test)."""
    return BatchRunnerHook(aws_conn_id=None, region_name=helpers.REGION, config={"retries": {"total_max_attempts": 1}},
                           overrides=ConnectionOverrides(endpoint_override=url))


@pytest.fixture
def hook(emulator_url: str) -> BatchRunnerHook:
    return hook_for(emulator_url)


@pytest.fixture
def s3(emulator_url: str) -> Any:
    return helpers.client(emulator_url, "s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"unit-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    return name


def keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))
