"""The provider as Airflow discovers it: the entry point and what get_provider_info lists."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

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
