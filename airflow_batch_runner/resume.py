"""Finding a task instance's job from an earlier try: Airflow's task state store, then the queue."""

from __future__ import annotations

import logging
from typing import Any

from airflow_batch_runner import outcome
from airflow_batch_runner.exceptions import ResumeLookupFailed
from airflow_batch_runner.hooks.batch_runner import BatchRunnerHook
from airflow_batch_runner.layout import TaskIdentity

JOB_ID_STATE_KEY = "batch_runner_job_id"
RUN_KEY_TAG = "airflow:run_key"

log = logging.getLogger(__name__)


def find_existing_job(
    hook: BatchRunnerHook, store: Any, identity: TaskIdentity, queue: str
) -> outcome.JobState | None:
    """The job to reattach to: active, or SUCCEEDED with its outputs still to collect. FAILED is none.

    Only a retry looks (a first try has no earlier job): first for the id the task state store kept
    (Airflow 3.3+), then among the queue's jobs of this task instance's name, checked against the run
    key tag, which also finds a job whose submission the dead worker never recorded.
    """
    if identity.try_number <= 1:
        return None  # only an earlier try can have submitted a job for this task instance
    recorded = recall_job(store)
    if recorded:
        found = hook.describe_jobs([recorded]).get(recorded)
        if found is not None and found.get("tags", {}).get(RUN_KEY_TAG) == identity.run_key:
            state = outcome.job_state(found)
            if state.status != "FAILED":
                log.info("Job %s was recorded by an earlier try", state.job_id)
                return state
    try:
        candidates = hook.find_jobs_by_name(queue, identity.job_name)
    except Exception as exc:
        # Only a queue that does not exist means no job. Any other failure (denied, throttled past the
        # retries, unreachable) fails this try: submitting now could run the task's job twice.
        if hook.describe_job_queue(queue) is None:
            log.info("No earlier job: the queue %s does not exist yet", queue)
            return None
        raise ResumeLookupFailed(
            f"Could not look for this task instance's job of an earlier try on the queue {queue} "
            f"(ListJobs failed: {exc}); not submitting another one. A later try looks again."
        ) from exc
    for summary in candidates:
        if summary["status"] == "FAILED":
            continue
        if hook.job_tags(summary["jobArn"]).get(RUN_KEY_TAG) != identity.run_key:
            continue
        log.info("Job %s found by name on the queue", summary["jobId"])
        return outcome.job_state(hook.describe_jobs([summary["jobId"]])[summary["jobId"]])
    return None


def recall_job(store: Any) -> str | None:
    if store is None:
        return None
    try:
        value = store.get(JOB_ID_STATE_KEY)
    except Exception as exc:  # the store is an optimisation: ListJobs still finds the job
        log.warning("Could not read the task state store: %s", exc)
        return None
    return str(value) if value else None


def remember_job(store: Any, job_id: str) -> None:
    if store is None:
        return
    try:
        store.set(JOB_ID_STATE_KEY, job_id)
    except Exception as exc:
        log.warning("Could not record the job id in the task state store: %s", exc)
