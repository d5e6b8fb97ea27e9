"""A container's lines on their way to the task log: one way for the worker and the triggerer, for a job's
main container and for an array's children."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_batch_runner.layout import LOG_GROUP, MAIN
from airflow_batch_runner.masking import redact, redact_value
from airflow_batch_runner.outcome import LAST_LOG_LINES
from airflow_batch_runner.results import Collected, valid_text


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
    redacted = [redact(valid_text(line)) for line in lines]
    for line in redacted:
        log.info("[%s] %s", prefix, line)
    if results is not None:
        results.add_lines(redacted)
    return ((last_lines or []) + redacted)[-LAST_LOG_LINES:]


def new_results() -> Collected:
    """Results read from the container, every value redacted as its lines are."""
    return Collected(clean=redact_value)


@dataclass
class MainLines:
    """The main container's lines, in the worker or the triggerer: shown redacted, the last ones kept for a
    failure message, the result lines collected. Each attempt of the job logs to a stream of its own; lines of
    a new stream start the last lines and the results over, so that the result is the attempt's that ended the
    job (a Spot reclaim's attempt printed its results too, but did not finish)."""

    results: Collected = field(default_factory=new_results)
    last: list[str] = field(default_factory=list)
    stream: str | None = None
    told_not_results: bool = False

    def show(self, log: TaskLogger, lines: Iterable[str], stream: str | None = None) -> None:
        if stream is not None and stream != self.stream:
            if self.stream is not None:
                log.info("[%s] A new attempt of the job logs to %s: its result lines replace the earlier attempt's",
                         MAIN, stream)
                self.results, self.last = new_results(), []
            self.stream = stream
        self.last = show_lines(log, MAIN, lines, self.last, self.results)
        if self.results.not_results and not self.told_not_results:
            self.told_not_results = True
            log.warning("A line shaped like a result line (::{...}::) is not JSON; it is shown as an ordinary "
                        "line, not read as a result: %s", self.results.first_not_result)


HELD_CHARS = 100_000  # at most this much text of a trigger's last lines travels in its event


@dataclass
class HeldLog:
    """What a trigger would log once its job's end is known, handed to the worker in the event instead.

    Airflow's triggerer may close a trigger's log as soon as the trigger yields its event, before the lines it
    logged just before are written (they then land in the triggerer's own output). So from the job's end on, a
    trigger logs nothing itself: these entries (``[level, format, *args]``, each line once) travel in the event,
    and the worker logs them when the task resumes (``replay``). Past ``HELD_CHARS`` the oldest are logged by the
    trigger at once, in order, before the rest."""

    log: TaskLogger  # the trigger's own, for what does not fit
    entries: list[list[str]] = field(default_factory=list)
    chars: int = 0

    def info(self, event: Any, *args: Any, **kw: Any) -> None:
        self._hold("info", str(event), args)

    def warning(self, event: Any, *args: Any, **kw: Any) -> None:
        self._hold("warning", str(event), args)

    def _hold(self, level: str, fmt: str, args: tuple[Any, ...]) -> None:
        entry = [level, fmt, *(str(arg) for arg in args)]
        self.entries.append(entry)
        self.chars += sum(len(part) for part in entry)
        while self.chars > HELD_CHARS and len(self.entries) > 1:
            oldest = self.entries.pop(0)
            self.chars -= sum(len(part) for part in oldest)
            _log_entry(self.log, oldest)


def _log_entry(log: TaskLogger, entry: Sequence[str]) -> None:
    level, fmt, *args = entry
    (log.warning if level == "warning" else log.info)(fmt, *args)


def replay(log: TaskLogger, entries: Iterable[Sequence[str]] | None) -> None:
    """Log what a trigger held back (``HeldLog``), in the worker, in order."""
    for entry in entries or ():
        if len(entry) >= 2:
            _log_entry(log, [str(part) for part in entry])


def warn_unread_children(log: TaskLogger, job_id: str, unread: Sequence[tuple[int, str]]) -> None:
    """One line for the followed children of an array whose last lines could not be read: (index, why)."""
    if unread:
        log.warning(
            "Could not read the last lines of children %s of array job %s (%s); all of them are in CloudWatch Logs, "
            "log group %s", ", ".join(str(index) for index, _ in unread), job_id, unread[0][1], LOG_GROUP,
        )
