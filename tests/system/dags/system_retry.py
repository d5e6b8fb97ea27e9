"""System test: the task's own process is killed mid-job; Airflow's retry reattaches to the job."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

with DAG(dag_id="system_retry", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    BatchRunnerOperator(
        task_id="shell",
        retries=1,
        retry_delay=timedelta(seconds=1),
        input_files={"in.txt": "survives a lost worker"},
        output_files=["out.txt"],
        commands=["sleep 15", "cp in.txt out.txt"],
        compute_environment_arn="{{ var.value.compute_environment_arn }}",
        execution_role_arn="{{ var.value.execution_role_arn }}",
        bucket="{{ var.value.bucket }}",
        completion_check_interval=1,
    )
