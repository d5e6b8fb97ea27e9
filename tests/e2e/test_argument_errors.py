"""Arguments AWS would refuse, or that would silently lose a file, fail the task naming the argument and the fix
before anything is created in AWS (a real Airflow, the emulator)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.conftest import AwsWorld, run_dag
from tests.e2e.test_failures import mutations, task_dag


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_files": {"a.txt": "one", "./a.txt": "two"}},
         "input_files: 'a.txt' and './a.txt' name the same file 'a.txt'"),
        ({"input_files": {"data.csv": "shared"}, "array_input_files": [{"own.csv": "0"}, {"data.csv": "1"}]},
         r"array_input_files\[1\]: 'data.csv' is also a file of input_files"),
    ],
)
def test_two_names_for_one_file_fail_before_anything_is_created(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], kwargs: dict[str, Any], message: str,
) -> None:
    before = mutations(aws)
    result = run_dag(task_dag("one_name_per_file", **{"commands": ["true"], **kwargs}), capsys)
    assert result.state == "failed"
    assert re.search(message, result.output), result.output[-2000:]
    assert mutations(aws) == before
