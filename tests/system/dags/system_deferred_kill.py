"""System test: a user marks the deferred task failed; the triggerer's on_kill terminates the job."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

with DAG(dag_id="system_deferred_kill", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    BatchRunnerOperator(
        task_id="shell",
        deferrable=True,
        commands=["sleep 300"],
        compute_environment_arn="{{ var.value.compute_environment_arn }}",
        execution_role_arn="{{ var.value.execution_role_arn }}",
        completion_check_interval=1,
    )
