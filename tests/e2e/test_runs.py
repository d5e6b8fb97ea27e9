"""What a run leaves behind: live logs in the task log, no credentials anywhere, assumed roles, project files,
template variables, EC2, cleanup, steady state, kill."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_batch_runner.emulator.testing import control
from airflow_batch_runner.layout import VOLUME_ROOT
from tests.e2e.conftest import AwsWorld, DagResult, dags_folder, run_dag, structlog_messages
from tests.e2e.test_failures import staged_inputs, task_dag
from tests.emulator.helpers import wait_until

ACCESS_KEY_ID = "AKIAEMULATORKEY12345"
SECRET = "s3cr3t-value-that-must-never-leak"
TOKEN = "session-token-that-must-never-leak"


def test_main_container_lines_reach_the_task_log_in_order_each_once(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = task_dag("log_lines", bucket=None,
                   commands=["for i in $(seq 1 40); do echo log-line-$i; sleep 0.02; done"])
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-2000:]
    seen = [text for _, text in _main_lines(result.output) if text.startswith("log-line-")]
    assert seen == [f"log-line-{i}" for i in range(1, 41)]


def test_main_container_lines_reach_the_task_log_while_the_job_runs(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The job cannot end before the task logged its first line: it waits for a file the test writes once that line
    is in the task log (or after two minutes, which fails the test). Read only once the job ended, the line
    would never come while the job runs."""
    gate = tmp_path / "early-logged"
    dag = task_dag("live_logs", bucket=None,
                   commands=["echo early", f"while [ ! -e {gate} ]; do sleep 0.1; done", "echo late"])
    seen: dict[str, float] = {}

    def open_gate_once_logged(logged: list[str]) -> None:
        try:  # a timeout leaves "early" unseen, which fails the test below
            wait_until(lambda: any("[main] early" in message for message in logged), timeout=120, interval=0.05)
            seen["early"] = time.time()
        finally:
            gate.touch()

    with structlog_messages() as logged:
        opener = threading.Thread(target=open_gate_once_logged, args=(logged,), daemon=True)
        opener.start()
        result = run_dag(dag, capsys)
        opener.join(timeout=130)
    assert result.state == "success", result.output[-2000:]
    assert "early" in seen, "the task did not log the job's first line while the job ran"
    lines = _main_lines(result.output)
    assert [text for _, text in lines] == ["early", "late"]
    assert seen["early"] * 1000 < _job(aws, result)["stoppedAt"]


def _main_lines(output: str) -> list[tuple[datetime, str]]:
    """The main container's lines in the task log: when the task logged each, and the line's first word."""
    found = []
    for line in output.splitlines():
        if "[main] " in line:
            stamp, message = line.split(" ", 1)[0], line.split("[main] ", 1)[1]
            # Python 3.10's fromisoformat does not read the "Z" suffix.
            found.append((datetime.fromisoformat(stamp.replace("Z", "+00:00")), message.split()[0]))
    return found


def _job(aws: AwsWorld, result: DagResult) -> dict[str, Any]:
    """The task's job, as DescribeJobs tells it."""
    assert result.xcom is not None
    return dict(aws.client("batch").describe_jobs(jobs=[result.xcom["job_id"]])["jobs"][0])


def _definition(aws: AwsWorld, job: dict[str, Any]) -> dict[str, Any]:
    """The job definition a job ran with."""
    batch = aws.client("batch")
    return dict(batch.describe_job_definitions(jobDefinitions=[job["jobDefinition"]])["jobDefinitions"][0])


@pytest.mark.parametrize("deferrable", [False, True])
def test_explicit_credentials_reach_no_log_xcom_definition_job_or_container(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], deferrable: bool
) -> None:
    dag_id = f"credentials_{deferrable}"
    dag = task_dag(
        dag_id, deferrable=deferrable,
        access_key_id=ACCESS_KEY_ID, secret_key_id=SECRET, session_token=TOKEN,
        endpoint_override=aws.url, aws_conn_id=None, region_name="us-east-1",
        # The container prints the secret without it being part of the job (base64), to prove masking.
        commands=["env | sort > {{ output_dir }}/env.txt",
                  f"echo key=$(echo {base64.b64encode(SECRET.encode()).decode()} | base64 -d)"],
    )
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-2000:]
    assert result.xcom is not None
    # The access key id is no secret to AWS (every request names it, signed), but the task keeps it out too.
    leaked = [ACCESS_KEY_ID, SECRET, TOKEN]
    for secret in leaked:
        assert secret not in result.output
        assert secret not in json.dumps(result.xcom)
    assert "key=***" in result.output  # masked, not dropped
    job = _job(aws, result)
    definition = _definition(aws, job)
    container_env = aws.read(result.xcom["output_files"]["env.txt"])
    for secret in leaked:
        assert secret not in json.dumps(job, default=str)
        assert secret not in json.dumps(definition, default=str)
        assert secret not in container_env
    assert "WORKING_DIR=" in container_env and "BUCKET_PATH=s3://" in container_env
    rendered = _rendered_fields(dag_id)
    # access_key_id is masked by value: unlike the other two, Airflow would not hide it for its name.
    assert {name: rendered[name] for name in ("access_key_id", "secret_key_id", "session_token")} == {
        "access_key_id": "***", "secret_key_id": "***", "session_token": "***"}
    assert not [secret for secret in leaked if secret in json.dumps(rendered)]


def _rendered_fields(dag_id: str) -> dict[str, object]:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(RenderedTaskInstanceFields).filter_by(dag_id=dag_id, task_id="shell").first()
        assert row is not None
        return dict(row.rendered_fields)


def test_sts_assume_role_is_used_for_every_call(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    # A role moto knows, so that it records when a call signed with the role's keys reaches it.
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}]}
    iam = aws.client("iam")
    role_arn = iam.create_role(RoleName="batch-runner", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    dag = task_dag("assume_role", sts_role_arn=role_arn,
                   sts_role_external_id="ext-1", sts_role_session_name="abr-test", commands=["echo assumed"])
    result = run_dag(dag, capsys)
    assert result.state == "success", [line for line in result.output.splitlines() if "rror" in line][:5]
    assumed = [(r["session_name"], r["external_id"]) for r in _moto_models(aws, "sts", "AssumedRole")
               if r["role_arn"] == role_arn]
    # Once for the task: credentials of the default 15 min are not assumed again before every call.
    assert assumed == [("abr-test", "ext-1")]
    # Moto marks the role used when S3 or Logs get a call signed with its keys (Batch is the emulator's own, which
    # does not look at signatures). The task's last calls list and clean the bucket path after the job stopped.
    last_used = iam.get_role(RoleName="batch-runner")["Role"]["RoleLastUsed"]["LastUsedDate"]
    last_used_ms = last_used.replace(tzinfo=timezone.utc).timestamp() * 1000  # moto answers UTC, unmarked
    assert last_used_ms >= _job(aws, result)["stoppedAt"]


def _moto_models(aws: AwsWorld, service: str, model: str) -> list[dict[str, Any]]:
    """What moto keeps of one of its models (its dashboard's data), e.g. every AssumeRole it answered."""
    with urllib.request.urlopen(f"{aws.url}/moto-api/data.json", timeout=30) as response:
        return list(json.loads(response.read())[service][model])


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
    before = aws.calls()
    assert run_dag(dag, capsys).state == "success"
    after = aws.calls()
    delta = {op: after.get(op, 0) - before.get(op, 0) for op in after if after.get(op, 0) != before.get(op, 0)}
    assert "RegisterJobDefinition" not in delta
    assert "CreateJobQueue" not in delta
    assert delta["SubmitJob"] == 1
    before_submit = {op: n for op, n in delta.items() if op not in ("SubmitJob", "DescribeJobs")}
    assert sum(before_submit.values()) <= 2, delta


@pytest.mark.parametrize("moment", ["running", "submitting"])
def test_killing_the_task_terminates_its_job_and_deletes_its_staged_inputs(aws: AwsWorld, moment: str) -> None:
    # Airflow's SIGTERM handler runs on_kill and lets the task go on: with a long interval, only on_kill can
    # have deleted the inputs by the time the test looks (the next poll would, 60 s later).
    task_dag("killed", input_files={"in.txt": "x"}, commands=["sleep 120"], completion_check_interval=60)
    if moment == "submitting":
        # SubmitJob takes effect, then its answer is held: the kill comes before the task knows its job.
        control(aws.url, "faults", {"batch:SubmitJob": {"delay": 6}})
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
        deadline = time.monotonic() + 10
        while staged_inputs(aws) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert staged_inputs(aws) == []
    finally:
        control(aws.url, "faults", {})
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


def test_project_files_next_to_the_dag_file_reach_the_working_dir(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    data = dags_folder() / "project_files_data"
    data.mkdir(exist_ok=True)
    (data / "greeting.txt").write_text("hello from the DAG folder\n")
    dag = task_dag("project_files", project_files=["project_files_data/*.txt"], output_files=["out.txt"],
                   commands=["cat project_files_data/greeting.txt > out.txt"])
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-2000:]
    assert result.xcom is not None
    assert aws.read(result.xcom["output_files"]["out.txt"]) == "hello from the DAG folder\n"


# Each XCom path, and how a command names it: both template spellings, and the container's variable.
PATH_SPELLINGS = {
    "working_dir": ["{{ working_dir }}", "{{ workingDir }}", "$WORKING_DIR"],
    "output_dir": ["{{ output_dir }}", "{{ outputDir }}", "$OUTPUT_DIR"],
    "bucket_path": ["{{ bucket_path }}", "{{ bucketPath }}", "$BUCKET_PATH"],
}


def test_template_variables_and_container_variables_name_the_xcom_paths(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    # The first line is the volume's path: the emulator runs containers as host processes and stands a host
    # directory in for it, in commands and environment alike; the test puts the volume's path back.
    spellings = [VOLUME_ROOT, *(spelling for names in PATH_SPELLINGS.values() for spelling in names)]
    command = "printf '%s\\n' " + " ".join(f'"{spelling}"' for spelling in spellings) + " > {{ output_dir }}/paths.txt"
    result = run_dag(task_dag("template_variables", commands=[command]), capsys)
    assert result.state == "success", result.output[-2000:]
    assert result.xcom is not None
    volume, *printed = aws.read(result.xcom["output_files"]["paths.txt"]).splitlines()
    expected = [result.xcom[name] for name, names in PATH_SPELLINGS.items() for _ in names]
    assert [_in_container(value, volume) for value in printed] == expected


def _in_container(value: str, volume: str) -> str:
    """A path the container printed, with the host directory standing in for the volume put back as its path."""
    return VOLUME_ROOT + value[len(volume):] if value == volume or value.startswith(f"{volume}/") else value


def test_a_job_on_an_ec2_compute_environment_runs_with_an_ec2_definition(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    # No execution role: EC2 instances pull images and send logs with their own role.
    dag = task_dag("on_ec2", compute_environment_arn="{{ var.value.ec2_compute_environment_arn }}",
                   execution_role_arn=None, output_files=["out.txt"], commands=["echo on ec2 > out.txt"])
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-2000:]
    assert result.xcom is not None
    assert aws.read(result.xcom["output_files"]["out.txt"]) == "on ec2\n"
    job = _job(aws, result)
    assert job["status"] == "SUCCEEDED"
    assert _definition(aws, job)["platformCapabilities"] == ["EC2"]
    queue = aws.client("batch").describe_job_queues(jobQueues=[job["jobQueue"]])["jobQueues"][0]
    assert [ce["computeEnvironment"] for ce in queue["computeEnvironmentOrder"]] == [aws.ec2_ce]


def test_literal_input_content_keeps_its_last_newline(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    dag = task_dag("trailing_newline", input_files={"names.txt": "Ada\nGrace\n"}, output_files=["count.txt"],
                   commands=["wc -l < names.txt | tr -d ' ' > count.txt"])
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-2000:]
    assert result.xcom is not None
    assert aws.read(result.xcom["output_files"]["count.txt"]) == "2\n"
