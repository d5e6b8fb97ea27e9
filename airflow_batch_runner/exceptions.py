"""Job outcomes as exceptions, carrying the status and the codes."""

from __future__ import annotations

from typing import Any

from airflow.providers.common.compat.sdk import AirflowException


class BatchJobFailed(AirflowException):
    """The job ended in another status than SUCCEEDED, or was terminated at its deadline."""

    def __init__(
        self,
        message: str,
        *,
        job_id: str,
        status: str,
        exit_code: int,
        container_exit_code: int | None,
        status_reason: str | None,
        timed_out: bool = False,
        attempts: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.status = status
        self.exit_code = exit_code
        self.container_exit_code = container_exit_code
        self.status_reason = status_reason
        self.timed_out = timed_out
        # Each attempt's status reason, main container exit code, container reason and seconds.
        self.attempts = list(attempts or [])


class MalformedResults(AirflowException):
    """The job succeeded, but a result line or the outputs file it wrote is not the documented JSON."""


class ResumeLookupFailed(AirflowException):
    """A retry could not search the queue for its earlier try's job: submitting could run it twice."""
