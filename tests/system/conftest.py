"""One emulator and one running Airflow for the whole system test session."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from airflow_batch_runner.emulator.testing import running_emulator
from tests.system.cluster import ROOT, Cluster, aws_connection, running_airflow

SYSTEM_DAGS = Path(__file__).parent / "dags"


class World:
    def __init__(self, url: str) -> None:
        self.url = url
        self.bucket = "system-bucket"
        make: Any = boto3.client
        self.batch = make("batch", endpoint_url=url, region_name="us-east-1")
        self.s3 = make("s3", endpoint_url=url, region_name="us-east-1")
        self.s3.create_bucket(Bucket=self.bucket)
        self.compute_environment = self.batch.create_compute_environment(
            computeEnvironmentName="system-fargate", type="MANAGED",
            computeResources={"type": "FARGATE", "maxvCpus": 16, "subnets": ["subnet-1"],
                              "securityGroupIds": ["sg-1"]},
        )["computeEnvironmentArn"]
        time.sleep(0.5)
        # A job queue whose Batch events reach the triggerer (the DAG system_events submits to it).
        self.events_queue = self.batch.create_job_queue(
            jobQueueName="system-events", priority=1, state="ENABLED",
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": self.compute_environment}],
        )["jobQueueArn"]

    def set_up_events(self) -> str:
        """The events queue and rule, made by the setup command a user runs; its queue URL."""
        deadline = time.monotonic() + 60
        while self.batch.describe_job_queues(jobQueues=[self.events_queue])["jobQueues"][0]["status"] != "VALID":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        done = subprocess.run(
            [sys.executable, "-m", "airflow_batch_runner.event_setup", "--job-queue", self.events_queue,
             "--region", "us-east-1"],
            env={**os.environ, **aws_connection(self.url)}, capture_output=True, text=True, check=True)
        return done.stdout.split("events_queue_url = ", 1)[1].strip()

    def read(self, uri: str) -> str:
        bucket, key = uri[5:].split("/", 1)
        return str(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode())

    def jobs(self, name_prefix: str) -> list[dict[str, Any]]:
        found = []
        for queue in self.batch.describe_job_queues()["jobQueues"]:
            pages = self.batch.get_paginator("list_jobs").paginate(
                jobQueue=queue["jobQueueArn"], filters=[{"name": "JOB_NAME", "values": [f"{name_prefix}*"]}]
            )
            found += [job for page in pages for job in page["jobSummaryList"]]
        return found


@pytest.fixture(scope="session")
def world() -> Iterator[World]:
    with running_emulator(step_delay=0.2) as url:
        yield World(url)


@pytest.fixture(scope="session")
def airflow(world: World) -> Iterator[Cluster]:
    dags = sorted((ROOT / "dags_examples").glob("*.py")) + sorted(SYSTEM_DAGS.glob("*.py"))
    variables = {
        "compute_environment_arn": world.compute_environment,
        "execution_role_arn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
        "bucket": world.bucket,
        "region": "us-east-1",
        "events_job_queue_arn": world.events_queue,
    }
    # Events on for the whole cluster: the jobs of other queues (not in the rule) are polled as before.
    events = {} if os.environ.get("ABR_SYSTEM_NO_EVENTS") else {
        "AIRFLOW__BATCH_RUNNER__EVENTS_QUEUE_URL": world.set_up_events()}
    with running_airflow(world.url, variables, dags, events) as cluster:
        yield cluster
