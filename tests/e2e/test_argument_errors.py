"""Arguments AWS would refuse, or that would silently lose a file, fail the task naming the argument and the fix
before anything is created in AWS (a real Airflow, the emulator)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.conftest import AwsWorld, run_dag
from tests.e2e.test_failures import mutations, task_dag
from tests.e2e.test_options import fair_share_queue


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_files": {"a.txt": "one", "./a.txt": "two"}},
         "input_files: 'a.txt' and './a.txt' name the same file 'a.txt'"),
        ({"input_files": {"data.csv": "shared"}, "array_input_files": [{"own.csv": "0"}, {"data.csv": "1"}]},
         r"array_input_files\[1\]: 'data.csv' is also a file of input_files"),
        ({"tags": {f"team-{i}": "x" for i in range(44)}},
         r"tags: with propagate_tags=True AWS Batch copies .* give at most 43 of your own \(got 44\), or pass "
         "propagate_tags=False"),
        ({"output_files": [f"results/part_{i:04d}_of_the_run.csv" for i in range(300)]},
         r"output_files: the 300 declared names take \d+ of the \d+ characters .* a glob \('out_\*\.csv'\)"),
    ],
)
def test_refused_before_anything_is_created(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], kwargs: dict[str, Any], message: str,
) -> None:
    before = mutations(aws)
    result = run_dag(task_dag("refused_arguments", **{"commands": ["true"], **kwargs}), capsys)
    assert result.state == "failed"
    assert re.search(message, result.output), result.output[-2000:]
    assert mutations(aws) == before


def test_a_share_identifier_aws_refuses_fails_naming_it_before_anything_is_created(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = fair_share_queue(aws, "fair-underscore")
    before = mutations(aws)
    result = run_dag(task_dag("share_underscore", bucket=None, commands=["true"], job_queue_arn=queue,
                              share_identifier="team_A"), capsys)
    assert result.state == "failed"
    assert "share_identifier 'team_A' is not one AWS Batch accepts: 1 to 255 letters and digits only" in result.output
    assert mutations(aws) == before


@pytest.mark.parametrize(
    ("retry_strategy", "message"),
    [
        ({"attempts": 11}, "retry_strategy: attempts must be a whole number from 1 to 10"),
        ("x", "retry_strategy is AWS Batch's RetryStrategy, a dict"),
        ({"attempts": 2, "evaluateOnExit": [{"onExitCode": "1", "action": "RETRY"}] * 6},
         "retry_strategy: evaluateOnExit must be a list of at most 5 rules"),
        ({"attempts": 2, "evaluateOnExit": [{"onReason": "Out-of-memory*", "action": "RETRY"}]},
         r"retry_strategy: evaluateOnExit\[0\]: onReason 'Out-of-memory\*' is not a pattern AWS Batch accepts"),
    ],
)
def test_a_retry_strategy_aws_refuses_fails_when_the_dag_is_parsed(
    aws: AwsWorld, retry_strategy: Any, message: str
) -> None:
    before = mutations(aws)
    with pytest.raises(ValueError, match=message):
        task_dag("bad_retry_strategy", commands=["true"], retry_strategy=retry_strategy)
    assert mutations(aws) == before


def test_44_tags_of_ones_own_fit_a_job_that_does_not_propagate_them(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    tags = {f"team-{i}": "x" for i in range(44)}
    result = run_dag(task_dag("tags_kept", bucket=None, commands=["true"], tags=tags, propagate_tags=False), capsys)
    assert result.state == "success", result.output[-2000:]
    assert result.xcom is not None
    job = aws.client("batch").describe_jobs(jobs=[result.xcom["job_id"]])["jobs"][0]
    assert len(job["tags"]) == 50 and job["propagateTags"] is False
