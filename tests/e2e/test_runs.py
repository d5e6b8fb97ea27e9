"""What a run leaves behind: logs in the task log, no credentials anywhere, cleanup, steady state, kill."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

import pytest

from airflow_batch_runner.emulator.testing import control
from tests.e2e.conftest import AwsWorld, dags_folder, run_dag
from tests.e2e.test_failures import task_dag

SECRET_KEY_ID = "AKIAEMULATORKEY12345"
SECRET = "s3cr3t-value-that-must-never-leak"
TOKEN = "session-token-that-must-never-leak"


def test_main_container_lines_reach_the_task_log_in_order_each_once(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = task_dag("log_lines", bucket=None,
                   commands=["for i in $(seq 1 40); do echo log-line-$i; sleep 0.02; done"])
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-2000:]
    seen = [line.split("[main] ", 1)[1].split()[0] for line in result.output.splitlines() if "[main] log-line-" in line]
    assert seen == [f"log-line-{i}" for i in range(1, 41)]


@pytest.mark.parametrize("deferrable", [False, True])
def test_explicit_credentials_reach_no_log_xcom_definition_job_or_container(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], deferrable: bool
) -> None:
    dag = task_dag(
        "credentials", deferrable=deferrable,
        access_key_id=SECRET_KEY_ID, secret_key_id=SECRET, session_token=TOKEN,
        endpoint_override=aws.url, aws_conn_id=None, region_name="us-east-1",
        # The container prints the secret without it being part of the job (base64), to prove masking.
        commands=["env | sort > {{ output_dir }}/env.txt",
                  f"echo key=$(echo {base64.b64encode(SECRET.encode()).decode()} | base64 -d)"],
    )
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-2000:]
    assert result.xcom is not None
    leaked = [SECRET, TOKEN]
    for secret in leaked:
        assert secret not in result.output
        assert secret not in json.dumps(result.xcom)
    assert "key=***" in result.output  # masked, not dropped
    batch = aws.client("batch")
    job = batch.describe_jobs(jobs=[result.xcom["job_id"]])["jobs"][0]
    definition = batch.describe_job_definitions(jobDefinitions=[job["jobDefinition"]])["jobDefinitions"][0]
    container_env = aws.read(result.xcom["output_files"]["env.txt"])
    for secret in [*leaked, SECRET_KEY_ID]:
        assert secret not in json.dumps(job, default=str)
        assert secret not in json.dumps(definition, default=str)
        assert secret not in container_env
    assert "WORKING_DIR=" in container_env and "BUCKET_PATH=s3://" in container_env
    rendered = _rendered_fields("credentials")
    assert rendered["secret_key_id"] == "***"
    assert rendered["session_token"] == "***"
    assert SECRET not in json.dumps(rendered)


def _rendered_fields(dag_id: str) -> dict[str, object]:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(RenderedTaskInstanceFields).filter_by(dag_id=dag_id, task_id="shell").first()
        assert row is not None
        return dict(row.rendered_fields)


def test_sts_assume_role_is_used_for_every_call(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    before = control(aws.url, "stats")["calls"].get("sts", {}).get("AssumeRole", 0)
    dag = task_dag("assume_role", sts_role_arn="arn:aws:iam::123456789012:role/batch-runner",
                   sts_role_external_id="ext-1", sts_role_session_name="abr-test", commands=["echo assumed"])
    result = run_dag(dag, capsys)
    assert result.state == "success", [line for line in result.output.splitlines() if "rror" in line][:5]
    assert control(aws.url, "stats")["calls"]["sts"]["AssumeRole"] > before


@pytest.mark.parametrize("delete", [True, False])
def test_delete_removes_staged_inputs_only(aws: AwsWorld, capsys: pytest.CaptureFixture[str], delete: bool) -> None:
    dag = task_dag(f"cleanup_{delete}", delete=delete, input_files={"in.txt": "data"}, output_files=["out.txt"],
                   commands=["cp in.txt out.txt"])
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-2000:]
    assert result.xcom is not None
    prefix = result.xcom["bucket_path"].split("/", 3)[3]
    keys = aws.object_keys(prefix)
    assert f"{prefix}work/out.txt" in keys
    assert (f"{prefix}inputs/in.txt" in keys) is (not delete)


def test_steady_state_registers_nothing_and_calls_batch_twice_before_submit(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = task_dag("steady", input_files={"in.txt": "x"}, commands=["cat in.txt"])
    assert run_dag(dag, capsys).state == "success"
    before = aws.batch_calls()
    assert run_dag(dag, capsys).state == "success"
    after = aws.batch_calls()
    delta = {op: after.get(op, 0) - before.get(op, 0) for op in after if after.get(op, 0) != before.get(op, 0)}
    assert "RegisterJobDefinition" not in delta
    assert "CreateJobQueue" not in delta
    assert delta["SubmitJob"] == 1
    before_submit = {op: n for op, n in delta.items() if op not in ("SubmitJob", "DescribeJobs")}
    assert sum(before_submit.values()) <= 2, delta


def test_killing_the_task_terminates_its_job(aws: AwsWorld) -> None:
    task_dag("killed", commands=["sleep 120"], completion_check_interval=0.2)
    env = {**os.environ}
    proc = subprocess.Popen([sys.executable, "-m", "airflow", "dags", "test", "killed"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    batch = aws.client("batch")
    try:
        job = _wait_for_running(batch, "killed-shell-", timeout=120)
        os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            job = batch.describe_jobs(jobs=[job["jobId"]])["jobs"][0]
            if job["status"] == "FAILED":
                break
            time.sleep(0.2)
        assert job["status"] == "FAILED"
        assert "task was killed" in job["statusReason"]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        (dags_folder() / "killed.py").unlink(missing_ok=True)


def _wait_for_running(batch: Any, prefix: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for queue in batch.describe_job_queues()["jobQueues"]:
            summaries = batch.list_jobs(
                jobQueue=queue["jobQueueName"], filters=[{"name": "JOB_NAME", "values": [f"{prefix}*"]}]
            )["jobSummaryList"]
            running = [s for s in summaries if s["status"] == "RUNNING"]
            if running:
                return dict(running[0])
        time.sleep(0.3)
    raise AssertionError(f"no RUNNING job named {prefix}* within {timeout} s")


def test_wait_until_completion_accepts_timedelta(aws: AwsWorld) -> None:
    from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

    op = BatchRunnerOperator(task_id="t", compute_environment_arn="ce", commands=["true"],
                             wait_until_completion=timedelta(minutes=2), completion_check_interval=timedelta(seconds=1))
    assert (op.wait_until_completion, op.completion_check_interval) == (120, 1)


def test_literal_input_content_keeps_its_last_newline(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    dag = task_dag("trailing_newline", input_files={"names.txt": "Ada\nGrace\n"}, output_files=["count.txt"],
                   commands=["wc -l < names.txt | tr -d ' ' > count.txt"])
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-2000:]
    assert result.xcom is not None
    assert aws.read(result.xcom["output_files"]["count.txt"]) == "2\n"
