"""An array job's files and children: each child's inputs staged, the children read once at the end,
the manifest written. Every AWS call goes through ``BatchRunnerHook``; the decisions are ``array_spec``'s.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from airflow_batch_runner import array_outcome, child_sampling, layout, outcome, results, staging
from airflow_batch_runner.array_outcome import ArrayOutcome, Child
from airflow_batch_runner.array_spec import ArraySpec
from airflow_batch_runner.hooks.batch_runner import BatchRunnerHook, NotFound, is_throttling
from airflow_batch_runner.masking import redact, redact_value

STAGING_THREADS = 8
MAX_LOGS_WAIT = 10.0
log = logging.getLogger(__name__)


def stage_child_inputs(hook: BatchRunnerHook, bucket_path: str, array: ArraySpec) -> int:
    """Each child's own files under ``children/<index>/inputs/`` (contents uploaded, s3:// URIs copied)."""
    work = [(index, name, value) for index, files in enumerate(array.child_inputs) for name, value in files.items()]

    def stage(item: tuple[int, str, str]) -> None:
        index, name, value = item
        target = f"{layout.child_inputs_prefix(bucket_path, index)}{name}"
        if layout.is_s3_uri(value):
            try:
                hook.copy(value, target)
            except NotFound as exc:
                raise ValueError(f"array_input_files[{index}][{name!r}]: {value} does not exist ({exc})") from exc
        else:
            hook.upload_text(target, value)

    try:
        with ThreadPoolExecutor(STAGING_THREADS) as pool:
            list(pool.map(stage, work))
    except NotFound as exc:
        bucket = layout.bucket_and_key(bucket_path)[0]
        raise ValueError(
            f"bucket {bucket!r} does not exist or is not accessible with these credentials ({exc})"
        ) from exc
    return len(work)


def delete_inputs(hook: BatchRunnerHook, bucket_path: str) -> int:
    """The shared and every child's staged inputs; never the outputs or the manifest."""
    removed = staging.delete_inputs(hook, bucket_path)
    bucket, prefix = layout.bucket_and_key(f"{bucket_path}{layout.CHILDREN_PREFIX}")
    keys = [key for key in hook.list_objects(f"{bucket_path}{layout.CHILDREN_PREFIX}")
            if key[len(prefix):].split("/", 2)[1:2] == [layout.INPUTS_PREFIX.rstrip("/")]]
    hook.delete_keys(bucket, keys)
    return removed + len(keys)


def waiting_reason(hook: BatchRunnerHook, job_id: str) -> str | None:
    """Why the array's children wait in RUNNABLE; None when it cannot be told (the reason is news for the
    task log and the stuck limit's message, not worth failing the wait over)."""
    try:
        return hook.runnable_child_reason(job_id)
    except Exception as exc:
        log.warning("Could not read why the children of array job %s wait: %s", job_id, exc)
        return None


def sample_children(
    hook: BatchRunnerHook, job_id: str, sampler: child_sampling.ChildSampler
) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """One sampling's calls, for ``sampler.adopt``: ListJobs of the RUNNING children until enough are
    listed, then one DescribeJobs of the ones to describe (the ids asked, and the answers)."""
    listed = hook.running_array_children(job_id, sampler.enough, child_sampling.LIST_PAGE)
    asked = sampler.to_describe(listed)
    return asked, (hook.describe_jobs(asked) if asked else {})


def sampling_failure(exc: BaseException, job_id: str) -> str | None:
    """What the task log says of a failed sampling (nothing when throttled: the next one tries again, and
    lines are best effort)."""
    if is_throttling(exc):
        return None
    return f"Listing the running children of array job {job_id} failed: {exc}"


ReadLastLines = Callable[[str, int], list[str]]


def read_children(
    hook: BatchRunnerHook,
    job_id: str,
    bucket_path: str | None,
    array: ArraySpec,
    cut_short: str | None,
    logs_readable_at: float | None = None,
    read_last_lines: ReadLastLines | None = None,
) -> tuple[list[Child], ArrayOutcome, dict[int, list[str]]]:
    """Once, at the end: the children (ListJobs by arrayJobId), the failed ones' exit codes (DescribeJobs,
    100 a call), the first few failed ones' last log lines (once CloudWatch Logs has them: after
    ``logs_readable_at``, wall time, waiting at most MAX_LOGS_WAIT), and every child's outputs (one listing)."""
    # Cut short, the children may not all have ended: every status is listed.
    statuses = array_outcome.STATUSES if cut_short else ("SUCCEEDED", "FAILED")
    children = {c.index: c for c in map(array_outcome.child_from_summary, hook.list_array_children(job_id, statuses))}
    failed_ids = [f"{job_id}:{i}" for i, c in sorted(children.items()) if c.status != "SUCCEEDED"]
    for description in hook.describe_jobs(failed_ids).values():
        state = outcome.job_state(description)
        index = int(state.job_id.rsplit(":", 1)[-1])
        children[index] = replace(children[index], exit_code=state.container_exit_code,
                                  status_reason=state.status_reason or state.container_reason,
                                  log_stream=state.log_stream)
    if bucket_path:
        outputs_by_child, wrote_results = _outputs_by_child(hook, bucket_path)
        for index, outputs in outputs_by_child.items():
            if index in children:
                children[index] = replace(children[index], output_files=outputs)
        for index, collected in _results_by_child(hook, bucket_path, wrote_results & set(children)).items():
            children[index] = replace(children[index], outputs=collected.outputs, metrics=collected.metrics,
                                      results_error=collected.error)
    listed = sorted(children.values(), key=lambda c: c.index)
    result = array_outcome.judge(array, listed, cut_short)
    read = read_last_lines or hook.last_log_lines
    shown = [c for c in result.failed[: array_outcome.SHOWN_FAILURES] if c.log_stream]
    if shown and logs_readable_at:
        time.sleep(max(0.0, min(logs_readable_at - time.time(), MAX_LOGS_WAIT)))
    last_lines = {
        c.index: [redact(line) for line in read(c.log_stream, array_outcome.SHOWN_LOG_LINES)]
        for c in result.failed[: array_outcome.SHOWN_FAILURES] if c.log_stream
    }
    return listed, result, last_lines


def _outputs_by_child(hook: BatchRunnerHook, bucket_path: str) -> tuple[dict[int, dict[str, str]], set[int]]:
    """Each child's output files, and the children that wrote a ``$OUTPUTS_FILE``: one listing."""
    bucket, prefix = layout.bucket_and_key(f"{bucket_path}{layout.CHILDREN_PREFIX}")
    found: dict[int, dict[str, str]] = {}
    wrote_results: set[int] = set()
    for key in hook.list_objects(f"{bucket_path}{layout.CHILDREN_PREFIX}"):
        parsed = layout.child_output(key[len(prefix):])
        if parsed:
            found.setdefault(parsed[0], {})[parsed[1]] = f"s3://{bucket}/{key}"
        elif (index := layout.child_results_file(key[len(prefix):])) is not None:
            wrote_results.add(index)
    return found, wrote_results


def _results_by_child(hook: BatchRunnerHook, bucket_path: str, indexes: set[int]) -> dict[int, results.Collected]:
    """The ``$OUTPUTS_FILE`` of each of these children, read as a single job's is (bounded, masked); one
    GetObject each, only for the children that wrote one."""

    def read(index: int) -> tuple[int, results.Collected]:
        collected = results.Collected(clean=redact_value)
        prefix = layout.child_prefix(bucket_path, index)
        text = staging.read_outputs_file(hook, prefix, results.MAX_TOTAL_BYTES)
        if text is not None:
            collected.add_file(text, f"$OUTPUTS_FILE ({prefix}{layout.OUTPUTS_FILE_KEY})")
        return index, collected

    with ThreadPoolExecutor(STAGING_THREADS) as pool:
        return dict(pool.map(read, sorted(indexes)))


def write_manifest(
    hook: BatchRunnerHook, job_id: str, bucket_path: str | None, result: ArrayOutcome, children: Sequence[Child]
) -> str | None:
    if not bucket_path:
        return None
    uri = f"{bucket_path}{layout.MANIFEST_KEY}"
    hook.upload_text(uri, json.dumps(array_outcome.manifest(job_id, bucket_path, result, children)))
    return uri


def read_manifest(
    result: Mapping[str, Any],
    aws_conn_id: str | None = "aws_default",
    region_name: str | None = None,
    status: str | None = "SUCCEEDED",
    hook: BatchRunnerHook | None = None,
) -> list[dict[str, Any]]:
    """The children of an array task's XCom, read from its manifest in S3: a list a downstream task
    can ``expand`` over, each item ``{"index", "status", "exit_code", "output_files": {name: uri}, ...}``.
    Only the succeeded children by default; ``status=None`` for all of them."""
    uri = result.get("manifest")
    if not uri:
        raise ValueError("read_manifest needs the XCom of an array task (with array_size or array_input_files)")
    hook = hook or BatchRunnerHook(aws_conn_id=aws_conn_id, region_name=region_name)
    text = hook.read_text(str(uri), 1 << 30)
    if text is None:
        raise ValueError(f"the manifest {uri} does not exist")
    return array_outcome.manifest_items(json.loads(text), status)
