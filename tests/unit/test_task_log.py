"""The main container's lines on their way to the task log: shown, kept, and read for results per attempt."""

from __future__ import annotations

import logging

import pytest

from airflow_batch_runner.task_log import MainLines


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
