"""Pure: one task, one AWS Batch array job of N children.

Builds on ``job_spec``: the same containers, plus what lets each child stage its own files. The only
thing that tells the children apart on AWS is ``AWS_BATCH_JOB_ARRAY_INDEX`` in their environment,
and AWS Batch runs the AWS CLI image's entry point (``aws``) with no shell: its arguments cannot
name the index. So a ``prep`` container (the main image, ``/bin/sh``) writes two AWS CLI aliases
with the child's index into the sidecars' ``$HOME/.aws/cli/alias``, and the sidecars run them:

``prep`` -> ``inputs`` (shared files) -> ``child-inputs`` (this child's) -> ``main`` -> ``outputs``.

Layout under the bucket path: ``inputs/`` shared, ``children/<index>/inputs/`` each child's own,
``children/<index>/work/`` and ``children/<index>/output/`` each child's outputs, ``manifest.json``.
Also pure: the success rule, the manifest and the XCom.
"""

from __future__ import annotations

import hashlib
import json
import math
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_batch_runner import job_spec
from airflow_batch_runner.job_spec import (
    DIR_OUTPUT_PREFIX,
    INPUTS,
    INPUTS_PREFIX,
    MAIN,
    OUTPUTS,
    OUTPUTS_FILE_KEY,
    VOLUME_ROOT,
    WORK_OUTPUT_PREFIX,
    WORKING_DIR,
    JobSpec,
    TaskIdentity,
)

MIN_SIZE = 2  # AWS Batch: arrayProperties.size is 2 to 10,000
MAX_SIZE = 10_000
PREP = "prep"
CHILD_INPUTS = "child-inputs"
CHILDREN_PREFIX = "children/"
MANIFEST_KEY = "manifest.json"
INDEX_VARIABLE = "AWS_BATCH_JOB_ARRAY_INDEX"
SIDECAR_HOME = f"{VOLUME_ROOT}/.home"
ALIAS_FILE = f"{SIDECAR_HOME}/.aws/cli/alias"
STAGE_IN = "stage-child-inputs"
STAGE_OUT = "stage-child-outputs"
# The XCom lists each child's outputs inline up to this size; the manifest always has them.
INLINE_CHILDREN = 100
# The XCom lists at most this many failed indexes (the manifest has every one).
INLINE_FAILED_INDEXES = 1000
# The failure message details this many failed children (exit codes, reasons, last log lines).
SHOWN_FAILURES = 5
SHOWN_LOG_LINES = 10
STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")


@dataclass(frozen=True)
class ArraySpec:
    """The array's size, each child's own input files (empty, or one mapping per child), the success rule."""

    size: int
    child_inputs: tuple[Mapping[str, str], ...] = ()
    allowed_failures: int | float = 0

    @property
    def has_child_inputs(self) -> bool:
        return any(self.child_inputs)

    @property
    def allowed(self) -> int:
        return allowed_count(self.allowed_failures, self.size)


# Validation


def check_allowed_failures(value: Any) -> int | float:
    """A count (int >= 0) or a fraction of the children (float from 0 to 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"allowed_failures must be a count (e.g. 3) or a fraction (e.g. 0.05); got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"allowed_failures must be 0 or more; got {value}")
        return value
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"allowed_failures as a fraction must be from 0.0 to 1.0; got {value}")
    return value


def allowed_count(allowed: int | float, size: int) -> int:
    """How many failed children the task tolerates: a count as is, a fraction of the size rounded down."""
    return allowed if isinstance(allowed, int) else math.floor(allowed * size + 1e-9)


def resolve(array_size: Any, array_input_files: Any, allowed_failures: Any) -> ArraySpec | None:
    """The rendered arguments -> an ArraySpec, None for a single job, or a ValueError naming the argument."""
    if array_size in (None, "") and array_input_files in (None, ""):
        return None
    allowed = check_allowed_failures(allowed_failures)
    child_inputs: tuple[Mapping[str, str], ...] = ()
    if array_input_files not in (None, ""):
        if isinstance(array_input_files, str | bytes) or not isinstance(array_input_files, Sequence):
            raise ValueError(
                "array_input_files must be a list with one {name: content or s3:// URI} mapping per child; "
                f"got {type(array_input_files).__name__}"
            )
        child_inputs = tuple(_check_child_files(i, item) for i, item in enumerate(array_input_files))
    size = _check_size(array_size, child_inputs)
    return ArraySpec(size=size, child_inputs=child_inputs, allowed_failures=allowed)


def _check_child_files(index: int, item: Any) -> dict[str, str]:
    if not isinstance(item, Mapping):
        raise ValueError(f"array_input_files[{index}] must be a mapping of file name to content or s3:// URI; "
                         f"got {item!r}")
    return job_spec.check_input_files(item, f"array_input_files[{index}]")


def _check_size(array_size: Any, child_inputs: tuple[Mapping[str, str], ...]) -> int:
    if array_size in (None, ""):
        size = len(child_inputs)
    else:
        try:
            size = int(str(array_size).strip()) if not isinstance(array_size, int) else array_size
        except ValueError as exc:
            raise ValueError(f"array_size must be a whole number; got {array_size!r}") from exc
        if child_inputs and size != len(child_inputs):
            raise ValueError(
                f"array_size ({size}) and the length of array_input_files ({len(child_inputs)}) differ; "
                "give one of them, or make them agree"
            )
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(
            f"an array job has {MIN_SIZE} to {MAX_SIZE} children (AWS Batch's limits); got {size}. "
            "For one item run a single job (no array_size); for more, split the items over mapped tasks"
        )
    return size


# Layout


def child_prefix(bucket_path: str, index: int) -> str:
    return f"{bucket_path}{CHILDREN_PREFIX}{index}/"


def child_inputs_prefix(bucket_path: str, index: int) -> str:
    return f"{child_prefix(bucket_path, index)}{INPUTS_PREFIX}"


def child_results_file(key_under_children: str) -> int | None:
    """The index of the child whose ``$OUTPUTS_FILE`` this object under ``children/`` is; None otherwise."""
    index, _, rest = key_under_children.partition("/")
    return int(index) if index.isdigit() and rest == job_spec.OUTPUTS_FILE_KEY else None


def results_problems(children: Sequence[Child]) -> str | None:
    """A line for the task log naming the children whose ``$OUTPUTS_FILE`` could not be read, if any."""
    bad = [c for c in children if c.results_error]
    if not bad:
        return None
    shown = ", ".join(str(c.index) for c in bad[:SHOWN_FAILURES]) + (" ..." if len(bad) > SHOWN_FAILURES else "")
    return (f"{len(bad)} of the children wrote a $OUTPUTS_FILE that could not be read (children {shown}); the manifest "
            f"gives each one's results_error. Child {bad[0].index}: {bad[0].results_error}")


def child_output(key_under_children: str) -> tuple[int, str] | None:
    """(index, output name) of an object under ``children/``; None for what is not an output."""
    index, _, rest = key_under_children.partition("/")
    if not index.isdigit():
        return None
    name = job_spec.output_name(rest)
    return (int(index), name) if name else None


# Building


def container_names(spec: JobSpec, array: ArraySpec) -> list[str]:
    names = [PREP]
    if spec.has_inputs:
        names.append(INPUTS)
    if array.has_child_inputs:
        names.append(CHILD_INPUTS)
    names.append(MAIN)
    if spec.has_outputs:
        names.append(OUTPUTS)
    return names


def _shares(spec: JobSpec, names: Sequence[str]) -> dict[str, job_spec.Resources]:
    """As for one job: every container but main takes a sidecar's share, main the rest."""
    shares = job_spec.split_resources(spec, [n for n in names if n != MAIN])
    return {name: shares[name] for name in names}


def build_job_definition(spec: JobSpec, array: ArraySpec) -> dict[str, Any]:
    """The single job's definition with the array's containers in a chain, each depending on the previous."""
    base = job_spec.build_job_definition(spec)
    names = container_names(spec, array)
    by_name = {c["name"]: c for c in base["ecsProperties"]["taskProperties"][0]["containers"]}
    template = by_name[OUTPUTS if OUTPUTS in by_name else MAIN]
    shares = _shares(spec, names)
    containers = []
    for position, name in enumerate(names):
        container = dict(by_name.get(name) or template)
        container["name"] = name
        container["image"] = spec.image if name in (PREP, MAIN) else spec.sidecar_image
        container["essential"] = position == len(names) - 1
        container["resourceRequirements"] = job_spec.requirements(shares[name])
        container["command"] = ["/bin/sh", "-c", "true"] if name in (PREP, MAIN) else ["--version"]
        container.pop("dependsOn", None)
        if position:
            container["dependsOn"] = [{"containerName": names[position - 1], "condition": "SUCCESS"}]
        containers.append(container)
    base["ecsProperties"]["taskProperties"][0]["containers"] = containers
    body = {k: v for k, v in base.items() if k not in ("jobDefinitionName", "tags")}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:20]
    base["jobDefinitionName"] = f"{job_spec.DEFINITION_PREFIX}-array-{digest}"
    # The stream prefix names the definition, as for one job.
    for container in containers:
        container["logConfiguration"] = job_spec.log_configuration(base["jobDefinitionName"], spec.region)
    return base


def definition_name(spec: JobSpec, array: ArraySpec) -> str:
    return str(build_job_definition(spec, array)["jobDefinitionName"])


def prep_script(spec: JobSpec, array: ArraySpec) -> str:
    """Writes the sidecars' AWS CLI aliases, each naming this child's prefix through its index."""
    assert spec.bucket_path is not None
    index = f'"${INDEX_VARIABLE}"'
    lines = ["[toplevel]"]
    words: list[str] = []
    if array.has_child_inputs:
        words.append(shlex.quote(f"{STAGE_IN} = s3 cp --recursive --only-show-errors "
                                  f"{spec.bucket_path}{CHILDREN_PREFIX}")
                      + index + shlex.quote(f"/{INPUTS_PREFIX} {WORKING_DIR}/"))
    if spec.has_outputs:
        includes = "".join(f" --include {shlex.quote(WORK_OUTPUT_PREFIX + p)}" for p in spec.output_patterns)
        words.append(shlex.quote(f"{STAGE_OUT} = s3 cp --recursive --only-show-errors {VOLUME_ROOT}/ "
                                 f"{spec.bucket_path}{CHILDREN_PREFIX}")
                     + index + shlex.quote(f"/ --exclude '*'{includes} --include '{DIR_OUTPUT_PREFIX}*' "
                                           f"--include {OUTPUTS_FILE_KEY}"))
    alias_dir = ALIAS_FILE.rsplit("/", 1)[0]
    return "\n".join([
        f'case "${INDEX_VARIABLE}" in ""|*[!0-9]*) echo "airflow-batch-runner: {INDEX_VARIABLE} is not set" >&2; '
        "exit 1;; esac",
        f'mkdir -p "$WORKING_DIR" "$OUTPUT_DIR" {alias_dir}',
        f"printf '%s\\n' {shlex.quote(lines[0])} {' '.join(words)} > {ALIAS_FILE}",
    ])


def build_submit_request(
    spec: JobSpec, array: ArraySpec, identity: TaskIdentity, job_queue: str, attempt_duration_seconds: int | None
) -> dict[str, Any]:
    """One SubmitJob for every child: the single job's request with the array's containers and size."""
    request = job_spec.build_submit_request(spec, identity, job_queue, attempt_duration_seconds)
    names = container_names(spec, array)
    shares = _shares(spec, names)
    single = {c["name"]: c for c in request["ecsPropertiesOverride"]["taskProperties"][0]["containers"]}
    environment = single[MAIN]["environment"]
    commands = {
        PREP: ["/bin/sh", "-c", prep_script(spec, array)],
        CHILD_INPUTS: [STAGE_IN],
        OUTPUTS: [STAGE_OUT],
    }
    overrides = []
    for name in names:
        override: dict[str, Any] = {
            "name": name,
            "command": commands.get(name) or single[name]["command"],
            "resourceRequirements": job_spec.requirements(shares[name]),
        }
        if name in (PREP, MAIN):
            override["environment"] = environment
        elif name in (CHILD_INPUTS, OUTPUTS):
            override["environment"] = [{"name": "HOME", "value": SIDECAR_HOME}]
        overrides.append(override)
    request["ecsPropertiesOverride"] = {"taskProperties": [{"containers": overrides}]}
    request["jobDefinition"] = definition_name(spec, array)
    request["arrayProperties"] = {"size": array.size}
    return request


def fit_to_limits(
    spec: JobSpec, array: ArraySpec, identity: TaskIdentity, job_queue: str, attempt_duration_seconds: int | None
) -> JobSpec:
    """``job_spec.fit_to_limits`` for the array's own SubmitJob request, the one submitted: its ``prep``
    container carries the environment beside ``main``, and the output patterns in its script."""
    return job_spec.fit_to_limits(
        spec, identity, job_queue, attempt_duration_seconds,
        build=lambda candidate: build_submit_request(candidate, array, identity, job_queue, attempt_duration_seconds),
    )


# The end: success rule, manifest, XCom


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
    # What the child wrote to its $OUTPUTS_FILE (its result lines are not read: see the README).
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
        "working_dir": job_spec.WORKING_DIR,
        "output_dir": job_spec.OUTPUT_DIR,
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
