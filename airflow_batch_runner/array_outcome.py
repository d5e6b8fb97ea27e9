"""Pure: an array job's end. Its children as AWS Batch lists them, judged against the success rule, the
failure report, the manifest written beside the children's files, the task's XCom, and the progress line
the task log shows while the children run. No boto3, no Airflow runtime.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_batch_runner.array_spec import ArraySpec
from airflow_batch_runner.layout import OUTPUT_DIR, WORKING_DIR

# The XCom lists each child's outputs inline up to this size; the manifest always has them.
INLINE_CHILDREN = 100
# The XCom lists at most this many failed indexes (the manifest has every one).
INLINE_FAILED_INDEXES = 1000
# The failure message details this many failed children (exit codes, reasons, last log lines).
SHOWN_FAILURES = 5
SHOWN_LOG_LINES = 10
STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")


@dataclass(frozen=True)
class Child:
    """One child as ListJobs (and, for a failed one, DescribeJobs) reports it."""

    index: int
    status: str
    status_reason: str | None = None
    exit_code: int | None = None  # the main container's
    created_at: int | None = None
    started_at: int | None = None
    stopped_at: int | None = None
    log_stream: str | None = None
    output_files: Mapping[str, str] = field(default_factory=dict)
    # What the child wrote to its $OUTPUTS_FILE (its result lines are not read: see docs/how-to/arrays.md).
    outputs: Mapping[str, Any] = field(default_factory=dict)
    metrics: Sequence[Mapping[str, Any]] = ()
    results_error: str | None = None


def child_index(summary: Mapping[str, Any]) -> int:
    """A child's index, from a ListJobs summary or a DescribeJobs entry (or its ``<parent>:<index>`` id)."""
    index = (summary.get("arrayProperties") or {}).get("index")
    return int(index) if index is not None else int(str(summary["jobId"]).rsplit(":", 1)[-1])


def child_from_summary(summary: Mapping[str, Any]) -> Child:
    return Child(
        index=child_index(summary),
        status=str(summary.get("status")),
        status_reason=summary.get("statusReason"),
        exit_code=0 if summary.get("status") == "SUCCEEDED" else (summary.get("container") or {}).get("exitCode"),
        created_at=summary.get("createdAt"),
        started_at=summary.get("startedAt"),
        stopped_at=summary.get("stoppedAt"),
    )


@dataclass(frozen=True)
class ArrayOutcome:
    """What the children did, against the success rule."""

    size: int
    counts: Mapping[str, int]
    failed: tuple[Child, ...]
    allowed: int
    # Why the task ended the array before its end (killed, past its deadline, RUNNABLE too long): the task
    # then fails whatever failures are allowed.
    cut_short: str | None = None

    @property
    def succeeded(self) -> int:
        return self.counts.get("SUCCEEDED", 0)

    @property
    def not_succeeded(self) -> int:
        return self.size - self.succeeded

    @property
    def ok(self) -> bool:
        """Ran to its end, at least one child succeeded (an array none of whose children succeeded did
        nothing, whatever ``allowed_failures`` says), and no more failed than allowed."""
        return self.cut_short is None and self.succeeded >= 1 and self.not_succeeded <= self.allowed


def judge(array: ArraySpec, children: Iterable[Child], cut_short: str | None = None) -> ArrayOutcome:
    listed = sorted(children, key=lambda c: c.index)
    counts = dict.fromkeys(STATUSES, 0)
    for child in listed:
        counts[child.status] = counts.get(child.status, 0) + 1
    failed = tuple(c for c in listed if c.status != "SUCCEEDED")
    return ArrayOutcome(array.size, counts, failed, array.allowed, cut_short)


def results_problems(children: Sequence[Child]) -> str | None:
    """A line for the task log naming the children whose ``$OUTPUTS_FILE`` could not be read, if any."""
    bad = [c for c in children if c.results_error]
    if not bad:
        return None
    shown = ", ".join(str(c.index) for c in bad[:SHOWN_FAILURES]) + (" ..." if len(bad) > SHOWN_FAILURES else "")
    return (f"{len(bad)} of the children wrote a $OUTPUTS_FILE that could not be read (children {shown}); the manifest "
            f"gives each one's results_error. Child {bad[0].index}: {bad[0].results_error}")


def failure_report(result: ArrayOutcome, last_lines: Mapping[int, Sequence[str]]) -> str:
    """The failed children: how many, their indexes, and the first few's exit codes, reasons and last lines."""
    head = (
        f"{result.not_succeeded} of {result.size} children did not succeed "
        f"({result.succeeded} succeeded; allowed failures {result.allowed})."
    )
    if result.cut_short is None and result.succeeded == 0 and result.not_succeeded <= result.allowed:
        head += " No child succeeded: an array task needs at least one, whatever allowed_failures says."
    indexes = [c.index for c in result.failed]
    shown = ", ".join(map(str, indexes[:50])) + (f", ... ({len(indexes) - 50} more)" if len(indexes) > 50 else "")
    parts = [head, f"Failed indexes: {shown}."] if indexes else [head]
    for child in result.failed[:SHOWN_FAILURES]:
        code = child.exit_code if child.exit_code is not None else "none"
        parts.append(f"Child {child.index}: {child.status}, main container exit code {code}"
                     + (f", status reason: {child.status_reason}" if child.status_reason else ""))
        for line in list(last_lines.get(child.index, []))[-SHOWN_LOG_LINES:]:
            parts.append(f"  [{child.index}] {line}")
    if len(result.failed) > SHOWN_FAILURES:
        parts.append(f"... and {len(result.failed) - SHOWN_FAILURES} more failed children (see the manifest).")
    return "\n".join(parts)


def manifest(
    job_id: str, bucket_path: str | None, result: ArrayOutcome, children: Iterable[Child]
) -> dict[str, Any]:
    """The S3 manifest: every child's status, exit code, timings and outputs, by index."""
    return {
        "array_job_id": job_id,
        "size": result.size,
        "bucket_path": bucket_path,
        "counts": {k: v for k, v in result.counts.items() if v},
        "children": [
            {
                "index": c.index,
                "job_id": f"{job_id}:{c.index}",
                "status": c.status,
                "exit_code": c.exit_code,
                "status_reason": c.status_reason,
                "created_at": c.created_at,
                "started_at": c.started_at,
                "stopped_at": c.stopped_at,
                "output_files": dict(sorted(c.output_files.items())),
                "outputs": dict(c.outputs),
                "metrics": [dict(m) for m in c.metrics],
                "results_error": c.results_error,
            }
            for c in sorted(children, key=lambda c: c.index)
        ],
    }


def xcom_result(
    job_id: str,
    job_name: str,
    status: str,
    bucket_path: str | None,
    manifest_uri: str | None,
    result: ArrayOutcome,
    children: Sequence[Child],
) -> dict[str, Any]:
    """Small at any size: counts, failed indexes (capped), the manifest's URI; per child only while small."""
    failed = [c.index for c in result.failed]
    out: dict[str, Any] = {
        "job_id": job_id,
        "job_name": job_name,
        "status": status,
        "exit_code": 0,
        "array_size": result.size,
        "counts": {k: v for k, v in result.counts.items() if v},
        "succeeded": result.succeeded,
        "failed": result.not_succeeded,
        "allowed_failures": result.allowed,
        "failed_indexes": failed[:INLINE_FAILED_INDEXES],
        "failed_indexes_truncated": len(failed) > INLINE_FAILED_INDEXES,
        "bucket_path": bucket_path,
        "working_dir": WORKING_DIR,
        "output_dir": OUTPUT_DIR,
        "manifest": manifest_uri,
    }
    if result.size <= INLINE_CHILDREN:
        out["children"] = {
            str(c.index): {
                "status": c.status, "exit_code": c.exit_code, "output_files": dict(sorted(c.output_files.items())),
            }
            for c in sorted(children, key=lambda c: c.index)
        }
    return out


def progress_line(description: Mapping[str, Any], previous: str | None) -> str | None:
    """An array parent's children by status (its ``statusSummary``), when it changed since ``previous``:
    what the task log shows while the array runs."""
    summary = (description.get("arrayProperties") or {}).get("statusSummary")
    if not summary:
        return None
    counts = ", ".join(f"{summary[s]} {s}" for s in STATUSES if summary.get(s))
    size = description["arrayProperties"].get("size")
    line = f"Array job {description.get('jobId')}: {counts or 'no child yet'} of {size} children"
    return None if line == previous else line


def manifest_items(document: Mapping[str, Any], status: str | None = "SUCCEEDED") -> list[dict[str, Any]]:
    """The manifest's children (by default the succeeded ones), each ``{"index", "output_files", ...}``."""
    return [dict(c) for c in document.get("children", []) if status is None or c.get("status") == status]
