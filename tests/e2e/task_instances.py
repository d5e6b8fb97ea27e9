"""A task instance in this test session's Airflow database, put in the state a test needs, and the Task SDK
supervisor a trigger asks about it through (as in a triggerer: ``RuntimeTaskInstance.get_task_states`` goes
to Airflow's execution API, here the in-process one on the same database)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.e2e.conftest import load_dag

MAPPED_DAG = """
from datetime import datetime

from airflow.sdk import DAG, task

with DAG(dag_id="{dag_id}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    @task
    def waits(n):
        return n

    waits.expand(n=[0, 1, 2])
"""


class TaskInstanceRow:
    """One mapped task instance (map index 1, beside 0 and 2 of the same task) of a run made by ``dag.test()``."""

    def __init__(self, dag_id: str) -> None:
        dag = load_dag(dag_id, MAPPED_DAG.format(dag_id=dag_id))
        self.dag_id, self.task_id, self.map_index = dag_id, "waits", 1
        self.run_id = str(dag.test().run_id)

    def set_state(self, state: str | None) -> None:
        """This task instance's state (its siblings keep theirs: success)."""
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session

        with create_session() as session:
            ti = session.query(TaskInstance).filter_by(
                dag_id=self.dag_id, task_id=self.task_id, run_id=self.run_id, map_index=self.map_index
            ).one()
            ti.state = state

    def as_triggerer_has_it(self) -> Any:
        """What a triggerer sets as a trigger's ``task_instance`` (the workload's, from the row)."""
        from airflow.executors.workloads import TaskInstance as WorkloadTaskInstance
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session

        with create_session() as session:
            ti = session.query(TaskInstance).filter_by(
                dag_id=self.dag_id, task_id=self.task_id, run_id=self.run_id, map_index=self.map_index
            ).one()
            return WorkloadTaskInstance.model_validate(ti, from_attributes=True)


@contextmanager
def supervisor_comms() -> Iterator[None]:
    """The Task SDK's supervisor comms, answered by the in-process execution API on this session's database."""
    import psutil
    import structlog
    from airflow.sdk.execution_time.supervisor import (
        InProcessSupervisorComms,
        InProcessTestSupervisor,
        set_supervisor_comms,
    )

    make: Any = InProcessTestSupervisor  # attrs' generated __init__ is not seen by mypy
    supervisor = make(
        id="00000000-0000-0000-0000-000000000000", pid=os.getpid(), process=psutil.Process(),
        process_log=structlog.get_logger(logger_name="task").bind(), client=InProcessTestSupervisor._api_client(),
    )
    supervisor.comms = InProcessSupervisorComms(supervisor=supervisor)
    with set_supervisor_comms(supervisor.comms):
        yield
