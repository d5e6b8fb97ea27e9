"""Job shapes: what differs between one job and an array job, behind one interface the operator drives.

The operator's lifecycle (check, place, submit or reattach, wait here or defer, finish) is the same for
every shape; a shape says how its job is built and fitted to AWS's limits, which containers it has, what it
stages and deletes, which children's lines the wait follows, and how its end becomes the XCom or the
failure. ``SingleJob`` and ``ArrayJob`` are the two; a third (a Batch-on-EKS pod, a multi-node job) is a new
class here and one more case in ``resolve`` and ``of_job``, nothing in the operator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from airflow_batch_runner import array_spec
from airflow_batch_runner.hooks.batch_runner import BatchRunnerHook
from airflow_batch_runner.job_spec import JobSpec
from airflow_batch_runner.layout import TaskIdentity
from airflow_batch_runner.outcome import KILL_REASON, JobState, Verdict
from airflow_batch_runner.task_log import MainLines, TaskLogger


@dataclass
class Ending:
    """What a shape's ``finish`` uses of the task: AWS, its log, its limit's text, what the main container
    printed, whether it was killed, and the cleanup of its staged inputs (which never raises)."""

    hook: BatchRunnerHook
    log: TaskLogger
    limit: str
    main: MainLines
    killed: bool
    cleanup: Callable[[str | None], None]


class JobShape(Protocol):
    """How one shape of job is built, staged, followed, finished and cleaned up."""

    def check(self) -> None:
        """Checks of the shape's own settings, before anything is created (a ValueError names the fix)."""

    @property
    def child_input_names(self) -> Sequence[Mapping[str, str]]:
        """Each child's own input files (none for a single job), checked with the shared ones."""

    @property
    def followed_children(self) -> int | None:
        """How many children the wait may follow lines of (an array's size), None for a single job."""

    def fit_to_limits(self, spec: JobSpec, identity: TaskIdentity, queue: str, attempt_seconds: int) -> JobSpec:
        """The spec as it fits one SubmitJob request (long commands staged), or a ValueError naming what does
        not fit."""

    def container_names(self, spec: JobSpec) -> list[str]: ...

    def submit_request(self, spec: JobSpec, identity: TaskIdentity, queue: str, attempt_seconds: int
                       ) -> dict[str, Any]: ...

    def job_definition(self, spec: JobSpec) -> dict[str, Any]: ...

    def stage(self, hook: BatchRunnerHook, spec: JobSpec, inputs: Mapping[str, str],
              project: Mapping[str, Path], log: TaskLogger) -> None:
        """Upload what the job reads (the caller cleans up after a failure part way)."""

    def described(self) -> str:
        """What the task log says of a submitted job after its name (``, an array of 5 children``)."""

    def delete_inputs(self, hook: BatchRunnerHook, bucket_path: str) -> int:
        """This submission's staged inputs, never its outputs; how many objects went."""

    def finish(self, end: Ending, state: JobState, verdict: Verdict, description: Mapping[str, Any],
               bucket_path: str | None) -> dict[str, Any]:
        """The ended job's XCom, or the task's failure (``BatchJobFailed``, ``MalformedResults``); the staged
        inputs are cleaned up either way."""


def resolve(array_size: Any, array_input_files: Any, allowed_failures: Any) -> JobShape:
    """The shape the rendered arguments ask for, or a ValueError naming the argument."""
    from airflow_batch_runner.shapes.array import ArrayJob
    from airflow_batch_runner.shapes.single import SingleJob

    array = array_spec.resolve(array_size, array_input_files, allowed_failures)
    return SingleJob() if array is None else ArrayJob(array)


def of_job(state: JobState, allowed_failures: int | float) -> JobShape:
    """The shape of a job AWS describes (a reattached or deferred one): an array's size as AWS reports it,
    whatever the arguments render to now."""
    from airflow_batch_runner.shapes.array import ArrayJob
    from airflow_batch_runner.shapes.single import SingleJob

    if not state.array_size:
        return SingleJob()
    return ArrayJob(array_spec.ArraySpec(state.array_size, allowed_failures=allowed_failures))


def cut_short(state: JobState, verdict: Verdict, limit: str, killed: bool) -> str | None:
    """Why the task ended the job before its end, if it did: a kill, RUNNABLE too long, the deadline."""
    if killed or state.status_reason == KILL_REASON:
        return "the Airflow task was killed"
    if verdict.stuck_for:
        return f"it stayed RUNNABLE more than {verdict.stuck_for} (max_runnable_time)"
    if verdict.timed_out:
        return f"it did not finish within {limit}"
    return None
