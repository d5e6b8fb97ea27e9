"""Fan out at AWS Batch scale: one task, one array job of N children (2 to 10,000).

Each child reads its index from ``AWS_BATCH_JOB_ARRAY_INDEX``, gets the shared ``words.txt`` and its own
``item.txt`` in its working dir, and writes ``line.txt`` under its own prefix of the bucket path. The
task's XCom counts the children by status and points to a manifest in S3 with every child's outputs;
``summarise`` reads it with ``read_manifest``, the helper a downstream ``expand`` would use too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_batch_runner.array_run import read_manifest
from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

with DAG(
    dag_id="array_fan_out",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["aws-batch", "example"],
    params={
        "children": Param(
            5,
            type="integer",
            minimum=2,
            maximum=10_000,
            title="Number of children",
            description="The size of the AWS Batch array job: one child per item, each with its own input file.",
        ),
    },
) as dag:

    @task
    def items(params: dict[str, Any] | None = None) -> list[dict[str, str]]:
        """Each child's own input files: one mapping per child."""
        assert params is not None
        return [{"item.txt": f"item {i}\n"} for i in range(int(params["children"]))]

    fan_out = BatchRunnerOperator(
        task_id="fan_out",
        container_image="ubuntu:24.04",
        input_files={"words.txt": "shared by every child\n"},
        array_input_files=items(),
        allowed_failures=0.01,
        output_files=["line.txt"],
        commands=[
            'echo "child $AWS_BATCH_JOB_ARRAY_INDEX of $AWS_BATCH_JOB_ARRAY_SIZE: $(cat item.txt)" > line.txt',
            "cat words.txt line.txt",
        ],
        compute_environment_arn="{{ var.value.compute_environment_arn }}",
        execution_role_arn="{{ var.value.execution_role_arn }}",
        task_role_arn="{{ var.value.get('task_role_arn', '') }}",  # the sidecars' S3 access
        bucket="{{ var.value.bucket }}",
        region_name="{{ var.value.get('region', 'us-east-1') }}",
        aws_conn_id="aws_default",
        deferrable=True,
    )

    # --8<-- [start:summarise]
    @task
    def summarise(result: dict[str, Any]) -> dict[str, Any]:
        """The children's outputs from the manifest: what an ``expand`` downstream would map over."""
        children = read_manifest(result, aws_conn_id="aws_default")
        return {"succeeded": len(children), "first": children[0]["output_files"]["line.txt"] if children else None}
    # --8<-- [end:summarise]

    summarise(fan_out.output)  # type: ignore[arg-type]  # Airflow resolves the XComArg to the dict
