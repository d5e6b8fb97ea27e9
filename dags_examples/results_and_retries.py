"""Values from the container, Spot-aware retries, a stuck job failing fast, tags for cost allocation.

``count`` prints a Kestra result line with its row count and a metric; ``report`` reads them from its XCom
with the job's attempts and vCPU-seconds. On a Spot compute environment, a reclaimed instance or Fargate
Spot task is retried up to twice in AWS Batch (any other failure is not), and a job AWS Batch cannot place
fails after 30 minutes in RUNNABLE with Batch's reason instead of waiting out the hour.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

with DAG(
    dag_id="results_and_retries",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["aws-batch", "example"],
    params={
        "rows": Param(3, type="integer", minimum=1, title="Rows", description="How many rows the job writes."),
    },
) as dag:
    count = BatchRunnerOperator(
        task_id="count",
        container_image="ubuntu:24.04",
        commands=[
            "seq 1 {{ params.rows }} > rows.txt",
            "ROWS=$(wc -l < rows.txt)",
            'echo "::{\\"outputs\\": {\\"rows\\": $ROWS}}::"',
            'echo "::{\\"metrics\\": [{\\"name\\": \\"rows\\", \\"type\\": \\"counter\\", \\"value\\": $ROWS}]}::"',
        ],
        spot_retries=2,
        max_runnable_time=timedelta(minutes=30),
        tags={"team": "data", "cost-center": "42"},
        compute_environment_arn="{{ var.value.compute_environment_arn }}",
        execution_role_arn="{{ var.value.execution_role_arn }}",
        region_name="{{ var.value.get('region', 'us-east-1') }}",
        aws_conn_id="aws_default",
    )

    @task
    def report(result: dict[str, Any]) -> dict[str, Any]:
        """From the XCom: the container's value and metric, the attempts and what the job used."""
        print(f"{result['outputs']['rows']} rows in {result['attempts']} attempt(s), "
              f"{result['vcpu_seconds']:.1f} vCPU-seconds, {result['gib_seconds']:.1f} GiB-seconds")
        return {"rows": result["outputs"]["rows"], "metrics": result["metrics"], "attempts": result["attempts"],
                "vcpu_seconds": result["vcpu_seconds"]}

    report(count.output)  # type: ignore[arg-type]  # Airflow resolves the XComArg to the dict
