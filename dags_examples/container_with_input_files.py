"""Kestra's second reference example: an input file in, a command, an output file back out.

The input file's content is a DAG param, so the trigger form takes it. The output file's S3 URI is
in the task's XCom ``return_value['output_files']['out.txt']``.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

with DAG(
    dag_id="container_with_input_files",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["aws-batch", "example"],
    params={
        "file": Param(
            "Hello from Airflow\n",
            type="string",
            title="Input file",
            description="Content of data.txt, staged into the container's working directory.",
            format="multiline",
        ),
    },
) as dag:
    BatchRunnerOperator(
        task_id="shell",
        container_image="centos",
        input_files={"data.txt": "{{ params.file }}"},
        output_files=["out.txt"],
        commands=["cp {{ workingDir }}/data.txt {{ workingDir }}/out.txt"],
        compute_environment_arn="{{ var.value.compute_environment_arn }}",
        execution_role_arn="{{ var.value.execution_role_arn }}",
        task_role_arn="{{ var.value.get('task_role_arn', '') }}",  # the sidecars' S3 access
        bucket="{{ var.value.bucket }}",
        region_name="{{ var.value.get('region', 'us-east-1') }}",
        aws_conn_id="aws_default",
    )
