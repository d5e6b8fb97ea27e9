"""Jinja in the names of input files: rendered where the DAG author wrote it (a literal dict), as the values are;
never in names or values that came from XCom, mapped or not (they are used as they are)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import AwsWorld, load_dag, run_dag, xcom_value
from tests.e2e.test_decorator import mapped_xcoms
from tests.e2e.test_xcomarg_fields import HEADER

DAG = HEADER + """
    # Each staged file as "<name>=<content>", one a line.
    LISTING = dict(commands=['for f in *.txt; do printf "%s=" "$f"; cat "$f"; echo; done > listing.out'],
                   output_files=["listing.out"], **ON_EMULATOR)

    with DAG("templated_names", schedule=None, start_date=datetime.datetime(2026, 1, 1),
             params={"name": "report"}) as dag:

        @task
        def from_xcom():
            return {"{{ 7*7 }}.txt": "{{ 7*7 }}"}

        @task
        def each_from_xcom():
            return [{"{{ 7*7 }}.txt": "{{ 7*7 }}"}]

        BatchRunnerOperator(
            task_id="shell",
            input_files={"{{ params.name }}.txt": "hello {{ params.name }}", "plain.txt": "{{ 6*7 }}"},
            **LISTING,
        )
        BatchRunnerOperator(task_id="children", input_files={"shared.txt": "s"},
                            array_input_files=[{"{{ params.name }}-0.txt": "0"}, {"{{ params.name }}-1.txt": "1"}],
                            **LISTING)
        BatchRunnerOperator(task_id="xcom", input_files=from_xcom(), **LISTING)
        BatchRunnerOperator.partial(task_id="mapped", **LISTING).expand(input_files=each_from_xcom())
"""


def listing(aws: AwsWorld, xcom: Any) -> str:
    assert xcom is not None
    return aws.read(xcom["output_files"]["listing.out"])


def test_names_written_in_the_dag_are_rendered_names_from_xcom_are_not(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_dag(load_dag("templated_names", DAG), capsys)
    assert result.state == "success", result.output[-3000:]
    assert listing(aws, result.xcom) == "plain.txt=42\nreport.txt=hello report\n"
    children = xcom_value("templated_names", result.run_id, "children")
    assert children is not None
    uris = [children["children"][index]["output_files"]["listing.out"] for index in ("0", "1")]
    assert [aws.read(uri) for uri in uris] == ["report-0.txt=0\nshared.txt=s\n", "report-1.txt=1\nshared.txt=s\n"]
    assert listing(aws, xcom_value("templated_names", result.run_id, "xcom")) == "{{ 7*7 }}.txt={{ 7*7 }}\n"
    ((_, mapped),) = mapped_xcoms("templated_names", result.run_id, "mapped")
    assert listing(aws, mapped) == "{{ 7*7 }}.txt={{ 7*7 }}\n"
