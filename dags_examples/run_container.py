"""Kestra's first reference example: a shell command in a container on AWS Batch (ECS Fargate).

Set the Airflow Variables ``compute_environment_arn``, ``execution_role_arn`` and ``region`` (or
change the templates below); credentials come from the ``aws_default`` connection.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

with DAG(
    dag_id="run_container",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["aws-batch", "example"],
    params={
        "greeting": Param(
            "Hello World",
            type="string",
            title="Greeting",
            description="What the container echoes to its log.",
        ),
    },
) as dag:
    BatchRunnerOperator(
        task_id="shell",
        container_image="ubuntu:24.04",
        commands=['echo "{{ params.greeting }}"'],
        compute_environment_arn="{{ var.value.compute_environment_arn }}",
        execution_role_arn="{{ var.value.execution_role_arn }}",
        region_name="{{ var.value.get('region', 'us-east-1') }}",
        aws_conn_id="aws_default",
    )
