"""The provider as Airflow discovers it: the entry point and what get_provider_info lists."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

import pytest

from airflow_batch_runner import __version__
from airflow_batch_runner.get_provider_info import get_provider_info


def test_entry_point_resolves_to_get_provider_info() -> None:
    (entry,) = [e for e in entry_points(group="apache_airflow_provider") if e.value.startswith("airflow_batch_runner")]
    assert entry.load() is get_provider_info


def test_provider_info_lists_importable_operator_hook_trigger_and_links() -> None:
    info = get_provider_info()
    assert info["package-name"] == "airflow-batch-runner"
    assert info["versions"] == [__version__]
    kinds = ("operators", "hooks", "triggers")
    modules = [m for kind in kinds for entry in info[kind] for m in entry["python-modules"]]
    for module in modules:
        importlib.import_module(module)
    for link in info["extra-links"]:
        module, _, name = link.rpartition(".")
        assert hasattr(importlib.import_module(module), name)
    assert {e["integration-name"] for kind in ("operators", "hooks", "triggers") for e in info[kind]} == {
        i["integration-name"] for i in info["integrations"]
    }


def test_the_task_decorator_is_registered_as_task_batch_runner() -> None:
    from airflow.sdk import task

    from airflow_batch_runner.decorators.batch_runner import batch_runner_task

    (entry,) = get_provider_info()["task-decorators"]
    module, _, name = entry["class-name"].rpartition(".")
    assert getattr(importlib.import_module(module), name) is batch_runner_task
    assert entry["name"] == "batch_runner"
    assert task.batch_runner is batch_runner_task


def test_the_decorator_refuses_commands_given_beside_the_function() -> None:
    from airflow.sdk import task

    @task.batch_runner(compute_environment_arn="arn", commands=["echo"])
    def shell() -> str:
        return "echo"

    with pytest.raises(TypeError, match="takes its commands from the function's return value"):
        shell()


def test_provider_info_matches_airflows_schema_and_documents_the_logs_settings() -> None:
    import json
    from pathlib import Path

    import airflow
    import jsonschema

    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    assert set(info["config"]["batch_runner"]["options"]) == {
        "logs_calls_per_second", "logs_ingestion_allowance", "array_log_children", "events_queue_url",
        "events_sweep_interval"}
