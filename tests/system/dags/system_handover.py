"""System test: a triggerer stalls past the health threshold, another takes its triggers over, and the
stalled one, resumed, must not terminate the jobs (Airflow 3.3 calls their on_kill).

Each job waits until the test creates the file ``params.release`` (the emulator runs a container's commands
on this machine), so the test decides when the jobs end instead of guessing a duration.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

with DAG(
    dag_id="system_handover", schedule=None, start_date=datetime(2026, 1, 1), catchup=False,
    params={"release": "/nonexistent"},
) as dag:
    for i in range(3):
        BatchRunnerOperator(
            task_id=f"wait_{i}",
            deferrable=True,
            commands=["echo waiting", "while [ ! -e '{{ params.release }}' ]; do sleep 0.2; done", "echo released"],
            compute_environment_arn="{{ var.value.compute_environment_arn }}",
            execution_role_arn="{{ var.value.execution_role_arn }}",
            completion_check_interval=1,
            retries=0,
        )
