"""The failure message shows the failing container's own reason, never a dependent's DependencyNotSatisfied, and
reads as sentences however AWS ends its reasons."""

from __future__ import annotations

from airflow_batch_runner.outcome import decide, failure_message, job_state, sentence
from tests.unit.test_outcome import attempt, describe_entry, effective_container, sidecar_failure

NOT_RUN = "DependencyNotSatisfied: a container it depends on failed"


def message_of(results: list[dict[str, object]], status_reason: str = "Essential container in task exited") -> str:
    effective = [effective_container(name) for name in ("inputs", "main", "outputs")]
    state = job_state(describe_entry("FAILED", effective=effective, attempts=[attempt(results)],
                                     statusReason=status_reason))
    return failure_message(state, decide(state, now=0.0, deadline=None), [])


def test_a_main_container_that_exited_7_shows_no_reason_of_the_outputs_sidecar():
    failed = sidecar_failure("main")
    assert failed.container_reason is None
    message = failure_message(failed, decide(failed, now=0.0, deadline=None), ["boom"])
    assert "Main container exit code: 1." in message
    assert "DependencyNotSatisfied" not in message and "Container reason" not in message


def test_a_main_container_with_a_reason_of_its_own_shows_it():
    message = message_of([
        {"name": "inputs", "exitCode": 0},
        {"name": "main", "exitCode": 137, "reason": "OutOfMemoryError: Container killed due to memory usage"},
        {"name": "outputs", "reason": NOT_RUN},
    ])
    assert "Container reason: OutOfMemoryError: Container killed due to memory usage." in message
    assert "DependencyNotSatisfied" not in message


def test_reasons_that_end_with_their_own_full_stop_get_no_second_one():
    message = message_of([{"name": "inputs", "exitCode": 0}, {"name": "main"}, {"name": "outputs", "reason": NOT_RUN}],
                         status_reason="Host EC2 (instance i-0123456789abcdef0) terminated.")
    assert "Status reason: Host EC2 (instance i-0123456789abcdef0) terminated." in message
    assert ".." not in message
    message = message_of([{"name": "inputs", "reason": "CannotPullContainerError: pull access denied."},
                          {"name": "main", "reason": NOT_RUN}, {"name": "outputs", "reason": NOT_RUN}])
    assert "Failed container: inputs (it did not run): CannotPullContainerError: pull access denied." in message
    assert ".." not in message


def test_a_sentence_ends_with_one_full_stop():
    assert sentence("Status reason: done") == "Status reason: done."
    assert sentence("Status reason: terminated.") == "Status reason: terminated."
    assert sentence("Why?") == "Why?"
