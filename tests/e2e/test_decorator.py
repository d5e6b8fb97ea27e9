"""``@task.batch_runner``: the function returns the commands; mapped, fed by upstream XComs, deferred."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.conftest import AwsWorld, load_dag, run_dag, xcom_value


def mapped_xcoms(dag_id: str, run_id: str, task_id: str) -> list[tuple[int, Any]]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (session.query(XComModel)
                .filter(XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.task_id == task_id,
                        XComModel.key == "return_value")
                .order_by(XComModel.map_index).all())
        return [(row.map_index, row.value) for row in rows]


def test_the_example_maps_the_function_over_upstream_words_deferred(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = load_dag("taskflow")
    result = run_dag(dag, capsys, conf={"words": ["pear", "banana"]}, task_id="spend")
    assert result.state == "success", result.output[-3000:]
    values = mapped_xcoms("taskflow", result.run_id, "count")
    assert [index for index, _ in values] == [0, 1]
    assert [aws.read(value["output_files"]["length.txt"]).strip() for _, value in values] == ["4", "6"]
    assert all(value["status"] == "SUCCEEDED" for _, value in values)
    told = [line for line in result.output.splitlines()
            if "[main]" in line or "Could not read" in line or "SUCCEEDED with" in line or "Pausing" in line]
    assert "[main] 4" in result.output and "[main] 6" in result.output, "\n".join(told)
    # Each mapped task waited in the triggerer (the task runner's own line: dag.test's "[DAG TEST]" logger is
    # disabled once an earlier test in the process has made Airflow configure its logging again).
    assert result.output.count("Pausing task as DEFERRED") >= 2
    # spend read both XComs: a positive sum, since each job ran for some time.
    spent = xcom_value("taskflow", result.run_id, "spend")
    assert isinstance(spent, float) and spent > 0


DECORATED = """
    import datetime
    from airflow.sdk import DAG, task

    with DAG({dag_id!r}, schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:

        @task
        def greeting() -> str:
            return "hello from upstream"

        @task.batch_runner(
            task_id="shell",
            compute_environment_arn="{{{{ var.value.compute_environment_arn }}}}",
            execution_role_arn="{{{{ var.value.execution_role_arn }}}}",
            bucket="{{{{ var.value.bucket }}}}",
            completion_check_interval=0.2,
            deferrable={deferrable},
        )
        def shell(text: str):
            return {returns}

        shell(greeting())
"""


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_a_returned_command_takes_upstream_values_and_template_variables(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], deferrable: bool
) -> None:
    dag_id = f"decorated_{deferrable}"
    returns = "f'echo {text} > {{{{ output_dir }}}}/said.txt'"
    dag = load_dag(dag_id, DECORATED.format(dag_id=dag_id, deferrable=deferrable, returns=returns))
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    assert aws.read(result.xcom["output_files"]["said.txt"]) == "hello from upstream\n"
    # The rendered-template view shows what the function returned, after a deferral too (the trigger's event
    # carries the commands: dag.test() resumes a task with the event alone).
    assert rendered_commands(dag_id) == ["echo hello from upstream > /airflow-batch/output/said.txt"]


def rendered_commands(dag_id: str) -> Any:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(RenderedTaskInstanceFields).filter_by(dag_id=dag_id, task_id="shell").first()
        assert row is not None
        return row.rendered_fields["commands"]


@pytest.mark.parametrize("returns", ["None", "''", "[1, 2]"])
def test_a_function_that_returns_no_commands_fails_the_task_saying_so(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], returns: str
) -> None:
    dag = load_dag("decorated_bad", DECORATED.format(dag_id="decorated_bad", deferrable=False, returns=returns))
    result = run_dag(dag, capsys)
    assert result.state == "failed"
    assert "must return a non-empty command string or a list of them" in result.output
    assert aws.calls().get("SubmitJob", 0) == 0


MAPPED_DATA = """
    import datetime, shlex
    from airflow.sdk import DAG, task

    with DAG({dag_id!r}, schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:

        @task
        def data() -> list[str]:
            return ["{{{{ var.value.abr_db_password }}}}", "{{{{ 7*7 }}}}", "a{{%b", "{{{{ ds }}}}"]

        @task.batch_runner(
            task_id="shell",
            compute_environment_arn="{{{{ var.value.compute_environment_arn }}}}",
            execution_role_arn="{{{{ var.value.execution_role_arn }}}}",
            bucket=None,
            completion_check_interval=0.2,
            deferrable={deferrable},
        )
        def shell(text: str, ds=None):
            return [f"printf '%s\\n' {{shlex.quote(text)}}", f"echo day {{ds}} in {{{{{{{{ working_dir }}}}}}}}"]

        shell.expand(text=data())
"""


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_upstream_data_in_the_returned_commands_is_never_rendered_as_jinja(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, deferrable: bool
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_ABR_DB_PASSWORD", "s3cr3t-from-a-variable")
    dag_id = f"decorated_data_{deferrable}"
    dag = load_dag(dag_id, MAPPED_DATA.format(dag_id=dag_id, deferrable=deferrable))
    result = run_dag(dag, capsys, task_id="shell")
    assert result.state == "success", result.output[-3000:]
    for text in ("{{ var.value.abr_db_password }}", "{{ 7*7 }}", "a{%b", "{{ ds }}"):
        assert f"[main] {text}" in result.output  # printed as the upstream task gave it
    assert "s3cr3t-from-a-variable" not in result.output and "[main] 49" not in result.output
    assert "TemplateSyntaxError" not in result.output
    # The function's own text: the runner's variables filled in, context values taken as parameters.
    # (the emulator runs the container in a directory of its own, below which the job's paths lie)
    assert len(re.findall(r"\[main\] day \d{4}-\d\d-\d\d in \S*/airflow-batch/work\b", result.output)) == 4
    assert aws.calls().get("SubmitJob", 0) >= 4
