"""Templated fields fed by upstream tasks (XComArgs): the DAG parses, the task resolves them when it renders,
and a value of the wrong shape fails the task naming the argument before anything is created in AWS."""

from __future__ import annotations

import re
from typing import Any

import pytest

from airflow_batch_runner.layout import OUTPUT_DIR, WORKING_DIR
from tests.e2e.conftest import AwsWorld, load_dag, run_dag, xcom_value
from tests.e2e.test_decorator import mapped_xcoms
from tests.e2e.test_failures import mutations

HEADER = """
    import datetime
    from airflow.sdk import DAG, XComArg, task
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

    ON_EMULATOR = dict(
        compute_environment_arn="{{ var.value.compute_environment_arn }}",
        execution_role_arn="{{ var.value.execution_role_arn }}",
        bucket="{{ var.value.bucket }}",
        completion_check_interval=0.2,
    )
"""

EVERY_FIELD = HEADER + """
    with DAG("xcomarg_fields", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:

        @task
        def commands():
            return ["cp in.txt out.txt", 'echo "$GREETING, $WHO" > greeting.txt', "echo ran-from-xcom"]

        @task
        def who():
            return "world"

        inputs = PythonOperator(task_id="inputs", python_callable=lambda: {"in.txt": "staged from XCom\\n"})
        outputs = PythonOperator(task_id="outputs", python_callable=lambda: ["out.txt", "greeting.txt"])

        BatchRunnerOperator(
            task_id="shell",
            commands=commands(),                       # a TaskFlow call
            input_files=inputs.output,                 # an operator's .output
            output_files=XComArg(outputs),             # a PlainXComArg
            env={"GREETING": "hello", "WHO": who()},   # an XComArg inside a literal
            **ON_EMULATOR,
        )
        BatchRunnerOperator(  # the same task with literal arguments, for the XCom's shape
            task_id="literal",
            commands=["cp in.txt out.txt", 'echo "$GREETING, $WHO" > greeting.txt', "echo ran-from-xcom"],
            input_files={"in.txt": "staged from XCom\\n"},
            output_files=["out.txt", "greeting.txt"],
            env={"GREETING": "hello", "WHO": "world"},
            **ON_EMULATOR,
        )
"""


def test_every_collection_field_can_come_from_an_upstream_task(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_dag(load_dag("xcomarg_fields", EVERY_FIELD), capsys)
    assert result.state == "success", result.output[-3000:]
    assert "[main] ran-from-xcom" in result.output
    xcom = result.xcom
    assert xcom is not None
    assert sorted(xcom["output_files"]) == ["greeting.txt", "out.txt"]
    assert aws.read(xcom["output_files"]["out.txt"]) == "staged from XCom\n"
    assert aws.read(xcom["output_files"]["greeting.txt"]) == "hello, world\n"
    literal = xcom_value("xcomarg_fields", result.run_id, "literal")
    assert literal is not None
    assert {key: type(value) for key, value in xcom.items()} == {key: type(value) for key, value in literal.items()}
    assert list(xcom["output_files"]) == list(literal["output_files"])


MAPPED = HEADER + """
    with DAG("xcomarg_mapped", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:

        @task
        def commands():
            return ["cat in.txt > out.txt", "cat in.txt"]

        @task
        def inputs():
            return [{"in.txt": "first"}, {"in.txt": "second"}]

        @task
        def command_lists():
            return [["echo one > out.txt"], "echo two > out.txt"]

        BatchRunnerOperator.partial(
            task_id="by_inputs", commands=commands(), output_files=["out.txt"], **ON_EMULATOR,
        ).expand(input_files=inputs())
        BatchRunnerOperator.partial(
            task_id="by_commands", output_files=["out.txt"], deferrable=True, **ON_EMULATOR,
        ).expand(commands=command_lists())
        BatchRunnerOperator.partial(  # a mapped task renders its templates as an unmapped one does
            task_id="templated", output_files=["out.txt"], input_files={"in.txt": "kept newline\\n"},
            commands=['echo "{{ working_dir }} {{ outputDir }} $N" > out.txt', "cat in.txt >> out.txt"],
            **ON_EMULATOR,
        ).expand(env=[{"N": "1"}])
"""


def test_mapped_over_an_upstream_task_input_files_or_commands(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = load_dag("xcomarg_mapped", MAPPED)
    result = run_dag(dag, capsys, task_id="by_inputs")
    assert result.state == "success", result.output[-3000:]
    by_inputs = mapped_xcoms("xcomarg_mapped", result.run_id, "by_inputs")
    assert [aws.read(value["output_files"]["out.txt"]) for _, value in by_inputs] == ["first", "second"]
    by_commands = mapped_xcoms("xcomarg_mapped", result.run_id, "by_commands")
    assert [aws.read(value["output_files"]["out.txt"]) for _, value in by_commands] == ["one\n", "two\n"]
    ((_, templated),) = mapped_xcoms("xcomarg_mapped", result.run_id, "templated")
    # The emulator runs the container on the host, its volume paths rewritten under a temporary directory.
    written = aws.read(templated["output_files"]["out.txt"])
    assert re.fullmatch(rf"\S*{WORKING_DIR} \S*{OUTPUT_DIR} 1\nkept newline\n", written), written


WRONG_SHAPE = HEADER + """
    with DAG({dag_id!r}, schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:

        @task
        def upstream():
            return {value!r}

        BatchRunnerOperator(task_id="shell", {arguments}, **ON_EMULATOR)
"""


@pytest.mark.parametrize(("argument", "value", "message"), [
    ("commands", {"echo": "hi"}, "commands must be a shell command string or a list of them; got dict"),
    ("commands", [], "commands must be a non-empty list"),
    ("commands", ["echo ok", 3], "commands must be a non-empty list of shell command strings"),
    ("input_files", ["in.txt"], "input_files must be a mapping of file name to content or s3:// URI; got list"),
    ("input_files", {"../up.txt": "x"}, "input_files: '../up.txt' escapes the working directory"),
    ("input_files", {"in.txt": 3}, "input_files['in.txt'] must be a string"),
    ("output_files", {"out.txt": "x"}, "output_files must be a file name or glob string or a list of them; got dict"),
    ("output_files", ["/etc/passwd"], "output_files: '/etc/passwd' escapes the working directory"),
    ("env", "A=B", "env must be a mapping of variable name to value; got str 'A=B'"),
])
def test_a_value_of_the_wrong_shape_from_xcom_fails_naming_the_argument_before_anything_is_created(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], argument: str, value: Any, message: str
) -> None:
    dag_id = f"xcomarg_wrong_{argument}"
    arguments = {"commands": repr(["echo never"]), argument: "upstream()"}
    source = WRONG_SHAPE.format(dag_id=dag_id, value=value,
                                arguments=", ".join(f"{name}={code}" for name, code in arguments.items()))
    before = mutations(aws)
    result = run_dag(load_dag(dag_id, source), capsys)
    assert result.state == "failed"
    assert message in result.output, result.output[-3000:]
    assert mutations(aws) == before
