"""The operator's defaults are the ones the argument reference (docs/reference/arguments.md) states: the
table is read from the page itself, so neither can change without the other."""

from __future__ import annotations

import inspect
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "arguments.md"
TABLE_HEADING = "# Kestra property → operator argument"
REQUIRED: dict[str, Any] = {"compute_environment_arn": "{{ var.value.compute_environment_arn }}", "commands": ["true"]}
# Where the operator keeps an argument under another name (BaseOperator owns ``resources``).
ATTRIBUTE = {"resources": "batch_resources"}
# Every argument the table gives a default to; a row added, dropped or renamed shows here.
ARGUMENTS_WITH_A_DEFAULT = {
    "compute_environment_arn", "region_name", "resources", "delete", "resume", "access_key_id", "secret_key_id",
    "session_token", "bucket", "completion_check_interval", "endpoint_override", "execution_role_arn",
    "job_queue_arn", "sts_role_session_duration", "task_role_arn", "wait_until_completion", "container_image",
    "sidecar_image", "sidecar_resources", "spot_retries", "retry_strategy", "tags", "propagate_tags",
    "share_identifier", "scheduling_priority", "array_size", "array_input_files", "allowed_failures",
    "max_runnable_time", "ephemeral_storage", "cpu_architecture", "shared_memory", "init_process", "tmpfs", "ulimits",
    "gpus", "repository_credentials", "consumable_resources", "container_properties", "volumes",
}
UNITS = {"s": 1, "min": 60, "h": 3600}


def reference_defaults() -> dict[str, str]:
    """Argument -> its default as the table writes it: the default column, or the parenthesis after
    the argument's name (``sts_role_session_duration`` (15 min)). Arguments with neither are left out."""
    lines = REFERENCE.read_text(encoding="utf-8").split(TABLE_HEADING, 1)[1].strip().splitlines()
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    header, _separator, *body = rows
    assert header[1:3] == ["operator argument", "default"], header
    found: dict[str, str] = {}
    for cells in body:
        for name, own_default in re.findall(r"`(\w+)`(?: \(([^)]*)\))?", cells[1]):
            default = own_default or cells[2]
            if default:
                found[name] = default
    return found


def meaning(text: str) -> Any:
    """The Python value of a default as the reference writes it."""
    if text in ("none", "the connection's"):
        return None  # region_name None: the hook takes the connection's region
    duration = re.fullmatch(r"(\d+) (s|min|h)", text)
    if duration:
        return float(duration[1]) * UNITS[duration[2]]
    code = re.fullmatch(r"`(.*)`", text)
    if code:
        literal = code[1]
        if literal in ("True", "False"):
            return literal == "True"
        if re.fullmatch(r"-?\d+", literal):
            return int(literal)
        return json.loads(literal) if literal.startswith("{") else literal
    raise AssertionError(f"the reference's default {text!r} has no meaning here yet")


def operator(**kwargs: Any) -> BatchRunnerOperator:
    return BatchRunnerOperator(task_id="shell", **{**REQUIRED, **kwargs})


def test_the_table_gives_a_default_to_the_expected_arguments() -> None:
    assert set(reference_defaults()) == ARGUMENTS_WITH_A_DEFAULT


@pytest.mark.parametrize(("argument", "text"), sorted(reference_defaults().items()))
def test_the_operator_has_the_default_the_reference_states(argument: str, text: str) -> None:
    if text == "required":
        assert inspect.signature(BatchRunnerOperator.__init__).parameters[argument].default is inspect.Parameter.empty
        with pytest.raises(TypeError, match=argument):
            BatchRunnerOperator(task_id="shell", **{k: v for k, v in REQUIRED.items() if k != argument})
        return
    assert getattr(operator(), ATTRIBUTE.get(argument, argument)) == meaning(text)


def test_the_reference_defaults_mean_what_the_operator_holds() -> None:
    # The reading of the table itself, so that a parsing slip cannot make the test above vacuous.
    defaults = {name: meaning(text) for name, text in reference_defaults().items() if text != "required"}
    assert defaults == {
        "region_name": None, "resources": {"request": {"cpu": "1", "memory": "2048"}}, "delete": True,
        "resume": True, "access_key_id": None, "secret_key_id": None, "session_token": None, "bucket": None,
        "completion_check_interval": 5.0, "endpoint_override": None, "execution_role_arn": None,
        "job_queue_arn": None, "sts_role_session_duration": 900.0, "task_role_arn": None,
        "wait_until_completion": 3600.0, "container_image": "ubuntu:24.04",
        "sidecar_image": "public.ecr.aws/aws-cli/aws-cli:2.22.0", "sidecar_resources": None,
        "spot_retries": 0, "retry_strategy": None, "tags": {}, "propagate_tags": True, "share_identifier": None,
        "scheduling_priority": None, "array_size": None, "array_input_files": None, "allowed_failures": 0,
        "max_runnable_time": None, "ephemeral_storage": None, "cpu_architecture": None, "shared_memory": None,
        "init_process": None, "tmpfs": None, "ulimits": None, "gpus": None,
        "repository_credentials": None, "consumable_resources": None, "container_properties": None,
        "volumes": None,
    }


@pytest.mark.parametrize("argument", ["completion_check_interval", "wait_until_completion",
                                      "sts_role_session_duration"])
@pytest.mark.parametrize("given", [timedelta(minutes=20), 1200], ids=["timedelta", "seconds"])
def test_durations_take_seconds_or_a_timedelta(argument: str, given: timedelta | int) -> None:
    assert getattr(operator(**{argument: given}), argument) == 1200


def test_the_files_and_env_default_to_empty() -> None:
    op = operator()
    assert (op.input_files, op.output_files, op.env, op.project_files) == ({}, [], {}, [])


@pytest.mark.parametrize(("configured", "expected"), [("True", True), ("False", False)])
def test_deferrable_defaults_to_operators_default_deferrable_when_the_task_is_built(
    monkeypatch: pytest.MonkeyPatch, configured: str, expected: bool
) -> None:
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", configured)
    assert operator().deferrable is expected
    assert operator(deferrable=not expected).deferrable is (not expected)


def test_deferrable_is_off_when_nothing_configures_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", raising=False)
    assert operator().deferrable is False


def test_the_templated_fields_are_the_ones_the_reference_lists() -> None:
    # The reference: compute_environment_arn, commands, container_image, input_files, output_files, env, bucket,
    # job_queue_arn, sidecar_image, tags, share_identifier, array_size, array_input_files, resources (kept as
    # batch_resources), sidecar_resources, retry_strategy, spot_retries, scheduling_priority, allowed_failures, the
    # durations, the role ARNs, the credential, endpoint
    # and STS fields, the container settings (ephemeral_storage, cpu_architecture, shared_memory, init_process,
    # tmpfs, ulimits, gpus, repository_credentials, consumable_resources, container_properties, volumes), plus
    # aws_conn_id, region_name, verify.
    assert set(BatchRunnerOperator.template_fields) == {
        "compute_environment_arn", "commands", "container_image", "input_files", "output_files", "env", "bucket",
        "job_queue_arn", "execution_role_arn", "task_role_arn", "access_key_id", "secret_key_id", "session_token",
        "endpoint_override", "sts_role_arn", "sts_role_external_id", "sts_role_session_name", "sts_endpoint_override",
        "aws_conn_id", "region_name", "verify", "sidecar_image", "tags", "share_identifier", "array_size",
        "array_input_files", "batch_resources", "sidecar_resources", "retry_strategy", "wait_until_completion",
        "max_runnable_time", "completion_check_interval", "sts_role_session_duration", "ephemeral_storage",
        "cpu_architecture", "shared_memory", "init_process", "tmpfs", "ulimits", "spot_retries",
        "scheduling_priority", "allowed_failures", "gpus", "repository_credentials", "consumable_resources",
        "container_properties", "volumes",
    }
