"""Declared outputs enforced and never silently dropped, names and env refused before anything is
created, and commands or env beyond what AWS Batch accepts in one SubmitJob request."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_batch_runner import layout
from airflow_batch_runner.emulator.testing import control
from tests.e2e.conftest import AwsWorld, run_dag
from tests.e2e.test_failures import mutations, staged_inputs, task_dag, the_job

# Declared outputs


@pytest.mark.parametrize("exit_command", ["exit 0", "exit"])
def test_an_exit_before_a_declared_output_is_written_fails_naming_it(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], exit_command: str
) -> None:
    dag = task_dag("early_exit", output_files=["out.txt"], commands=["echo starting", exit_command, "echo x > out.txt"])
    result = run_dag(dag, capsys)
    assert result.state == "failed"
    assert "BatchJobFailed" in result.output
    assert "output file out.txt was not written" in result.output
    assert the_job(aws, "early_exit")["status"] == "FAILED"


def test_a_declared_directory_is_collected_with_every_file_in_it(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = task_dag("dir_output", output_files=["results"],
                   commands=["mkdir -p results/deep", "echo a > results/a.txt", "echo b > results/deep/b.txt"])
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    outputs = result.xcom["output_files"]
    assert sorted(outputs) == ["results/a.txt", "results/deep/b.txt"]
    assert aws.read(outputs["results/deep/b.txt"]) == "b\n"


def test_the_same_name_in_the_working_and_output_dirs_is_reachable_twice(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = task_dag("same_name", output_files=["report.txt"],
                   commands=["echo declared > report.txt", 'echo from-output-dir > "$OUTPUT_DIR/report.txt"'])
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    outputs = result.xcom["output_files"]
    assert sorted(outputs) == [f"{layout.OUTPUT_DIR}/report.txt", "report.txt"]
    assert aws.read(outputs["report.txt"]) == "declared\n"
    assert aws.read(outputs[f"{layout.OUTPUT_DIR}/report.txt"]) == "from-output-dir\n"


def test_dangling_links_and_fifos_are_left_out_with_a_task_log_line(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = task_dag("special_files", output_files=["out.txt"], commands=[
        "echo x > out.txt",
        'ln -s /nonexistent/target "$OUTPUT_DIR/dangling"',
        'mkfifo "$OUTPUT_DIR/pipe"',
        "ln -s /nonexistent/target stray",
        'echo kept > "$OUTPUT_DIR/kept.txt"',
    ])
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    assert sorted(result.xcom["output_files"]) == ["kept.txt", "out.txt"]
    assert "output/dangling: a dangling symbolic link" in result.output
    assert "output/pipe: not a regular file (a fifo, socket or device)" in result.output
    assert "work/stray: a dangling symbolic link" in result.output


@pytest.mark.parametrize(
    ("fault", "sidecar", "kwargs"),
    [
        ("s3:GetObject", "inputs", {"input_files": {"in.txt": "x"}}),
        ("s3:PutObject", "outputs", {"output_files": ["out.txt"]}),
    ],
)
def test_a_failed_sidecar_is_named_with_its_reason_and_its_own_last_lines(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], fault: str, sidecar: str, kwargs: dict[str, Any]
) -> None:
    # Refuse the sidecar's S3 calls (the task's own staging uses others: PutObject is no upload of
    # inputs here, and the inputs are staged by PutObject, not read).
    control(aws.url, "faults", {fault: {"error_rate": 1.0, "error_code": "AccessDenied", "error_status": 403}})
    try:
        result = run_dag(task_dag(f"sidecar_{sidecar}", commands=["echo x > out.txt"], **kwargs), capsys)
    finally:
        control(aws.url, "faults", {})
    assert result.state == "failed"
    assert f"Failed container: {sidecar} (exit code 1)." in result.output
    assert f"Last log lines of the {sidecar} container:" in result.output
    assert "AccessDenied" in result.output.split(f"Last log lines of the {sidecar} container:", 1)[1]
    assert "DependencyNotSatisfied" not in result.output.split("BatchJobFailed", 1)[1]


# Names and environment refused before anything is created


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"output_files": ["."]}, r"output_files: '\.' names the working directory itself"),
        ({"output_files": ["./"]}, r"output_files: '\./' names the working directory itself"),
        ({"output_files": [""]}, "output_files: file names must be non-empty"),
        ({"output_files": ["  "]}, "output_files: file names must be non-empty"),
        ({"input_files": {".": "x"}}, r"input_files: '\.' names the working directory itself"),
        ({"input_files": {"./": "x"}}, r"input_files: '\./' names the working directory itself"),
        ({"input_files": {"a\nb.txt": "x"}}, "input_files: .* contains a control character"),
        ({"input_files": {"a\tb.txt": "x"}}, "input_files: .* contains a control character"),
        ({"output_files": ["out\n.txt"]}, "output_files: .* contains a control character"),
        ({"env": {"1BAD": "x"}}, "env: '1BAD' is not a valid environment variable name"),
        ({"env": {"A-B": "x"}}, "env: 'A-B' is not a valid environment variable name"),
        ({"env": {"A B": "x"}}, "env: 'A B' is not a valid environment variable name"),
        ({"env": {"": "x"}}, "env: '' is not a valid environment variable name"),
        ({"env": {"A=B": "x"}}, "env: 'A=B' is not a valid environment variable name"),
        ({"env": {"AWS_BATCH_JOB_ID": "x"}}, "env: 'AWS_BATCH_JOB_ID' starts with AWS_BATCH"),
        ({"env": {"WORKING_DIR": "/tmp"}}, "env: 'WORKING_DIR' is set by the runner"),
        ({"env": {"BUCKET_PATH": "s3://x/"}}, "env: 'BUCKET_PATH' is set by the runner"),
        ({"env": {f"VAR_{i}": "v" * 200 for i in range(60)}}, r"env: the environment takes \d+ of the \d+ characters"),
        ({"bucket": None, "commands": [f"echo line {i} of a long script with words" for i in range(400)]},
         "commands: .* do not fit in the SubmitJob request .* bucket="),
    ],
)
def test_bad_names_env_and_sizes_fail_the_task_before_anything_is_created(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], kwargs: dict[str, Any], message: str
) -> None:
    import re

    before = mutations(aws)
    result = run_dag(task_dag("refused", **{"commands": ["true"], **kwargs}), capsys)
    assert result.state == "failed"
    assert re.search(message, result.output), result.output[-2000:]
    assert mutations(aws) == before
    assert "SubmitJob" not in aws.calls()


# Commands beyond what one SubmitJob request carries


def test_a_long_inline_script_runs_from_a_staged_file_and_leaves_nothing_behind(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [f'echo "line {i:03d} of a long inline script, long enough to matter" >> log.txt' for i in range(500)]
    assert sum(len(line) for line in lines) > 30 * 1024  # inline, AWS (and the emulator) would refuse it
    dag = task_dag("long_script", output_files=["log.txt"], input_files={"in.txt": "input\n"},
                   commands=["cp in.txt log.txt", *lines, "exit 0", "echo never >> log.txt"])
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    assert sorted(result.xcom["output_files"]) == ["log.txt"]
    log = aws.read(result.xcom["output_files"]["log.txt"]).splitlines()
    assert log[0] == "input" and log[-1].startswith("line 499") and len(log) == 501
    assert staged_inputs(aws) == []  # the staged script is an input: deleted with them
    main = the_job(aws, "long_script")["ecsProperties"]["taskProperties"][0]["containers"][1]
    assert "line 499" not in str(main["command"])
