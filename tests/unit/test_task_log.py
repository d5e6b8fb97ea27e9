"""The main container's lines on their way to the task log: shown, kept, and read for results per attempt."""

from __future__ import annotations

import logging

import pytest

from airflow_batch_runner import task_log
from airflow_batch_runner.task_log import HeldLog, MainLines, replay


def test_a_new_attempts_stream_starts_the_results_and_the_last_lines_over(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test_task_log")
    main = MainLines()
    with caplog.at_level(logging.INFO):
        main.show(log, ['::{"outputs": {"first_only": 1, "n": 1}}::', "a"], "prefix/main/attempt-1")
        main.show(log, ['::{"metrics": [{"name": "rows", "value": 1}]}::'], "prefix/main/attempt-1")
        assert main.results.outputs == {"first_only": 1, "n": 1} and len(main.results.metrics) == 1
        main.show(log, ['::{"outputs": {"n": 2}}::', '::{"metrics": [{"name": "rows", "value": 1}]}::'],
                  "prefix/main/attempt-2")
    assert main.results.outputs == {"n": 2}
    assert [m["name"] for m in main.results.metrics] == ["rows"]
    assert main.last == ['::{"outputs": {"n": 2}}::', '::{"metrics": [{"name": "rows", "value": 1}]}::']
    assert caplog.text.count("A new attempt of the job logs to prefix/main/attempt-2") == 1


def test_lines_without_a_stream_and_of_the_same_stream_accumulate(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test_task_log")
    main = MainLines()
    main.show(log, ['::{"outputs": {"a": 1}}::'])
    main.show(log, ['::{"outputs": {"b": 2}}::'], "s1")
    main.show(log, ['::{"outputs": {"c": 3}}::'], "s1")
    assert main.results.outputs == {"a": 1, "b": 2, "c": 3}


def test_a_line_that_only_looks_like_a_result_is_told_once(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test_task_log")
    main = MainLines()
    with caplog.at_level(logging.INFO):
        main.show(log, ["::{std::vector<int>}::", "::{a}::"], "s")
        main.show(log, ["::{b}::"], "s")
    assert caplog.text.count("is not JSON; it is shown as an ordinary line") == 1
    assert "[main] ::{std::vector<int>}::" in caplog.text


def test_held_lines_are_logged_by_the_worker_once_each_and_in_order(caplog: pytest.LogCaptureFixture) -> None:
    trigger_log, worker_log = logging.getLogger("trigger"), logging.getLogger("worker")
    held = HeldLog(trigger_log)
    main = MainLines()
    with caplog.at_level(logging.INFO):
        main.show(held, ["a", '::{"outputs": {"n": 1}}::', "100% done"])
        held.warning("Could not read the last lines of job %s (%s)", "j-1", "throttled")
        assert caplog.records == []  # the trigger logs none of it
        replay(worker_log, held.entries)
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ("worker", "INFO", "[main] a"), ("worker", "INFO", '[main] ::{"outputs": {"n": 1}}::'),
        ("worker", "INFO", "[main] 100% done"),
        ("worker", "WARNING", "Could not read the last lines of job j-1 (throttled)"),
    ]
    assert main.results.outputs == {"n": 1} and main.last[-1] == "100% done"


def test_held_lines_past_the_bound_are_logged_by_the_trigger_first(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(task_log, "HELD_CHARS", 70)  # three entries of 21 characters
    held = HeldLog(logging.getLogger("trigger"))
    with caplog.at_level(logging.INFO):
        MainLines().show(held, [f"line-{i}" for i in range(8)])
        replay(logging.getLogger("worker"), held.entries)
    shown = [(r.name, r.getMessage()) for r in caplog.records]
    assert [message for _, message in shown] == [f"[main] line-{i}" for i in range(8)]
    assert {name for name, _ in shown[:5]} == {"trigger"} and {name for name, _ in shown[5:]} == {"worker"}
