"""Fan out: one BatchRunnerOperator mapped over a list param, one AWS Batch job per item.

Each mapped task instance has its own bucket path and its own XCom (``map_index`` 0, 1, ...).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

with DAG(
    dag_id="fan_out",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["aws-batch", "example"],
    params={
        "names": Param(
            ["alpha", "beta", "gamma"],
            type="array",
            title="Names",
            description="One AWS Batch job per name; each writes greeting.txt with its name.",
        ),
    },
) as dag:

    @task
    def environments(params: dict[str, Any] | None = None) -> list[dict[str, str]]:
        """One environment per mapped job."""
        assert params is not None
        return [{"NAME": str(name)} for name in params["names"]]

    BatchRunnerOperator.partial(
        task_id="greet",
        container_image="ubuntu:24.04",
        output_files=["greeting.txt"],
        commands=['echo "hello $NAME" > greeting.txt', "cat greeting.txt"],
        compute_environment_arn="{{ var.value.compute_environment_arn }}",
        execution_role_arn="{{ var.value.execution_role_arn }}",
        task_role_arn="{{ var.value.get('task_role_arn', '') }}",  # the sidecars' S3 access
        bucket="{{ var.value.bucket }}",
        region_name="{{ var.value.get('region', 'us-east-1') }}",
        aws_conn_id="aws_default",
    ).expand(env=environments())
