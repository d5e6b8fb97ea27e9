"""The docs' DAG for real AWS (getting-started/aws.md includes this file; tests/unit/test_docs.py parses it)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG

from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

ACCOUNT = "123456789012"  # your account id
REGION = "eu-west-1"
ON_AWS: dict[str, Any] = dict(
    compute_environment_arn=f"arn:aws:batch:{REGION}:{ACCOUNT}:compute-environment/abr-fargate",
    execution_role_arn=f"arn:aws:iam::{ACCOUNT}:role/abr-execution",
    task_role_arn=f"arn:aws:iam::{ACCOUNT}:role/abr-task",  # the sidecars' S3 access
    bucket="my-airflow-batch-bucket",
    region_name=REGION,
    aws_conn_id="aws_default",
    # ECR Public's copy of Docker Hub's official image: no Docker Hub pull limits.
    container_image="public.ecr.aws/docker/library/ubuntu:24.04",
    execution_timeout=timedelta(minutes=30),  # the job is terminated when it passes
)

with DAG(
    dag_id="batch_runner_on_aws",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    # Jinja drops one trailing newline of rendered values, input file contents included: keep it.
    jinja_environment_kwargs={"keep_trailing_newline": True},
):
    greet = BatchRunnerOperator(
        task_id="greet",
        input_files={"names.txt": "Ada\nGrace\n"},
        output_files=["greetings.txt"],
        commands=['while read name; do echo "Hello, $name"; done < names.txt > greetings.txt'],
        **ON_AWS,
    )
    count = BatchRunnerOperator(
        task_id="count",
        input_files={"greetings.txt": "{{ ti.xcom_pull(task_ids='greet')['output_files']['greetings.txt'] }}"},
        commands=["wc -l < greetings.txt > {{ output_dir }}/count.txt", "cat {{ output_dir }}/count.txt"],
        **ON_AWS,
    )
    greet >> count
