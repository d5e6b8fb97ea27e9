"""The lifecycle diagram of the docs site (``docs/hooks.py``) against the code it is drawn from: a verdict
``outcome.decide`` can give, a call between the functions drawn, or an event the trigger yields changes the
picture; a function the diagram names but the code no longer calls fails the build (a warning, strict)."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from airflow_batch_runner import outcome
from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator
from airflow_batch_runner.outcome import JobState, Verdict

HOOKS = Path(__file__).resolve().parents[2] / "docs" / "hooks.py"


@pytest.fixture(scope="module")
def hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", HOOKS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def decide_with_a_pause(state: JobState, now: float, deadline: float | None, stuck_for: str | None = None) -> Verdict:
    """``outcome.decide`` with one more kind of verdict."""
    if state.terminal:
        return Verdict(done=True, exit_code=0)
    if state.status == "PAUSED":
        return Verdict(done=True, exit_code=7, stuck_for="paused")
    return Verdict(done=False, exit_code=2)


def finish_without_the_worker(self: Any, context: Any) -> dict[str, Any]:
    return {}


def test_the_diagram_is_the_lifecycle_of_the_code(hooks: ModuleType) -> None:
    diagram = hooks.lifecycle_diagram()
    assert diagram.startswith("```mermaid\nflowchart TD\n") and diagram.endswith("\n```")
    for node in ("execute", "find_existing_job", "_reattach", "_submit", "_defer", "_wait_and_finish",
                 "BatchRunnerTrigger", "wait_for_job", "step", "execute_complete", "_finish"):
        assert f"\n  {node}[" in diagram or f"\n  {node}([" in diagram, node
    # Each branch of outcome.decide, with its condition as the code writes it.
    assert '|"state.terminal"| verdict0' in diagram
    assert '|"deadline is not None and now #62;= deadline"| verdict1' in diagram
    assert 'verdict1["Verdict(done=True, timed_out=True)"]' in diagram
    assert 'verdict2["Verdict(done=True, stuck_for=stuck_for)"]' in diagram
    assert 'verdict3 -->|"next poll"| step' in diagram
    # The verdicts JobWait.step terminates the job on, and no other.
    assert "verdict1 --> terminate" in diagram and "verdict2 --> terminate" in diagram
    assert "verdict0 --> terminate" not in diagram
    assert 'if2 -->|"yes"| _defer' in diagram and 'if2 -->|"no"| _wait_and_finish' in diagram
    assert 'BatchRunnerTrigger -->|"event status #quot;error#quot;"| execute_complete' in diagram


def test_a_new_kind_of_verdict_appears(hooks: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outcome, "decide", decide_with_a_pause)
    diagram = hooks.lifecycle_diagram()
    assert '|"state.status == \'PAUSED\'"| verdict1' in diagram
    assert 'verdict1["Verdict(done=True, stuck_for=\'paused\')"]' in diagram
    assert "verdict1 --> terminate" in diagram  # JobWait.step terminates on stuck_for
    assert "timed_out=True" not in diagram


def test_a_call_the_code_no_longer_makes_is_not_drawn(
    hooks: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(BatchRunnerOperator, "_wait_and_finish", finish_without_the_worker)
    with caplog.at_level(logging.WARNING, logger="mkdocs.hooks.batch_runner"):
        diagram = hooks.lifecycle_diagram()
    assert "_wait_and_finish --> wait_for_job" not in diagram and "wait_for_job --> step" not in diagram
    assert '"in the worker"' not in diagram
    # The diagram's own label for the worker's wait names a function nothing calls now: the strict build fails.
    assert "no longer draws ['wait_for_job']" in caplog.text
