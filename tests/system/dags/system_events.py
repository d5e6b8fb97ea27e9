"""System test: a deferred task whose job's end comes from AWS Batch's events (EventBridge -> SQS), not from a
poll: its poll interval is 5 minutes."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

with DAG(dag_id="system_events", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    BatchRunnerOperator(
        task_id="shell",
        deferrable=True,
        commands=["sleep 12", "echo events-line"],
        compute_environment_arn="{{ var.value.compute_environment_arn }}",
        job_queue_arn="{{ var.value.events_job_queue_arn }}",
        execution_role_arn="{{ var.value.execution_role_arn }}",
        completion_check_interval=300,
    )
