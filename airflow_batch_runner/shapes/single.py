"""One AWS Batch job: the main container between the inputs and outputs sidecars."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow_batch_runner import job_spec, layout, outcome, staging, usage
from airflow_batch_runner.config import ingestion_allowance
from airflow_batch_runner.exceptions import BatchJobFailed, MalformedResults
from airflow_batch_runner.hooks.batch_runner import BatchRunnerHook
from airflow_batch_runner.job_spec import JobSpec
from airflow_batch_runner.layout import OUTPUT_DIR, WORKING_DIR, TaskIdentity
from airflow_batch_runner.masking import redact, redact_value
from airflow_batch_runner.outcome import JobState, Verdict
from airflow_batch_runner.results import MAX_TOTAL_BYTES
from airflow_batch_runner.shapes import Ending
from airflow_batch_runner.task_log import TaskLogger

SIDECAR_LINES_WAIT = 10.0  # s at most for a failed sidecar's last lines to become readable


class SingleJob:
    def check(self) -> None:
        pass

    @property
    def child_input_names(self) -> Sequence[Mapping[str, str]]:
        return ()

    @property
    def followed_children(self) -> int | None:
        return None

    def fit_to_limits(self, spec: JobSpec, identity: TaskIdentity, queue: str, attempt_seconds: int) -> JobSpec:
        return job_spec.fit_to_limits(spec, identity, queue, attempt_seconds)

    def container_names(self, spec: JobSpec) -> list[str]:
        return job_spec.container_names(spec)

    def submit_request(self, spec: JobSpec, identity: TaskIdentity, queue: str, attempt_seconds: int
                       ) -> dict[str, Any]:
        return job_spec.build_submit_request(spec, identity, queue, attempt_seconds)

    def job_definition(self, spec: JobSpec) -> dict[str, Any]:
        return job_spec.build_job_definition(spec)

    def stage(self, hook: BatchRunnerHook, spec: JobSpec, inputs: Mapping[str, str],
              project: Mapping[str, Path], log: TaskLogger) -> None:
        if spec.bucket_path and (inputs or project):
            staging.stage_inputs(hook, spec.bucket_path, inputs, project)

    def described(self) -> str:
        return ""

    def delete_inputs(self, hook: BatchRunnerHook, bucket_path: str) -> int:
        return staging.delete_inputs(hook, bucket_path)

    def finish(self, end: Ending, state: JobState, verdict: Verdict, description: Mapping[str, Any],
               bucket_path: str | None) -> dict[str, Any]:
        spent = usage.job_usage(description)
        results = end.main.results
        try:
            if not verdict.succeeded:
                message = outcome.failure_message(state, verdict, _failure_lines(end, state), end.limit)
                raise BatchJobFailed(
                    redact("\n".join(part for part in (message, usage.attempts_report(spent)) if part)),
                    job_id=state.job_id,
                    status=state.status,
                    exit_code=verdict.exit_code,
                    container_exit_code=state.container_exit_code,
                    status_reason=redact_value(state.status_reason),
                    timed_out=verdict.timed_out,
                    attempts=redact_value(usage.xcom_fields(spent)["attempt_details"]),
                )
            outputs, wrote_outputs_file = staging.collect_outputs(end.hook, bucket_path)
            written = staging.read_outputs_file(end.hook, bucket_path, MAX_TOTAL_BYTES) if wrote_outputs_file else None
            if written is not None:
                results.add_file(written, "$OUTPUTS_FILE (outputs.json)")
            if results.error:
                raise MalformedResults(
                    f"AWS Batch job {state.job_name} ({state.job_id}) SUCCEEDED, but {results.error}"
                )
        finally:
            end.cleanup(bucket_path)
        end.log.info("Job %s SUCCEEDED with %d output file(s)", state.job_id, len(outputs))
        result = outcome.xcom_result(state, verdict.exit_code, bucket_path, outputs, WORKING_DIR, OUTPUT_DIR)
        # Everything from the container (file names, reasons, values) masked as its log lines are.
        return dict(redact_value(
            {**result, **usage.xcom_fields(spent), "outputs": results.outputs, "metrics": results.metrics}
        ))


def _failure_lines(end: Ending, state: JobState) -> list[str]:
    """The main container's last lines, or, when a sidecar failed, that sidecar's own."""
    failed = state.failed_container
    if failed is None or failed.name == layout.MAIN:
        return end.main.last
    if not failed.log_stream:
        return []
    if state.stopped_at:  # CloudWatch Logs makes the sidecar's last lines readable a little after its end
        time.sleep(max(0.0, min(state.stopped_at / 1000 + ingestion_allowance() - time.time(), SIDECAR_LINES_WAIT)))
    return [redact(line) for line in end.hook.last_log_lines(failed.log_stream, outcome.LAST_LOG_LINES)]
