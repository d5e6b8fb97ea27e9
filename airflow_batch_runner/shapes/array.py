"""An AWS Batch array job: one parent, its children each an ordinary job of this runner with its own index,
inputs and outputs; judged once at its end against ``allowed_failures``, its details in a manifest."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow_batch_runner import array_outcome, array_run, array_spec, staging
from airflow_batch_runner.array_spec import ArraySpec
from airflow_batch_runner.config import array_log_children, ingestion_allowance
from airflow_batch_runner.exceptions import BatchJobFailed
from airflow_batch_runner.hooks.batch_runner import BatchRunnerHook
from airflow_batch_runner.job_spec import JobSpec
from airflow_batch_runner.layout import TaskIdentity
from airflow_batch_runner.masking import redact, redact_value
from airflow_batch_runner.outcome import JobState, Verdict
from airflow_batch_runner.shapes import Ending, cut_short
from airflow_batch_runner.task_log import TaskLogger


class ArrayJob:
    def __init__(self, array: ArraySpec) -> None:
        self.array = array

    def check(self) -> None:
        array_log_children()  # a bad [batch_runner] array_log_children fails here, not later

    @property
    def child_input_names(self) -> Sequence[Mapping[str, str]]:
        return self.array.child_inputs

    @property
    def followed_children(self) -> int | None:
        return self.array.size

    def fit_to_limits(self, spec: JobSpec, identity: TaskIdentity, queue: str, attempt_seconds: int) -> JobSpec:
        # Checked as submitted: the prep container carries the environment too.
        return array_spec.fit_to_limits(spec, self.array, identity, queue, attempt_seconds)

    def container_names(self, spec: JobSpec) -> list[str]:
        return array_spec.container_names(spec, self.array)

    def submit_request(self, spec: JobSpec, identity: TaskIdentity, queue: str, attempt_seconds: int
                       ) -> dict[str, Any]:
        return array_spec.build_submit_request(spec, self.array, identity, queue, attempt_seconds)

    def job_definition(self, spec: JobSpec) -> dict[str, Any]:
        return array_spec.build_job_definition(spec, self.array)

    def stage(self, hook: BatchRunnerHook, spec: JobSpec, inputs: Mapping[str, str],
              project: Mapping[str, Path], log: TaskLogger) -> None:
        if not spec.bucket_path:
            return
        if inputs or project:
            staging.stage_inputs(hook, spec.bucket_path, inputs, project)
        if self.array.has_child_inputs:
            count = array_run.stage_child_inputs(hook, spec.bucket_path, self.array)
            log.info("Staged %d input file(s) of %d children", count, self.array.size)

    def described(self) -> str:
        return f", an array of {self.array.size} children"

    def delete_inputs(self, hook: BatchRunnerHook, bucket_path: str) -> int:
        return array_run.delete_inputs(hook, bucket_path)

    def finish(self, end: Ending, state: JobState, verdict: Verdict, description: Mapping[str, Any],
               bucket_path: str | None) -> dict[str, Any]:
        """The children once, at the end: the manifest in S3, the success rule, a small XCom."""
        why = cut_short(state, verdict, end.limit, end.killed)
        try:
            # CloudWatch Logs makes a child's last lines readable a little after its end.
            readable = (state.stopped_at / 1000 if state.stopped_at else time.time()) + ingestion_allowance()
            children, result, last_lines = array_run.read_children(
                end.hook, state.job_id, bucket_path, self.array, why, readable
            )
            manifest_uri = array_run.write_manifest(end.hook, state.job_id, bucket_path, result, children)
        finally:
            end.cleanup(bucket_path)
        report = array_outcome.failure_report(result, last_lines)
        if (problems := array_outcome.results_problems(children)) is not None:
            end.log.warning("%s", redact(problems))
        if not result.ok:
            cause = f"{why}; it was terminated. " if why else ""
            raise BatchJobFailed(
                redact(f"AWS Batch array job {state.job_name} ({state.job_id}) {cause}ended {state.status}. "
                       f"{report}\nManifest: {manifest_uri}"),
                job_id=state.job_id, status=state.status, exit_code=verdict.exit_code or 1,
                container_exit_code=None, status_reason=redact_value(state.status_reason), timed_out=verdict.timed_out,
            )
        if result.failed:
            end.log.warning("Array job %s succeeded within allowed_failures. %s", state.job_id, report)
        end.log.info("Array job %s: %d of %d children SUCCEEDED; manifest %s", state.job_id, result.succeeded,
                     result.size, manifest_uri)
        return dict(redact_value(array_outcome.xcom_result(
            state.job_id, state.job_name, state.status, bucket_path, manifest_uri, result, children
        )))
