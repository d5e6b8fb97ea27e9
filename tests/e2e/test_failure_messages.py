"""A failed job's message, as the task log shows it: the failing container's own reason only, in sentences."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import AwsWorld, run_dag
from tests.e2e.test_failures import task_dag


def test_a_command_that_exits_7_is_reported_without_the_outputs_sidecars_reason(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_dag(task_dag("exits_7", input_files={"in.txt": "x"}, output_files=["out.txt"],
                              commands=["echo failing", "exit 7"]), capsys)
    assert result.state == "failed"
    message = result.output.split("BatchJobFailed", 1)[1]
    assert "Main container exit code: 7." in message
    assert "Status reason: Essential container in task exited." in message
    assert "DependencyNotSatisfied" not in message and "Container reason" not in message
    assert ".." not in message.split("Last log lines", 1)[0]
