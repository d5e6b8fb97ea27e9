"""Array jobs and job dependencies as AWS Batch documents them, as pure functions.

An array job of size N is a parent and N children ``<parent id>:<index>``. A child waits on:
the jobs its parent depends on (a standard dependency), child ``i - 1`` of its own array
(``SEQUENTIAL``), and child ``i`` of each array it depends on with ``N_TO_N``. A job that is not an array
job may carry the types too (the API reference does not refuse them): its ``N_TO_N`` waits for the whole job it
names and its ``SEQUENTIAL`` orders nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airflow_batch_runner.emulator.batch.jobs import Job
from airflow_batch_runner.emulator.batch.validation import ClientException

MIN_ARRAY_SIZE = 2
MAX_ARRAY_SIZE = 10_000
MAX_DEPENDENCIES = 20
DEPENDENCY_TYPES = ("N_TO_N", "SEQUENTIAL")
DEPENDENCY_FAILED = "Dependent Job failed"


def array_size(properties: Mapping[str, Any] | None) -> int | None:
    """The size an ``arrayProperties`` asks for; None for a job that is not an array job."""
    if not properties:
        return None
    size = properties.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or not MIN_ARRAY_SIZE <= size <= MAX_ARRAY_SIZE:
        raise ClientException(
            f"arrayProperties.size must be between {MIN_ARRAY_SIZE} and {MAX_ARRAY_SIZE}, got {size!r}"
        )
    return size


def check_depends_on(depends_on: Sequence[Mapping[str, Any]] | None, size: int | None) -> list[dict[str, str]]:
    """The structural rules of dependsOn; returns it as it will be reported."""
    entries = list(depends_on or [])
    if len(entries) > MAX_DEPENDENCIES:
        raise ClientException(f"dependsOn: a job can depend on at most {MAX_DEPENDENCIES} jobs, got {len(entries)}")
    out = []
    for entry in entries:
        job_id, dep_type = entry.get("jobId"), entry.get("type")
        if dep_type is not None and dep_type not in DEPENDENCY_TYPES:
            raise ClientException(f"dependsOn type {dep_type!r} is invalid; use {' or '.join(DEPENDENCY_TYPES)}")
        if dep_type == "SEQUENTIAL" and job_id:
            raise ClientException("dependsOn type SEQUENTIAL takes no jobId: it orders the children of this array job")
        if dep_type != "SEQUENTIAL" and not job_id:
            raise ClientException("dependsOn: jobId is required (except for a SEQUENTIAL dependency)")
        out.append({k: str(v) for k, v in (("jobId", job_id), ("type", dep_type)) if v})
    return out


def resolve(depends_on: list[dict[str, str]], size: int | None, find: Callable[[str], Job | None]) -> list[Job]:
    """The jobs a (non-child) job depends on, refusing ids that name no job or arrays that cannot pair."""
    targets = []
    for entry in depends_on:
        if "jobId" not in entry:
            continue
        target = find(entry["jobId"])
        if target is None:
            raise ClientException(f"dependsOn: job {entry['jobId']} does not exist")
        # A single job's N_TO_N has no children to pair: it waits for the whole job, as a standard dependency.
        if entry.get("type") == "N_TO_N" and size is not None and target.array_size != size:
            raise ClientException(
                f"dependsOn N_TO_N: job {entry['jobId']} must be an array job of the same size ({size}), "
                f"not {'an array of ' + str(target.array_size) if target.array_size else 'a single job'}"
            )
        targets.append(target)
    return targets


def child_dependencies(parent: Job, index: int, targets: list[Job]) -> list[tuple[Job, str | None]]:
    """What child ``index`` of ``parent`` waits on, with the dependency type it reports."""
    out: list[tuple[Job, str | None]] = []
    for entry, target in zip((e for e in parent.depends_on if "jobId" in e), targets, strict=True):
        if entry.get("type") == "N_TO_N":
            out.append((target.children[index], "N_TO_N"))
        else:
            out.append((target, None))
    if index > 0 and any(e.get("type") == "SEQUENTIAL" for e in parent.depends_on):
        out.append((parent.children[index - 1], "SEQUENTIAL"))
    return out


def verdict(job: Job) -> str:
    """``ready`` when every dependency succeeded, ``failed`` when one failed, else ``wait``."""
    statuses = [dep.status for dep in job.waits_on]
    if "FAILED" in statuses:
        return "failed"
    return "ready" if all(s == "SUCCEEDED" for s in statuses) else "wait"


def parent_status(parent: Job) -> str:
    """An array parent's status from its children's: PENDING once any child has reached RUNNABLE (or
    ended), and while any child has not ended; then SUCCEEDED if every child succeeded, else FAILED."""
    statuses = {child.status for child in parent.children}
    if statuses <= {"SUCCEEDED", "FAILED"}:
        return "FAILED" if "FAILED" in statuses else "SUCCEEDED"
    if parent.status == "PENDING" or statuses - {"SUBMITTED", "PENDING"}:
        return "PENDING"
    return "SUBMITTED"
