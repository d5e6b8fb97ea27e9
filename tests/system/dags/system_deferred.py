"""System test: the triggerer waits for the job and the task log shows the container's lines.

The job runs for a while on purpose: when a trigger fires within seconds of the deferral, Airflow
3.3.2's scheduler can drain the worker's stale "success" from the defer-exit after the task was
requeued, and fail it (apache/airflow#67287, closed by #68741 after 3.3.2; #72716 and #71580, open). A real
job outlives that window.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

with DAG(dag_id="system_deferred", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    BatchRunnerOperator(
        task_id="shell",
        deferrable=True,
        commands=["sleep 12", "for i in 1 2 3 4 5; do echo deferred-container-line-$i; sleep 0.5; done"],
        compute_environment_arn="{{ var.value.compute_environment_arn }}",
        execution_role_arn="{{ var.value.execution_role_arn }}",
        completion_check_interval=1,
    )
