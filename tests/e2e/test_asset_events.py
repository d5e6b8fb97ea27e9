"""Asset events for the files a job wrote (``outlets=[AssetAlias(...)]``), and the DAG runs they schedule."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import AwsWorld, load_dag, run_dag, xcom_value

TASKS = """
from datetime import datetime

from airflow.sdk import DAG, AssetAlias, task

from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

COMMON = dict(compute_environment_arn="{{{{ var.value.compute_environment_arn }}}}",
              execution_role_arn="{{{{ var.value.execution_role_arn }}}}", bucket="{{{{ var.value.bucket }}}}",
              region_name="us-east-1", completion_check_interval=0.2, outlets=[AssetAlias("{alias}")])

with DAG(dag_id="{dag_id}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    BatchRunnerOperator(task_id="array_worker", array_size=2, deferrable=False,
                        commands=["echo $AWS_BATCH_JOB_ARRAY_INDEX > {{{{ output_dir }}}}/part.txt"], **COMMON)
    BatchRunnerOperator(task_id="array_deferred", array_size=2, deferrable=True,
                        commands=["echo $AWS_BATCH_JOB_ARRAY_INDEX > {{{{ output_dir }}}}/part.txt"], **COMMON)

    @task.batch_runner(output_files=["a.txt", "b.txt"], deferrable=True, **COMMON)
    def decorated_deferred():
        return ["echo a > a.txt", "echo b > b.txt"]

    decorated_deferred()
"""


def asset_events(dag_id: str) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """The asset events the DAG's tasks emitted, by task: (URI, extra), in URI order."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    found: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    with create_session() as session:
        rows = session.query(AssetEvent, AssetModel.uri).join(AssetModel, AssetModel.id == AssetEvent.asset_id).filter(
            AssetEvent.source_dag_id == dag_id)
        for event, uri in rows:
            found.setdefault(str(event.source_task_id), []).append((str(uri), dict(event.extra)))
    return {task: sorted(events) for task, events in found.items()}


def schedule_asset_triggered_runs() -> None:
    """What the scheduler's loop does with the queued asset events: create the DAG runs they trigger."""
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.utils.session import create_session
    from airflow.utils.sqlalchemy import prohibit_commit

    with create_session() as session, prohibit_commit(session) as guard:
        SchedulerJobRunner(job=Job())._create_dagruns_for_dags(guard, session)
        guard.commit()


def asset_triggered_runs(dag_id: str) -> list[list[str]]:
    """Each asset-triggered run of the DAG: the URIs of the events it consumed."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.run_type == "asset_triggered").all()
        return [sorted(event.asset.uri for event in run.consumed_asset_events) for run in runs]


def test_a_file_the_producer_job_wrote_schedules_the_consumer_dag(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    producer = load_dag("asset_events")  # the file holds the consumer too, scheduled on the producer's alias
    result = run_dag(producer, capsys, task_id="report")
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    uri = result.xcom["output_files"]["report.csv"]
    assert asset_events("asset_events_producer") == {
        "report": [(uri, {"job_id": result.xcom["job_id"], "job_name": result.xcom["job_name"],
                          "output": "report.csv"})]
    }
    schedule_asset_triggered_runs()
    assert asset_triggered_runs("asset_events_consumer") == [[uri]]


def test_array_and_deferred_tasks_emit_through_their_alias(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    dag = load_dag("asset_tasks", TASKS.format(dag_id="asset_tasks", alias="asset_tasks_files"))
    result = run_dag(dag, capsys, task_id="decorated_deferred")
    assert result.state == "success", result.output[-3000:]
    events = asset_events("asset_tasks")
    single = result.xcom
    assert single is not None
    assert events["decorated_deferred"] == [
        (single["output_files"][name], {"job_id": single["job_id"], "job_name": single["job_name"], "output": name})
        for name in ("a.txt", "b.txt")
    ]
    for task_id in ("array_worker", "array_deferred"):  # an array: one event, its manifest of every child's files
        array = xcom_value("asset_tasks", result.run_id, task_id)
        assert array is not None
        assert events[task_id] == [(array["manifest"], {
            "job_id": array["job_id"], "job_name": array["job_name"], "array_size": 2, "succeeded": 2, "failed": 0,
        })]
    assert "Asset events: 2 file(s) through 'asset_tasks_files'" in result.output

