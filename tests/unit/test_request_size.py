"""What does not fit in the SubmitJob request is named, with its share and the fix: the environment, the declared
output names, or both (ECS starts a job with at most 8192 characters of container overrides)."""

from __future__ import annotations

import re

import pytest

from airflow_batch_runner import array_spec, job_spec
from tests.unit.test_job_spec import IDENTITY, QUEUE, make_spec

MANY_NAMES = tuple(f"results/part_{i:04d}_of_the_run.csv" for i in range(300))


def refusal(spec: job_spec.JobSpec) -> str:
    with pytest.raises(ValueError) as excinfo:
        job_spec.fit_to_limits(spec, IDENTITY, QUEUE, 3600)
    return str(excinfo.value)


def test_too_many_output_names_are_named_with_the_fix_not_env():
    message = refusal(make_spec("main_outputs", output_patterns=MANY_NAMES))
    assert re.match(r"^output_files: the 300 declared names take (\d+) of the (\d+) characters of the job's "
                    r"container overrides .*; ECS starts a job with at most 8192 \(JSON included\)", message), message
    assert "a glob ('out_*.csv')" in message and "{{ output_dir }}" in message
    assert "env" not in message


def test_an_environment_too_big_names_its_share_of_the_limit():
    spec = make_spec("main_outputs", env={f"VAR_{i}": "v" * 100 for i in range(70)})
    message = refusal(spec)
    found = re.match(r"^env: the environment takes (\d+) of the (\d+) characters", message)
    assert found, message
    share, total = map(int, found.groups())
    assert share < total and total > job_spec.MAX_OVERRIDES_CHARS
    assert message.endswith("pass large values as input_files instead")
    assert "more than" not in message  # "takes 7377 characters, more than ... at most 8192" read as a contradiction


def test_both_too_big_together_are_both_named():
    spec = make_spec("main_outputs", env={f"VAR_{i}": "v" * 100 for i in range(40)}, output_patterns=MANY_NAMES[:30])
    message = refusal(spec)
    assert message.startswith("env and output_files: the environment takes ")
    assert "the 30 declared output names" in message and "Make either smaller" in message
    assert "input_files instead, or declare fewer names" in message and "a glob" in message


def test_both_too_big_alone_are_both_to_make_smaller():
    spec = make_spec("main_outputs", env={f"VAR_{i}": "v" * 100 for i in range(60)}, output_patterns=MANY_NAMES[:50])
    assert "Make both smaller: pass large values as input_files instead, and declare fewer names" in refusal(spec)


def test_output_names_that_leave_no_room_for_staged_commands_are_named():
    names = MANY_NAMES[:38]
    spec = make_spec("main_outputs", output_patterns=names,
                     commands=tuple(f"echo line {i} of a long script" for i in range(400)))
    job_spec.fit_to_limits(make_spec("main_outputs", output_patterns=names), IDENTITY, QUEUE, 3600)  # fits alone
    assert refusal(spec).startswith("output_files: the 38 declared names take ")


def test_an_array_names_its_output_names_too():
    spec = make_spec("main_outputs", output_patterns=MANY_NAMES)
    with pytest.raises(ValueError, match=r"^output_files: the 300 declared names"):
        array_spec.fit_to_limits(spec, array_spec.ArraySpec(2), IDENTITY, QUEUE, 3600)
