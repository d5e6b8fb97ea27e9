"""Airflow's own BatchOperator (the Amazon provider's) against the emulator: a job definition with
``Ref::`` parameters and array jobs, run by a real Airflow, with the results AWS Batch would give."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.conftest import AwsWorld, load_dag
from tests.emulator.helpers import wait_ingested

DAG = '''
import pendulum
from airflow.sdk import DAG
from airflow.providers.amazon.aws.operators.batch import BatchOperator

with DAG("{dag_id}", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False) as dag:
    BatchOperator(
        task_id="shell", job_name="{dag_id}", job_definition="{definition}", job_queue="{queue}",
        parameters={parameters!r}, array_properties={array!r}, deferrable=False, region_name="us-east-1",
    )
'''


@pytest.fixture
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """BatchClientHook waits 1-10 s at random between polls; 1 s keeps the test short."""
    from airflow.providers.amazon.aws.hooks.batch_client import BatchClientHook

    monkeypatch.setattr(BatchClientHook, "DEFAULT_DELAY_MIN", 1)
    monkeypatch.setattr(BatchClientHook, "DEFAULT_DELAY_MAX", 1)


def _queue(aws: AwsWorld) -> str:
    return aws.job_queue(f"provider-{uuid.uuid4().hex[:6]}", aws.ec2_ce)


def _definition(aws: AwsWorld, command: list[str], parameters: dict[str, str] | None = None) -> str:
    arn = aws.client("batch").register_job_definition(
        jobDefinitionName=f"provider-{uuid.uuid4().hex[:6]}", type="container", platformCapabilities=["EC2"],
        parameters=parameters or {},
        containerProperties={"image": "busybox", "command": command,
                             "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                      {"type": "MEMORY", "value": "512"}]},
    )["jobDefinitionArn"]
    return str(arn)


def _run(aws: AwsWorld, capsys: pytest.CaptureFixture[str], definition: str, queue: str,
         parameters: dict[str, str] | None = None, array: dict[str, int] | None = None) -> tuple[str, dict[str, Any]]:
    dag_id = f"provider_batch_{uuid.uuid4().hex[:6]}"
    source = DAG.format(dag_id=dag_id, definition=definition, queue=queue, parameters=parameters or {}, array=array)
    capsys.readouterr()
    state = str(load_dag(dag_id, source).test().state)  # its XCom is the bare job id, not our JSON
    batch = aws.client("batch")
    jobs = batch.list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [dag_id]}])["jobSummaryList"]
    assert len(jobs) == 1, jobs
    return state, batch.describe_jobs(jobs=[jobs[0]["jobId"]])["jobs"][0]


def _log(aws: AwsWorld, job: dict[str, Any]) -> list[str]:
    logs = aws.client("logs")
    wait_ingested(logs)  # CloudWatch Logs makes a line readable a little after it was written
    events = logs.get_log_events(
        logGroupName="/aws/batch/job", logStreamName=job["container"]["logStreamName"], startFromHead=True
    )["events"]
    return [e["message"] for e in events]


def test_parameters_fill_the_definitions_ref_placeholders(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], fast_polls: None
) -> None:
    definition = _definition(
        aws, ["sh", "-c", 'echo "$1, $2"', "greet", "Ref::greeting", "Ref::name"],
        parameters={"greeting": "hello", "name": "nobody"},
    )
    state, job = _run(aws, capsys, definition, _queue(aws), parameters={"name": "airflow"})
    assert state == "success"
    assert job["status"] == "SUCCEEDED"
    assert job["parameters"] == {"greeting": "hello", "name": "airflow"}
    assert job["container"]["command"] == ["sh", "-c", 'echo "$1, $2"', "greet", "hello", "airflow"]
    assert _log(aws, job) == ["hello, airflow"]


def test_an_array_job_runs_every_child_with_its_index(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], fast_polls: None
) -> None:
    definition = _definition(aws, ["sh", "-c", 'echo "child $AWS_BATCH_JOB_ARRAY_INDEX of $AWS_BATCH_JOB_ARRAY_SIZE"'])
    state, parent = _run(aws, capsys, definition, _queue(aws), array={"size": 3})
    assert state == "success"
    assert parent["status"] == "SUCCEEDED"
    assert parent["arrayProperties"]["size"] == 3
    assert parent["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 3
    batch = aws.client("batch")
    children = batch.describe_jobs(jobs=[f"{parent['jobId']}:{i}" for i in range(3)])["jobs"]
    assert [_log(aws, child) for child in children] == [[f"child {i} of 3"] for i in range(3)]


def test_an_array_job_with_a_failing_child_fails_the_task(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], fast_polls: None
) -> None:
    definition = _definition(aws, ["sh", "-c", '[ "$AWS_BATCH_JOB_ARRAY_INDEX" != 1 ]'])
    state, parent = _run(aws, capsys, definition, _queue(aws), array={"size": 2})
    assert state == "failed"
    assert parent["status"] == "FAILED"
    assert parent["arrayProperties"]["statusSummary"]["FAILED"] == 1
    assert parent["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 1
