"""A container's lines on their way to the task log: one way for the worker and the triggerer, for a job's
main container and for an array's children."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from airflow_batch_runner.job_spec import LOG_GROUP
from airflow_batch_runner.masking import redact
from airflow_batch_runner.outcome import LAST_LOG_LINES
from airflow_batch_runner.results import Collected

MAIN = "main"


class TaskLogger(Protocol):
    """What is used of a task's or a trigger's ``log`` (a ``logging.Logger``, or Airflow's structlog one)."""

    def info(self, event: Any, *args: Any, **kw: Any) -> Any: ...

    def warning(self, event: Any, *args: Any, **kw: Any) -> Any: ...


def child_prefix(index: int) -> str:
    return f"child {index}"


def show_lines(
    log: TaskLogger,
    prefix: str,
    lines: Iterable[str],
    last_lines: list[str] | None = None,
    results: Collected | None = None,
) -> list[str]:
    """Log each line, redacted, as ``[<prefix>] <line>``; add the result lines (``::{...}::``) to
    ``results``; return ``last_lines`` followed by these lines, the last ``LAST_LOG_LINES`` of them."""
    redacted = [redact(line) for line in lines]
    for line in redacted:
        log.info("[%s] %s", prefix, line)
    if results is not None:
        results.add_lines(redacted)
    return ((last_lines or []) + redacted)[-LAST_LOG_LINES:]


def warn_unread_children(log: TaskLogger, job_id: str, unread: Sequence[tuple[int, str]]) -> None:
    """One line for the followed children of an array whose last lines could not be read: (index, why)."""
    if unread:
        log.warning(
            "Could not read the last lines of children %s of array job %s (%s); all of them are in CloudWatch Logs, "
            "log group %s", ", ".join(str(index) for index, _ in unread), job_id, unread[0][1], LOG_GROUP,
        )
