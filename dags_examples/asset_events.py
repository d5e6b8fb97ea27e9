"""Data-aware scheduling on the files a Batch job wrote: a producer DAG and the consumer DAG it schedules.

The producer's task declares ``outlets=[AssetAlias("batch_runner_reports")]``: when its job succeeds, the task
emits one asset event per output file through the alias, the file's ``s3://`` URI as the asset and the job's
id in the event's extra. The consumer is scheduled on the alias: each producer run that wrote a file starts a
consumer run, whose ``triggering_asset_events`` name the files; its own Batch job reads them as input files
(copied in S3, never through the worker).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, AssetAlias, task

from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

REPORTS = AssetAlias("batch_runner_reports")

COMMON: dict[str, Any] = {
    "compute_environment_arn": "{{ var.value.compute_environment_arn }}",
    "execution_role_arn": "{{ var.value.execution_role_arn }}",
    "task_role_arn": "{{ var.value.get('task_role_arn', '') }}",  # the sidecars' S3 access
    "bucket": "{{ var.value.bucket }}",
    "region_name": "{{ var.value.get('region', 'us-east-1') }}",
    "aws_conn_id": "aws_default",
}

with DAG(
    dag_id="asset_events_producer",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["aws-batch", "example"],
) as dag:
    BatchRunnerOperator(
        task_id="report",
        container_image="ubuntu:24.04",
        output_files=["report.csv"],
        commands=["printf 'fruit,count\\napple,3\\npear,5\\n' > report.csv"],
        outlets=[REPORTS],
        **COMMON,
    )

with DAG(
    dag_id="asset_events_consumer",
    schedule=REPORTS,  # a run for each producer run whose job wrote a file
    start_date=datetime(2026, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,  # the first producer run already schedules it
    tags=["aws-batch", "example"],
) as consumer:

    @task
    def files_written(triggering_asset_events: Any = None) -> dict[str, str]:
        """Output name -> s3:// URI of every file the triggering events name (the job id is in their extra)."""
        return {
            event.extra["output"]: event.asset.uri
            for events in (triggering_asset_events or {}).values()
            for event in events
        }

    BatchRunnerOperator(
        task_id="count_rows",
        container_image="ubuntu:24.04",
        input_files=files_written(),
        commands=["wc -l report.csv"],
        **COMMON,
    )
