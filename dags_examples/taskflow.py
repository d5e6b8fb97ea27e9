"""TaskFlow: ``@task.batch_runner`` functions return the commands; upstream XComs feed them, ``expand`` maps them.

``count`` is mapped over the words an upstream task returns, one AWS Batch job each, deferred while the jobs
run; ``spend`` adds up what the jobs used from their XComs (vCPU- and GiB-seconds) at Fargate's rates.
"""

from __future__ import annotations

import shlex
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Param, task

# Fargate Linux/x86 on-demand in us-east-1, per vCPU-hour and per GB-hour: put your Region's rates here.
VCPU_HOUR, GB_HOUR = 0.04048, 0.004445

with DAG(
    dag_id="taskflow",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["aws-batch", "example"],
    params={
        "words": Param(
            ["pear", "fig"],
            type="array",
            title="Words",
            description="One AWS Batch job per word; each writes its length to length.txt.",
        ),
    },
) as dag:

    @task
    def words(params: dict[str, Any] | None = None) -> list[str]:
        assert params is not None
        return [str(word) for word in params["words"]]

    @task.batch_runner(
        container_image="ubuntu:24.04",
        output_files=["length.txt"],
        compute_environment_arn="{{ var.value.compute_environment_arn }}",
        execution_role_arn="{{ var.value.execution_role_arn }}",
        task_role_arn="{{ var.value.get('task_role_arn', '') }}",  # the sidecars' S3 access
        bucket="{{ var.value.bucket }}",
        region_name="{{ var.value.get('region', 'us-east-1') }}",
        aws_conn_id="aws_default",
        deferrable=True,
        # A retry reattaches to the job (or collects its outputs): it also covers Airflow 3.3's scheduler
        # failing a task whose trigger fired within seconds of the deferral (docs/how-to/events.md).
        retries=2,
        retry_delay=timedelta(seconds=5),
    )
    def count(word: str) -> list[str]:
        """The commands for one word: its length into length.txt, and into the log."""
        return [f"printf %s {shlex.quote(word)} | wc -c > length.txt", "cat length.txt"]

    # --8<-- [start:spend]
    @task
    def spend(results: list[dict[str, Any]]) -> float:
        """What the jobs cost at on-demand Fargate rates."""
        return sum(r["vcpu_seconds"] / 3600 * VCPU_HOUR + r["gib_seconds"] / 3600 * GB_HOUR for r in results)
    # --8<-- [end:spend]

    spend(count.expand(word=words()))  # type: ignore[arg-type]  # Airflow resolves the XComArg to the list
