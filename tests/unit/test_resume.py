"""resume: an earlier try's job found again, by the id the task state store kept or by name on the queue."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from airflow_batch_runner import resume
from airflow_batch_runner.hooks.batch_runner import BatchRunnerHook
from airflow_batch_runner.layout import TaskIdentity
from tests.emulator import helpers

FIRST = TaskIdentity(dag_id="d", task_id="t", run_id="r", try_number=1)
RETRY = TaskIdentity(dag_id="d", task_id="t", run_id="r", try_number=2)
NEIGHBOUR = TaskIdentity(dag_id="d", task_id="t", run_id="r", map_index=4, try_number=2)  # another instance


class Store:
    """The task state store's two calls (Airflow 3.3+), on a dict."""

    def __init__(self, fail: bool = False) -> None:
        self.values: dict[str, Any] = {}
        self.fail = fail

    def get(self, key: str) -> Any:
        if self.fail:
            raise RuntimeError("store down")
        return self.values.get(key)

    def set(self, key: str, value: Any) -> None:
        if self.fail:
            raise RuntimeError("store down")
        self.values[key] = value


@pytest.fixture
def queue(batch: Any) -> str:
    return helpers.create_queue_for(batch)


@pytest.fixture
def batch(emulator_url: str) -> Any:
    return helpers.client(emulator_url, "batch")


def _job(batch: Any, queue: str, identity: TaskIdentity, command: str = "sleep 600", run_key: str | None = None,
         name: str | None = None) -> str:
    definition = helpers.register_container(batch, ["sh", "-c", command])["jobDefinitionArn"]
    return helpers.submit(batch, queue, definition, name=name or identity.job_name,
                          tags={resume.RUN_KEY_TAG: run_key or identity.run_key})


def test_a_first_try_looks_nowhere() -> None:
    assert resume.find_existing_job(object(), Store(), FIRST, "any-queue") is None  # type: ignore[arg-type]


def test_the_recorded_job_of_this_task_instance_is_taken(hook: BatchRunnerHook, batch: Any, queue: str) -> None:
    job_id = _job(batch, queue, RETRY)
    store = Store()
    resume.remember_job(store, job_id)
    found = resume.find_existing_job(hook, store, RETRY, queue)
    assert found is not None and found.job_id == job_id and found.status not in ("FAILED", "SUCCEEDED")
    batch.terminate_job(jobId=job_id, reason="done")


def test_a_recorded_job_of_another_run_key_is_not_taken(hook: BatchRunnerHook, batch: Any, queue: str) -> None:
    other = _job(batch, queue, NEIGHBOUR)
    store = Store()
    resume.remember_job(store, other)
    assert resume.find_existing_job(hook, store, RETRY, queue) is None
    batch.terminate_job(jobId=other, reason="done")


def test_without_a_record_the_job_is_found_by_name_and_checked_by_its_run_key_tag(
    hook: BatchRunnerHook, batch: Any, queue: str
) -> None:
    # Same name, another run key (a name collision): skipped; then the job of this task instance.
    impostor = _job(batch, queue, RETRY, run_key="0" * 16)
    assert resume.find_existing_job(hook, Store(), RETRY, queue) is None
    job_id = _job(batch, queue, RETRY)
    found = resume.find_existing_job(hook, None, RETRY, queue)
    assert found is not None and found.job_id == job_id
    for jid in (impostor, job_id):
        batch.terminate_job(jobId=jid, reason="done")


def test_a_failed_job_is_none_and_a_succeeded_one_is_taken(hook: BatchRunnerHook, batch: Any, queue: str) -> None:
    failed = _job(batch, queue, RETRY, command="exit 3")
    assert helpers.wait_for_status(batch, failed)["status"] == "FAILED"
    store = Store()
    resume.remember_job(store, failed)
    assert resume.find_existing_job(hook, store, RETRY, queue) is None  # neither recorded nor listed
    succeeded = _job(batch, queue, RETRY, command="true")
    assert helpers.wait_for_status(batch, succeeded)["status"] == "SUCCEEDED"
    found = resume.find_existing_job(hook, store, RETRY, queue)
    assert found is not None and (found.job_id, found.status) == (succeeded, "SUCCEEDED")


def test_a_queue_that_does_not_exist_holds_no_job(hook: BatchRunnerHook) -> None:
    assert resume.find_existing_job(hook, None, RETRY, "no-such-queue") is None


def test_a_failing_store_is_a_warning_and_the_queue_still_answers(
    hook: BatchRunnerHook, batch: Any, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = _job(batch, queue, RETRY)
    store = Store(fail=True)
    with caplog.at_level(logging.WARNING, logger=resume.__name__):
        resume.remember_job(store, job_id)
        found = resume.find_existing_job(hook, store, RETRY, queue)
    assert found is not None and found.job_id == job_id
    assert "Could not record the job id" in caplog.text and "Could not read the task state store" in caplog.text
    assert resume.recall_job(None) is None
    resume.remember_job(None, job_id)  # no store (Airflow before 3.3): nothing to do
    batch.terminate_job(jobId=job_id, reason="done")
