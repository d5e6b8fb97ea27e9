"""A job that fails in AWS, a job past its deadline, and bad input caught before anything is created."""

from __future__ import annotations

import json
import re
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_batch_runner.emulator.testing import control
from tests.airflow_version import needs_airflow
from tests.e2e.conftest import AwsWorld, load_dag, run_dag

MUTATIONS = {
    "batch": {"CreateComputeEnvironment", "CreateJobQueue", "RegisterJobDefinition", "SubmitJob", "TerminateJob",
              "UpdateJobQueue", "DeleteJobQueue", "DeregisterJobDefinition"},
    "s3": {"PutObject", "CopyObject", "CreateMultipartUpload", "DeleteObject", "DeleteObjects", "CreateBucket"},
}


def mutations(aws: AwsWorld) -> dict[str, int]:
    calls = control(aws.url, "stats")["calls"]
    return {f"{service}:{op}": n for service, ops in MUTATIONS.items()
            for op, n in calls.get(service, {}).items() if op in ops}


class Source(str):
    """A task argument written into the DAG file as this source text (a name the preamble defines),
    not as a literal."""

    def __repr__(self) -> str:
        return str(self)


def task_dag(name: str, preamble: str = "", expand: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """One BatchRunnerOperator "shell" in a DAG file; kwargs are written with repr() (``import datetime``
    is in scope, so a timedelta works), and ``preamble`` is module-level source placed before the DAG.
    With ``expand``, the task is ``BatchRunnerOperator.partial(**kwargs).expand(**expand)``."""
    args = {
        "compute_environment_arn": "{{ var.value.compute_environment_arn }}",
        "execution_role_arn": "{{ var.value.execution_role_arn }}",
        "bucket": "{{ var.value.bucket }}",
        "completion_check_interval": 0.2,
        **kwargs,
    }
    rendered = ",\n            ".join(f"{k}={v!r}" for k, v in args.items())
    return load_dag(name, f"""
    import datetime
    from airflow.sdk import DAG
    from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator
{textwrap.indent(textwrap.dedent(preamble), "    ")}
    with DAG({name!r}, schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:
        BatchRunnerOperator{".partial" if expand is not None else ""}(
            task_id="shell",
            {rendered},
        ){f".expand(**{expand!r})" if expand is not None else ""}
    """)


def staged_inputs(aws: AwsWorld) -> list[str]:
    return [k for k in aws.object_keys() if "/inputs/" in k]


def the_job(aws: AwsWorld, dag_id: str, queue: str | None = None) -> dict[str, Any]:
    """DescribeJobs of the one job the DAG's "shell" task submitted (to ``queue``, else the first queue)."""
    batch = aws.client("batch")
    queue = queue or batch.describe_job_queues()["jobQueues"][0]["jobQueueName"]
    jobs = batch.list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [f"{dag_id}-shell-*"]}])
    (summary,) = jobs["jobSummaryList"]
    return dict(batch.describe_jobs(jobs=[summary["jobId"]])["jobs"][0])


def test_failing_command_fails_the_task_with_exit_codes_and_reason(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = task_dag("fails", input_files={"in.txt": "x"},
                   commands=["echo about to fail", "exit 3", "echo never printed"])
    result = run_dag(dag, capsys)
    assert result.state == "failed"
    assert "Exit code 1 (status FAILED)" in result.output
    assert "Main container exit code: 3" in result.output
    assert "Status reason: Essential container in task exited" in result.output
    assert "Last log lines:\n  about to fail" in result.output  # the exception's text, not the live log
    assert "[main] never printed" not in result.output
    assert staged_inputs(aws) == []


RECORD_EXCEPTION = """
    import json
    import pathlib

    def record_exception(context):
        error = context["exception"]
        fields = ("exit_code", "container_exit_code", "status_reason", "status", "job_id", "timed_out")
        record = {"type": f"{type(error).__module__}.{type(error).__qualname__}",
                  **{field: getattr(error, field, "missing") for field in fields}}
        pathlib.Path(RECORD).write_text(json.dumps(record))
"""


@needs_airflow("3.3", "puts the exception into a failure callback's context under dag.test() (3.1's real worker does)")
def test_the_failure_callback_gets_the_job_outcome_on_the_exception(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    record = tmp_path / "exception.json"
    dag = task_dag("callback", preamble=f"RECORD = {str(record)!r}\n" + textwrap.dedent(RECORD_EXCEPTION),
                   on_failure_callback=Source("record_exception"), commands=["exit 3"])
    result = run_dag(dag, capsys)
    assert result.state == "failed"
    seen = json.loads(record.read_text())
    assert seen.pop("status_reason").startswith("Essential container in task exited")
    assert seen == {
        "type": "airflow_batch_runner.exceptions.BatchJobFailed",
        "exit_code": 1,
        "container_exit_code": 3,
        "status": "FAILED",
        "job_id": the_job(aws, "callback")["jobId"],
        "timed_out": False,
    }


def test_missing_output_file_fails_the_job_in_aws_and_says_which(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = task_dag("no_output", input_files={"in.txt": "x"}, output_files=["never.txt"], commands=["echo done"])
    result = run_dag(dag, capsys)
    assert result.state == "failed"
    assert "output file never.txt was not written" in result.output
    assert "Main container exit code: 1" in result.output
    assert "Status reason:" in result.output
    assert staged_inputs(aws) == []


def test_unpullable_image_fails_with_the_reason_from_aws(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    dag = task_dag("bad_image", container_image="registry.example.com/does-not-exist:1",
                   input_files={"in.txt": "x"}, commands=["true"])
    result = run_dag(dag, capsys)
    assert result.state == "failed"
    assert "CannotPullContainerError" in result.output
    assert staged_inputs(aws) == []


@pytest.mark.parametrize(
    ("name", "limits", "seconds"),
    [
        ("too_slow", {"wait_until_completion": 3}, 3),
        # execution_timeout wins over wait_until_completion's 3600 s.
        ("timeout_wins", {"execution_timeout": timedelta(seconds=6), "wait_until_completion": 3600}, 6),
    ],
    ids=["wait_until_completion", "execution_timeout"],
)
def test_deadline_terminates_the_job_and_fails_with_the_mapped_code(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], name: str, limits: dict[str, Any], seconds: int
) -> None:
    result = run_dag(task_dag(name, commands=["sleep 120"], **limits), capsys)
    assert result.state == "failed"
    assert f"did not finish within {seconds} s" in result.output
    assert "Exit code 2 (status RUNNING)" in result.output
    job = the_job(aws, name)
    assert job["status"] == "FAILED"
    assert f"limit of {seconds} s passed" in job["statusReason"]
    assert job["timeout"] == {"attemptDurationSeconds": 60}  # AWS's minimum, not 3600


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_files": {"a.txt": "x"}, "bucket": None}, "bucket is required with input_files"),
        ({"output_files": ["a.txt"], "bucket": None}, "bucket is required with output_files"),
        ({"commands": []}, "commands must be a non-empty list"),
        ({"resources": {"cpu": 1}}, "resources must look like"),
        ({"resources": {"request": {"cpu": "x", "memory": "1"}}}, "resources must look like"),
        ({"access_key_id": "AKIA"}, "access_key_id and secret_key_id go together"),
        ({"session_token": "token"}, "session_token goes with access_key_id and secret_key_id"),
    ],
)
def test_bad_arguments_fail_when_the_dag_is_parsed(aws: AwsWorld, kwargs: dict[str, Any], message: str) -> None:
    before = mutations(aws)
    with pytest.raises(ValueError, match=message):
        task_dag("bad_parse", **{"commands": ["true"], **kwargs})
    assert mutations(aws) == before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"output_files": ["../escape.txt"]}, "escapes the working directory"),
        ({"output_files": ["/etc/passwd"]}, "escapes the working directory"),
        ({"input_files": {"../in.txt": "x"}}, "escapes the working directory"),
        ({"compute_environment_arn": "{{ var.value.eks_arn }}"}, "is an EKS compute environment"),
        ({"compute_environment_arn": "arn:aws:batch:us-east-1:123456789012:compute-environment/nope"},
         "does not exist"),
        ({"execution_role_arn": None}, "execution_role_arn is required on a Fargate"),
        ({"resources": {"request": {"cpu": "1", "memory": "1024"}}}, "Fargate does not offer 1 vCPU with 1024 MiB"),
        ({"job_queue_arn": "arn:aws:batch:us-east-1:123456789012:job-queue/missing"},
         "job_queue_arn .* does not exist"),
        ({"container_image": "Not A Valid Image!"}, "container_image .* is not a valid image"),
        ({"bucket": "no-such-bucket"}, "bucket 'no-such-bucket' does not exist"),
        ({"bucket": None, "commands": ["echo x > {{ output_dir }}/x"]}, "bucket is required with the output dir"),
        # Given when the DAG is parsed, empty once rendered: the token would be dropped without a word.
        ({"access_key_id": "{{ var.value.get('no_such_key', '') }}", "secret_key_id": "s", "session_token": "t"},
         "access_key_id and secret_key_id go together"),
    ],
)
def test_bad_input_fails_the_task_before_anything_is_created(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    kwargs: dict[str, Any], message: str,
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_EKS_ARN", aws.eks_ce)
    before = mutations(aws)
    result = run_dag(task_dag("bad_input", **{"commands": ["true"], **kwargs}), capsys)
    assert result.state == "failed"
    assert re.search(message, result.output), result.output[-2000:]
    assert mutations(aws) == before


def test_missing_bucket_with_inputs_is_found_by_the_first_upload(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    before = mutations(aws)
    dag = task_dag("missing_bucket", bucket="no-such-bucket", input_files={"a.txt": "x"}, commands=["true"])
    result = run_dag(dag, capsys)
    assert result.state == "failed"
    assert "bucket 'no-such-bucket' does not exist" in result.output
    after = mutations(aws)
    assert {k: v for k, v in after.items() if k.startswith("batch:")} == {
        k: v for k, v in before.items() if k.startswith("batch:")
    }
    assert "no-such-bucket" not in [b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]]


def test_missing_s3_input_fails_and_leaves_no_staged_input(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    dag = task_dag("missing_source", input_files={"a.txt": "first", "b.txt": "s3://{{ var.value.bucket }}/nope.txt"},
                   commands=["true"])
    result = run_dag(dag, capsys)
    assert result.state == "failed"
    assert "input_files['b.txt']: s3://" in result.output and "nope.txt does not exist" in result.output
    assert staged_inputs(aws) == []
    assert "SubmitJob" not in aws.calls()
