"""The templated collection arguments accept literals, Jinja strings and XComArgs when the DAG is parsed;
literals are put in shape and checked then, the rest once rendered, naming the argument."""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, XComArg, task

from airflow_batch_runner import arguments, validation
from airflow_batch_runner.job_spec import Resources
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
# The argument of a templated field kept under another name (BaseOperator owns ``resources``).
ARGUMENT = {"batch_resources": "resources"}


@pytest.mark.parametrize("field", sorted(BatchRunnerOperator.template_fields))
@pytest.mark.parametrize("given", ["xcomarg", "jinja"])
def test_every_templated_field_takes_an_xcomarg_or_a_jinja_string_when_the_dag_is_parsed(
    field: str, given: str
) -> None:
    with DAG(f"parse_{field}_{given}", schedule=None, start_date=datetime.datetime(2026, 1, 1)):
        fields = CREDENTIALS if field in CREDENTIALS else (field,)  # the keys go together
        values = {name: upstream() if given == "xcomarg" else "{{ params.value }}" for name in fields}
        arguments_given = {ARGUMENT.get(name, name): value for name, value in values.items()}
        op = BatchRunnerOperator(task_id="shell", **{"commands": ["true"], **REQUIRED, **arguments_given})
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


@pytest.mark.parametrize(("given", "seconds"), [("600", 600.0), (" 0.5 ", 0.5), (2, 2.0),
                                                (datetime.timedelta(minutes=2), 120.0)])
def test_a_duration_is_seconds_a_rendered_string_of_them_or_a_timedelta(given: Any, seconds: float) -> None:
    assert arguments.seconds(given, "wait_until_completion") == seconds


@pytest.mark.parametrize(("given", "message"), [
    ("ten", "max_runnable_time must be a number of seconds or a timedelta; got str 'ten'"),
    ({"s": 1}, "max_runnable_time must be a number of seconds or a timedelta; got dict"),
    ("0", "max_runnable_time must be positive; got '0'"),
    ("nan", "max_runnable_time must be positive; got 'nan'"),
    (datetime.timedelta(0), "max_runnable_time must be positive"),
])
def test_a_duration_that_is_no_positive_number_names_its_argument(given: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        arguments.seconds(given, "max_runnable_time")


def test_a_rendered_whole_number_of_attempts_is_the_number() -> None:
    assert arguments.retry_strategy({"attempts": "3"}) == {"attempts": 3}
    assert arguments.retry_strategy({"attempts": "three"}) == {"attempts": "three"}  # judged by job_spec
    assert arguments.retry_strategy(None) is None


def test_known_now_means_no_template_and_no_xcomarg_anywhere_in_the_value() -> None:
    with DAG("known_now", schedule=None, start_date=datetime.datetime(2026, 1, 1)):
        value = upstream()
    assert arguments.known_now({"request": {"cpu": "1", "memory": 2048}})
    assert not arguments.known_now({"request": {"cpu": "{{ params.cpu }}", "memory": "2048"}})
    assert not arguments.known_now({"request": value})
    assert not arguments.known_now("{{ params.timeout }}")
    assert arguments.known_now(600)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"resources": {"request": {"cpu": "0", "memory": "2048"}}}, "resources: cpu and memory must be positive"),
    ({"sidecar_resources": {"cpu": "1"}}, "sidecar_resources must look like"),
    ({"retry_strategy": {"attempts": 11}}, "retry_strategy: attempts must be a whole number from 1 to 10"),
    ({"wait_until_completion": "soon"}, "wait_until_completion must be a number of seconds"),
    ({"max_runnable_time": -1}, "max_runnable_time must be positive"),
    ({"completion_check_interval": 0}, "completion_check_interval must be positive"),
    ({"sts_role_session_duration": "x"}, "sts_role_session_duration must be a number of seconds"),
])
def test_a_value_written_in_the_dag_is_still_refused_when_the_dag_is_parsed(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        BatchRunnerOperator(task_id="shell", **{"commands": ["true"], **REQUIRED, **kwargs})


def test_a_value_with_a_template_inside_is_left_for_execute() -> None:
    resources = {"request": {"cpu": "{{ params.cpu }}", "memory": "2048"}}
    op = BatchRunnerOperator(task_id="shell", **{"commands": ["true"], **REQUIRED, "resources": resources,
                                                 "retry_strategy": {"attempts": "{{ params.attempts }}"},
                                                 "wait_until_completion": "{{ params.timeout }}"})
    assert (op.batch_resources, op.retry_strategy, op.wait_until_completion) == (
        resources, {"attempts": "{{ params.attempts }}"}, "{{ params.timeout }}")


def test_rendered_strings_of_numbers_are_shaped_as_numbers() -> None:
    op = BatchRunnerOperator(task_id="shell", **{"commands": ["true"], **REQUIRED})
    op.batch_resources = {"request": {"cpu": "2", "memory": "4096"}}
    op.sidecar_resources = {"request": {"cpu": "0.25", "memory": "256"}}
    op.retry_strategy = {"attempts": "2"}
    op.wait_until_completion, op.max_runnable_time, op.completion_check_interval = "600", "30", "0.5"
    op.sts_role_session_duration = "1800"
    op._shape_values()
    assert (op._resources, op._sidecar_resources, op._retry_strategy) == (
        Resources(2.0, 4096), Resources(0.25, 256), {"attempts": 2})
    assert (op.wait_until_completion, op.max_runnable_time, op.completion_check_interval,
            op.sts_role_session_duration) == (600.0, 30.0, 0.5, 1800)


@pytest.mark.parametrize(("value", "expected"), [("3", 3), (" 12 ", 12), ("-1", -1), (4, 4), ("lots", "lots"),
                                                 ("2.5", "2.5"), (None, None), (True, True)])
def test_a_rendered_whole_number_is_the_number_and_the_rest_is_left_to_its_check(value: Any, expected: Any) -> None:
    assert arguments.whole_number(value, "spot_retries") == expected


@pytest.mark.parametrize(("value", "expected"), [("3", 3), ("0", 0), ("0.05", 0.05), (" 1.0 ", 1.0), ("lots", "lots"),
                                                 (2, 2), (0.5, 0.5)])
def test_a_rendered_allowed_failures_is_a_count_or_a_fraction(value: Any, expected: Any) -> None:
    got = arguments.count_or_fraction(value)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("argument", ["spot_retries", "scheduling_priority", "allowed_failures"])
def test_the_computed_whole_numbers_are_templated(argument: str) -> None:
    assert argument in BatchRunnerOperator.template_fields


@pytest.mark.parametrize("value", ["--5", "²", "٣"])
@pytest.mark.parametrize("argument", ["spot_retries", "scheduling_priority"])
def test_a_rendered_string_that_only_looks_like_a_whole_number_is_refused_naming_its_argument(
    value: str, argument: str
) -> None:
    check = {"spot_retries": lambda n: validation.retry_strategy_for(n, None),
             "scheduling_priority": validation.check_scheduling_priority}[argument]
    with pytest.raises(ValueError, match=f"^{argument} must be a whole number"):
        check(arguments.whole_number(value, argument))
