"""A job that fails in AWS, a job past its deadline, and bad input caught before anything is created."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_batch_runner.emulator.testing import control
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


def task_dag(name: str, **kwargs: Any) -> Any:
    args = {
        "compute_environment_arn": "{{ var.value.compute_environment_arn }}",
        "execution_role_arn": "{{ var.value.execution_role_arn }}",
        "bucket": "{{ var.value.bucket }}",
        "completion_check_interval": 0.2,
        **kwargs,
    }
    rendered = ",\n            ".join(f"{k}={v!r}" for k, v in args.items())
    return load_dag(name, f"""
    from datetime import datetime
    from airflow.sdk import DAG
    from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator
    with DAG({name!r}, schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        BatchRunnerOperator(
            task_id="shell",
            {rendered},
        )
    """)


def staged_inputs(aws: AwsWorld) -> list[str]:
    return [k for k in aws.object_keys() if "/inputs/" in k]


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
    assert "about to fail" in result.output
    assert "[main] never printed" not in result.output
    assert staged_inputs(aws) == []


def test_missing_output_file_fails_the_job_in_aws_and_says_which(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_dag(task_dag("no_output", output_files=["never.txt"], commands=["echo done"]), capsys)
    assert result.state == "failed"
    assert "output file never.txt was not written" in result.output
    assert "Main container exit code: 1" in result.output


def test_unpullable_image_fails_with_the_reason_from_aws(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    dag = task_dag("bad_image", container_image="registry.example.com/does-not-exist:1",
                   input_files={"in.txt": "x"}, commands=["true"])
    result = run_dag(dag, capsys)
    assert result.state == "failed"
    assert "CannotPullContainerError" in result.output
    assert staged_inputs(aws) == []


def test_deadline_terminates_the_job_and_fails_with_the_mapped_code(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = task_dag("too_slow", commands=["sleep 120"], wait_until_completion=3)
    result = run_dag(dag, capsys)
    assert result.state == "failed"
    assert "did not finish within 3 s" in result.output
    assert "Exit code 2 (status RUNNING)" in result.output
    batch = aws.client("batch")
    queue = batch.describe_job_queues()["jobQueues"][0]["jobQueueName"]
    jobs = batch.list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": ["too_slow-shell-*"]}])
    (summary,) = jobs["jobSummaryList"]
    job = batch.describe_jobs(jobs=[summary["jobId"]])["jobs"][0]
    assert job["status"] == "FAILED"
    assert "limit of 3 s passed" in job["statusReason"]
    assert job["timeout"] == {"attemptDurationSeconds": 60}


def test_execution_timeout_wins_over_wait_until_completion(aws: AwsWorld) -> None:
    from datetime import timedelta

    from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

    op = BatchRunnerOperator(task_id="t", compute_environment_arn="ce", commands=["true"],
                             wait_until_completion=3600, execution_timeout=timedelta(seconds=90))
    assert op._timeout_seconds == 90


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_files": {"a.txt": "x"}, "bucket": None}, "bucket is required with input_files"),
        ({"output_files": ["a.txt"], "bucket": None}, "bucket is required with output_files"),
        ({"commands": []}, "commands must be a non-empty list"),
        ({"resources": {"cpu": 1}}, "resources must look like"),
        ({"resources": {"request": {"cpu": "x", "memory": "1"}}}, "resources must look like"),
        ({"access_key_id": "AKIA"}, "access_key_id and secret_key_id go together"),
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
    import re

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
    assert "SubmitJob" not in aws.batch_calls()
