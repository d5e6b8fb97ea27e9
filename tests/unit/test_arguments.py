"""The templated collection arguments accept literals, Jinja strings and XComArgs when the DAG is parsed;
literals are put in shape and checked then, the rest once rendered, naming the argument."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, XComArg, task

from airflow_batch_runner import arguments
from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

REQUIRED: dict[str, Any] = {"compute_environment_arn": "ce", "bucket": "b"}


@task
def upstream() -> Any:
    return None


def test_every_collection_field_takes_an_xcomarg_when_the_dag_is_parsed() -> None:
    with DAG("parse_xcomargs", schedule=None, start_date=datetime.datetime(2026, 1, 1)):
        commands, who = upstream(), upstream()
        inputs = PythonOperator(task_id="inputs", python_callable=dict)
        outputs = PythonOperator(task_id="outputs", python_callable=list)
        op = BatchRunnerOperator(task_id="shell", commands=commands, input_files=inputs.output,
                                 output_files=XComArg(outputs), env={"WHO": who}, **REQUIRED)
    assert (op.commands, op.input_files, op.output_files, op.env) == (
        commands, inputs.output, XComArg(outputs), {"WHO": who})
    assert op.upstream_task_ids == {"inputs", "outputs", "upstream", "upstream__1"}


def test_an_xcomarg_inside_a_list_of_commands_is_kept_for_rendering() -> None:
    with DAG("parse_nested", schedule=None, start_date=datetime.datetime(2026, 1, 1)):
        command = upstream()
        op = BatchRunnerOperator(task_id="shell", commands=["echo first", command], **REQUIRED)
    assert op.commands == ["echo first", command]


def test_templates_of_a_mapping_wait_for_rendering_and_literals_are_shaped_now() -> None:
    op = BatchRunnerOperator(task_id="shell", commands="echo one", input_files="{{ params.files }}",
                             env="{{ params.env }}", output_files="out.txt", **REQUIRED)
    assert (op.commands, op.input_files, op.env, op.output_files) == (
        ["echo one"], "{{ params.files }}", "{{ params.env }}", ["out.txt"])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"input_files": "not a template"}, "input_files must be a mapping of file name to content or s3:// URI; got str"),
    ({"env": ["A=B"]}, "env must be a mapping of variable name to value; got list"),
    ({"commands": {"echo": 1}}, "commands must be a shell command string or a list of them; got dict"),
    ({"commands": 3}, "commands must be a shell command string or a list of them; got int 3"),
    ({"output_files": {"a": "b"}}, "output_files must be a file name or glob string or a list of them; got dict"),
])
def test_a_literal_of_the_wrong_shape_fails_when_the_dag_is_parsed(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        BatchRunnerOperator(task_id="shell", **{"commands": ["true"], **REQUIRED, **kwargs})


def test_a_rendered_string_where_a_mapping_belongs_says_how_to_get_one() -> None:
    with pytest.raises(ValueError, match="render_template_as_native_obj=True"):
        arguments.input_files("{'a.txt': 'x'}")


def test_rendered_values_are_shaped_like_literals() -> None:
    assert arguments.commands(("a", "b")) == ["a", "b"]
    assert arguments.output_files(None) == []
    assert arguments.input_files(None) == {}
    assert arguments.env({"A": 1}) == {"A": 1}


def test_resolved_later_looks_inside_lists_and_dicts_only() -> None:
    with DAG("resolved_later", schedule=None, start_date=datetime.datetime(2026, 1, 1)):
        value = upstream()
    assert arguments.resolved_later(value)
    assert arguments.resolved_later([1, {"k": value}])
    assert not arguments.resolved_later(["{{ ds }}", {"k": "v"}])
    assert not arguments.resolved_later("{{ ti.xcom_pull('x') }}")


CREDENTIALS = ("access_key_id", "secret_key_id", "session_token")


@pytest.mark.parametrize("field", sorted(BatchRunnerOperator.template_fields))
@pytest.mark.parametrize("given", ["xcomarg", "jinja"])
def test_every_templated_field_takes_an_xcomarg_or_a_jinja_string_when_the_dag_is_parsed(
    field: str, given: str
) -> None:
    with DAG(f"parse_{field}_{given}", schedule=None, start_date=datetime.datetime(2026, 1, 1)):
        fields = CREDENTIALS if field in CREDENTIALS else (field,)  # the keys go together
        values = {name: upstream() if given == "xcomarg" else "{{ params.value }}" for name in fields}
        op = BatchRunnerOperator(task_id="shell", **{"commands": ["true"], **REQUIRED, **values})
    # A single string in commands or output_files is one command or name, a template or not.
    expected = {name: [value] if name in ("commands", "output_files") and given == "jinja" else value
                for name, value in values.items()}
    assert {name: getattr(op, name) for name in fields} == expected


def test_names_of_files_written_in_the_dag_are_rendered_those_from_xcom_are_not() -> None:
    def render(text: str) -> str:
        return text.replace("{{ name }}", "report")

    literal = {"{{ name }}.txt": "{{ name }}", "plain.txt": "x"}
    assert arguments.render_names(literal, render, set()) == {"report.txt": "{{ name }}", "plain.txt": "x"}
    children = [{"{{ name }}-0.txt": "0"}, upstream()]
    assert arguments.render_names(children, render, set())[0] == {"report-0.txt": "0"}
    from_xcom = {"{{ name }}.txt": "x"}
    assert arguments.render_names(from_xcom, render, {id(from_xcom)}) is from_xcom
    assert arguments.render_names([from_xcom], render, {id(from_xcom)}) == [from_xcom]
    assert arguments.render_names("{{ params.files }}", render, set()) == "{{ params.files }}"


def test_a_dict_keeps_its_identity_so_airflow_still_knows_it_came_from_xcom() -> None:
    mapped = {"in.txt": "{{ 7*7 }}"}
    assert arguments.input_files(mapped) is mapped
    assert arguments.at_construction(mapped, arguments.input_files, templates_later=True) is mapped
