"""The [batch_runner] options: each read from Airflow's configuration, checked, its default when unset."""

from __future__ import annotations

import pytest

from airflow_batch_runner import config
from airflow_batch_runner.child_sampling import DEFAULT_LIMIT


def test_array_log_children_comes_from_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__BATCH_RUNNER__ARRAY_LOG_CHILDREN", raising=False)
    assert config.array_log_children() == DEFAULT_LIMIT
    monkeypatch.setenv("AIRFLOW__BATCH_RUNNER__ARRAY_LOG_CHILDREN", " 0 ")
    assert config.array_log_children() == 0
    monkeypatch.setenv("AIRFLOW__BATCH_RUNNER__ARRAY_LOG_CHILDREN", "many")
    with pytest.raises(ValueError, match=r"\[batch_runner\] array_log_children must be a whole number"):
        config.array_log_children()


@pytest.mark.parametrize(("option", "read", "default", "bad", "message"), [
    ("LOGS_CALLS_PER_SECOND", config.calls_per_second, config.DEFAULT_CALLS_PER_SECOND, "0", "must be positive"),
    ("LOGS_INGESTION_ALLOWANCE", config.ingestion_allowance, config.DEFAULT_INGESTION_ALLOWANCE, "-1",
     "must be 0 or more seconds"),
])
def test_the_logs_options_default_and_refuse_what_cannot_work(
    monkeypatch: pytest.MonkeyPatch, option: str, read: object, default: float, bad: str, message: str
) -> None:
    assert callable(read)
    monkeypatch.delenv(f"AIRFLOW__BATCH_RUNNER__{option}", raising=False)
    assert read() == default
    monkeypatch.setenv(f"AIRFLOW__BATCH_RUNNER__{option}", "3.5")
    assert read() == 3.5
    monkeypatch.setenv(f"AIRFLOW__BATCH_RUNNER__{option}", bad)
    with pytest.raises(ValueError, match=message):
        read()


def test_every_option_is_declared_with_its_default_as_the_reader_has_it() -> None:
    assert config.OPTIONS["logs_calls_per_second"]["default"] == f"{config.DEFAULT_CALLS_PER_SECOND:g}"
    assert config.OPTIONS["logs_ingestion_allowance"]["default"] == f"{config.DEFAULT_INGESTION_ALLOWANCE:g}"
    assert config.OPTIONS["array_log_children"]["default"] == str(DEFAULT_LIMIT)
