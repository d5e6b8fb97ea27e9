"""An output file of one task becomes the input file of the next, through XCom and S3.

The second task's input is the first task's output URI: it is copied server-side in S3, never
through the Airflow worker.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Param

from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

COMMON: dict[str, Any] = {
    "compute_environment_arn": "{{ var.value.compute_environment_arn }}",
    "execution_role_arn": "{{ var.value.execution_role_arn }}",
    "task_role_arn": "{{ var.value.get('task_role_arn', '') }}",  # the sidecars' S3 access
    "bucket": "{{ var.value.bucket }}",
    "region_name": "{{ var.value.get('region', 'us-east-1') }}",
    "aws_conn_id": "aws_default",
}

with DAG(
    dag_id="chain_output_to_input",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["aws-batch", "example"],
    params={
        "words": Param(
            "banana apple cherry",
            type="string",
            title="Words",
            description="Space-separated words; the first task writes them one per line, the second sorts them.",
        ),
    },
) as dag:
    produce = BatchRunnerOperator(
        task_id="produce",
        container_image="ubuntu:24.04",
        output_files=["words.txt"],
        commands=["for w in {{ params.words }}; do echo $w; done > words.txt"],
        **COMMON,
    )
    consume = BatchRunnerOperator(
        task_id="consume",
        container_image="ubuntu:24.04",
        input_files={"words.txt": "{{ ti.xcom_pull(task_ids='produce')['output_files']['words.txt'] }}"},
        commands=["sort words.txt > {{ output_dir }}/sorted.txt", "cat {{ output_dir }}/sorted.txt"],
        **COMMON,
    )
    produce >> consume
