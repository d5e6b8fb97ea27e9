"""A real Airflow (its own home and SQLite database) wired to the emulator through aws_default."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.emulator.helpers import wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "dags_examples"


# make test-floor repeats, on the oldest Airflow and Amazon provider the package accepts, the end-to-end modules that
# go through a surface those versions implement differently. The others test our own code's logic on surfaces no
# Airflow version changes (marker "own_logic", left out of the floor run; make test runs them all). A new module must
# be put in one of the two, or collection fails.
AIRFLOW_SURFACES: dict[str, str] = {
    "test_array.py": "an array task deferred, killed and retried after a worker crash",
    "test_asset_events.py": "asset aliases, asset events and the DAG runs they schedule",
    "test_computed_arguments.py": "template rendering of params and XComArgs",
    "test_decorator.py": "the TaskFlow decorator, mapping and the Rendered Templates of a deferred task",
    "test_deferred.py": "deferral: the triggerer, the event and execute_complete",
    "test_failures.py": "failure callbacks and their context",
    "test_hook.py": "the Amazon provider's base hook and connection",
    "test_links.py": "extra links and their persisted XComs",
    "test_openlineage.py": "the OpenLineage provider's listener (skipped where it is not installed)",
    "test_reference_examples.py": "the example DAGs: XCom between tasks, dynamic task mapping",
    "test_result_secrets.py": "the Task SDK's secrets masker, in the worker and a triggerer process",
    "test_resume.py": "retries after a worker crash, the task state store (Airflow 3.3) or its absence",
    "test_resume_lookup.py": "a retry's lookup of its earlier try's job",
    "test_runs.py": "the task log, on_kill of a running task, connections with assumed roles",
    "test_secrets.py": "what Airflow persists: every table of the metadata database",
    "test_templated_names.py": "template rendering of dict keys, mapped tasks",
    "test_trigger.py": "a trigger's on_kill and the task instance's state it asks for",
    "test_trigger_logs.py": "what a trigger logs reaching the task log",
    "test_xcomarg_fields.py": "XComArgs in templated fields, expand",
}
OWN_LOGIC: dict[str, str] = {
    "test_amazon_batch_operator.py": "the peer operator against the emulator",
    "test_argument_errors.py": "our argument checks",
    "test_array_logs.py": "our sampling of running children",
    "test_cleanup_errors.py": "our cleanup's outcome",
    "test_consumable_resources.py": "a container property",
    "test_container_properties.py": "a container property",
    "test_container_settings.py": "container properties",
    "test_events.py": "our events queue reader",
    "test_failure_messages.py": "our failure message",
    "test_gpus.py": "a container property",
    "test_hostile_output.py": "our result and log readers",
    "test_input_values.py": "our staging",
    "test_options.py": "our sidecars",
    "test_outputs_and_limits.py": "our outputs and request limits",
    "test_repository_credentials.py": "a container property",
    "test_results.py": "our results and timings",
    "test_runnable.py": "our stuck-job limit",
    "test_spot.py": "our Spot retries",
    "test_volumes.py": "a container property",
    "test_worker_logs.py": "our worker's log thread",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        name = item.path.name
        if item.path.parent != Path(__file__).parent:
            continue
        if name in OWN_LOGIC:
            item.add_marker(pytest.mark.own_logic)
        elif name not in AIRFLOW_SURFACES:
            raise pytest.UsageError(
                f"tests/e2e/{name} is in neither AIRFLOW_SURFACES nor OWN_LOGIC of tests/e2e/conftest.py: put it in "
                "the first if it goes through a surface of Airflow or the Amazon provider (make test-floor runs it), "
                "in the second otherwise")


@pytest.fixture(scope="session")
def airflow_db() -> None:
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, env=os.environ.copy()
    )


def dags_folder() -> Path:
    return Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])


def load_dag(name: str, source: str | None = None) -> Any:
    """Write (or copy from dags_examples) a DAG file into the DAGs folder and import its ``dag``."""
    path = dags_folder() / f"{name}.py"
    if source is None:
        shutil.copy(EXAMPLES / f"{name}.py", path)
    else:
        path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(f"dags_{name}_{uuid.uuid4().hex[:6]}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        path.unlink()  # a broken file would break every later DAG folder parse
        raise
    return module.dag


@dataclass
class AwsWorld:
    url: str
    fargate_ce: str
    ec2_ce: str
    eks_ce: str
    bucket: str
    execution_role: str = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"

    def client(self, service: str) -> Any:
        make: Any = boto3.client
        return make(service, endpoint_url=self.url, region_name="us-east-1")

    def read(self, uri: str) -> str:
        """The text of an ``s3://`` object, e.g. an output file an XCom points to."""
        bucket, key = uri[5:].split("/", 1)
        return str(self.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode())

    def calls(self, service: str = "batch") -> dict[str, int]:
        """The emulator's count of calls to one service so far, by operation (every caller's)."""
        from airflow_batch_runner.emulator.testing import control

        return dict(control(self.url, "stats")["calls"].get(service, {}))

    def main_log_stream(self, job_id: str) -> str:
        """The log stream of the job's first container (its main one when it stages nothing)."""
        job = self.client("batch").describe_jobs(jobs=[job_id])["jobs"][0]
        return str(job["ecsProperties"]["taskProperties"][0]["containers"][0]["logStreamName"])

    def job_queue(self, name: str, compute_environment: str, **params: Any) -> str:
        """A job queue on one compute environment, once it is VALID (one emulator step after creation)."""
        batch = self.client("batch")
        queue = str(batch.create_job_queue(
            jobQueueName=name, priority=1, state="ENABLED",
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": compute_environment}], **params,
        )["jobQueueArn"])
        wait_until(lambda: batch.describe_job_queues(jobQueues=[queue])["jobQueues"][0]["status"] == "VALID")
        return queue

    def queue_where_jobs_never_start(self, name: str) -> str:
        """A queue on a DISABLED Fargate compute environment: the jobs sent there stay RUNNABLE."""
        batch = self.client("batch")
        ce = _compute_environment(batch, f"{name}-disabled-{uuid.uuid4().hex[:6]}", "FARGATE", state="DISABLED")
        wait_valid(batch, [ce])
        return self.job_queue(name, ce)

    def object_keys(self, prefix: str = "") -> list[str]:
        s3 = self.client("s3")
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


def wait_valid(batch: Any, compute_environments: list[str]) -> None:
    """Until every compute environment is VALID (one emulator step after creation)."""
    wait_until(lambda: {ce["status"] for ce in batch.describe_compute_environments(
        computeEnvironments=compute_environments)["computeEnvironments"]} == {"VALID"})


def _compute_environment(
    batch: Any, name: str, resource_type: str | None, eks: bool = False, state: str = "ENABLED"
) -> str:
    kwargs: dict[str, Any] = {"computeEnvironmentName": name, "type": "MANAGED", "state": state}
    if eks:
        kwargs["eksConfiguration"] = {"eksClusterArn": "arn:aws:eks:us-east-1:123456789012:cluster/c",
                                      "kubernetesNamespace": "batch"}
        resource_type = "EC2"
    # Room for a 1,000-child array of 1-vCPU jobs at once: these tests are about throughput, not capacity.
    kwargs["computeResources"] = {"type": resource_type, "maxvCpus": 4096, "subnets": ["subnet-1"],
                                  "securityGroupIds": ["sg-1"]}
    if resource_type == "EC2":
        kwargs["computeResources"].update(minvCpus=0, instanceTypes=["optimal"], instanceRole="ecsInstanceRole")
    return str(batch.create_compute_environment(**kwargs)["computeEnvironmentArn"])


@pytest.fixture
def aws(emulator_url: str, airflow_db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsWorld]:
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        json.dumps({"conn_type": "aws", "login": "testing", "password": "testing",
                    "extra": {"endpoint_url": emulator_url, "region_name": "us-east-1"}}),
    )
    batch = boto3.client("batch", endpoint_url=emulator_url, region_name="us-east-1")
    suffix = uuid.uuid4().hex[:6]
    world = AwsWorld(
        url=emulator_url,
        fargate_ce=_compute_environment(batch, f"fargate-{suffix}", "FARGATE"),
        ec2_ce=_compute_environment(batch, f"ec2-{suffix}", "EC2"),
        eks_ce=_compute_environment(batch, f"eks-{suffix}", None, eks=True),
        bucket=f"bucket-{suffix}",
    )
    world.client("s3").create_bucket(Bucket=world.bucket)
    for key, value in {
        "COMPUTE_ENVIRONMENT_ARN": world.fargate_ce,
        "EC2_COMPUTE_ENVIRONMENT_ARN": world.ec2_ce,
        "EXECUTION_ROLE_ARN": world.execution_role,
        "BUCKET": world.bucket,
        "REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(f"AIRFLOW_VAR_{key}", value)
    wait_valid(batch, [world.fargate_ce, world.ec2_ce, world.eks_ce])
    yield world


@dataclass
class DagResult:
    state: str
    output: str
    xcom: dict[str, Any] | None
    run_id: str = ""


UNPRINTED = "--- logged by the task or its trigger, not printed where the test reads (see run_dag) ---"


@contextmanager
def structlog_messages() -> Iterator[list[str]]:
    """The messages Airflow's structlog loggers (a task's, a trigger's) are given meanwhile, as formatted.

    Seen at the head of the processor chain: in some orders of the suite's tests within one process, what a
    trigger run in line by ``dag.test`` logs is printed to an earlier test's stream (or dropped) rather than to
    this test's captured output, although the trigger logged it."""
    import structlog

    seen: list[str] = []

    def note(logger: Any, method: str, event_dict: Any) -> Any:
        event, args = event_dict.get("event"), event_dict.get("positional_args")
        try:
            seen.append(str(event) % tuple(args) if args else str(event))
        except (TypeError, ValueError):
            seen.append(str(event))
        return event_dict

    processors = structlog.get_config()["processors"]
    structlog.configure(processors=[note, *processors])
    try:
        yield seen
    finally:
        structlog.configure(processors=processors)


def not_found_in(text: str, messages: list[str]) -> list[str]:
    """The messages that are not in ``text``. Each is looked for after the previous one's place first (they are
    printed in the order logged, mostly), so a long output is read about once rather than once per message."""
    missing, place = [], 0
    for message in messages:
        found = text.find(message, place)
        if found < 0:
            found = text.find(message)
        if found < 0:
            missing.append(message)
        elif found >= place:
            place = found + len(message)
    return missing


def run_dag(dag: Any, capsys: pytest.CaptureFixture[str], conf: dict[str, Any] | None = None,
            task_id: str = "shell") -> DagResult:
    """``dag.test()`` with the task log captured, and the task's XCom return_value. Messages that were logged but
    did not reach the captured output are added after it, under ``UNPRINTED`` (see ``structlog_messages``)."""
    capsys.readouterr()
    with structlog_messages() as logged:
        dagrun = dag.test(run_conf=conf)
    out = capsys.readouterr()
    printed = out.out + out.err
    unprinted = not_found_in(printed, logged)
    if unprinted:
        printed += "\n".join([UNPRINTED, *unprinted, ""])
    return DagResult(str(dagrun.state), printed, xcom_value(dag.dag_id, dagrun.run_id, task_id), dagrun.run_id)


def link_data(dag_id: str, run_id: str, task_id: str = "shell") -> dict[str, dict[str, Any]]:
    """What the task persisted for its two extra links, by link key."""
    found = {key: xcom_value(dag_id, run_id, task_id, key=key) for key in ("batch_job_details", "cloudwatch_events")}
    assert all(found.values()), f"missing link data: {found}"
    return {key: dict(value or {}) for key, value in found.items()}


def xcom_value(dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> dict[str, Any] | None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter(XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.task_id == task_id,
                    XComModel.key == key)
            .first()
        )
        if row is None:
            return None
        value = row.value
        return json.loads(value) if isinstance(value, str) else value
