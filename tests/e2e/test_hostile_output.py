"""No content of a container's output crashes a reader, on either waiting path: deep JSON, lines that only
look like results, bytes that are not UTF-8, lone surrogates; the lines after them are still shown and the
job's end is still handled (its inputs cleaned up, nothing left running)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import AwsWorld, run_dag
from tests.e2e.test_failures import staged_inputs, task_dag

DEEP = '"[" * 8000 + "]" * 8000'
DEEP_LINE = f"""python3 -c 'print("::{{\\"outputs\\": {{\\"x\\": " + {DEEP} + "}}}}::")'"""
DEEP_FILE = ("""python3 -c 'import os; open(os.environ["OUTPUTS_FILE"], "w")"""
             f""".write("{{\\"outputs\\": {{\\"x\\": " + {DEEP} + "}}}}")'""")


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
@pytest.mark.parametrize("where", ["line", "file"])
def test_json_nested_8000_levels_fails_the_task_as_malformed_and_the_reader_goes_on(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], deferrable: bool, where: str
) -> None:
    dag = task_dag(f"deep_{where}_{deferrable}", deferrable=deferrable, input_files={"in.txt": "x"},
                   commands=[DEEP_LINE if where == "line" else DEEP_FILE, "echo line after the deep one"])
    result = run_dag(dag, capsys)
    assert result.state == "failed"
    assert "MalformedResults" in result.output
    assert "nested deeper than 32 levels" in result.output
    assert "[main] line after the deep one" in result.output
    assert "RecursionError" not in result.output
    assert "Could not read the last lines" not in result.output
    jobs = aws.client("batch").list_jobs(jobQueue=aws.client("batch").describe_job_queues()["jobQueues"][0][
        "jobQueueName"], filters=[{"name": "JOB_NAME", "values": [f"deep_{where}_{deferrable}-shell-*"]}])
    assert [job["status"] for job in jobs["jobSummaryList"]] == ["SUCCEEDED"]
    assert staged_inputs(aws) == []


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_odd_lines_are_shown_and_the_results_still_read(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], deferrable: bool
) -> None:
    commands = [
        "echo '::{std::vector<int>}::'",
        "printf 'not utf-8: \\377\\376 end\\n'",
        "printf 'nul: a\\000b\\n'",
        """echo '::{"outputs": {"lone": "\\ud800", "ok": 1}}::'""",
        "echo '::{std::map<int, int>}::'",
        "echo last line",
    ]
    result = run_dag(task_dag(f"odd_lines_{deferrable}", deferrable=deferrable, bucket=None, commands=commands),
                     capsys)
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    assert result.xcom["outputs"] == {"lone": "\ufffd", "ok": 1}
    assert "[main] ::{std::vector<int>}::" in result.output
    assert result.output.count("is not JSON; it is shown as an ordinary line") == 1
    assert "[main] last line" in result.output
