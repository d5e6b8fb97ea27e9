"""An input file's value is copied from S3 only when it is an ``s3://`` URI on one line; a text with a line break
is the file's content, even when it starts with ``s3://`` (both for shared inputs and an array child's)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import AwsWorld, load_dag, run_dag, xcom_value
from tests.e2e.test_xcomarg_fields import HEADER

TEXT = "s3://bucket/key.csv is where\nthe data lives\n"

DAG = HEADER + f"""
    with DAG("uri_or_content", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:
        BatchRunnerOperator(task_id="shell", input_files={{"notes.txt": {TEXT!r}}},
                            commands=["cp notes.txt out.txt"], output_files=["out.txt"], **ON_EMULATOR)
        BatchRunnerOperator(task_id="children", array_input_files=[{{"notes.txt": {TEXT!r}}}, {{"notes.txt": "x"}}],
                            commands=["cp notes.txt out.txt"], output_files=["out.txt"], **ON_EMULATOR)
"""


def test_a_text_that_starts_with_s3_and_has_a_newline_is_content(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_dag(load_dag("uri_or_content", DAG), capsys)
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    assert aws.read(result.xcom["output_files"]["out.txt"]) == TEXT
    children = xcom_value("uri_or_content", result.run_id, "children")
    assert children is not None
    assert aws.read(children["children"]["0"]["output_files"]["out.txt"]) == TEXT
