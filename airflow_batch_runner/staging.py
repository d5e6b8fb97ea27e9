"""The bucket path's files: inputs staged in before the job, outputs listed after it, cleanup.

Layout under a submission's bucket path: ``inputs/`` (staged by the worker, read by the inputs
sidecar, removed when ``delete`` is on), ``work/`` and ``output/`` (written by the outputs sidecar,
kept: XCom points to them).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from airflow_batch_runner import layout
from airflow_batch_runner.hooks.batch_runner import BatchRunnerHook, NotFound

log = logging.getLogger(__name__)


def stage_inputs(
    hook: BatchRunnerHook, bucket_path: str, inputs: Mapping[str, str], project: Mapping[str, Path]
) -> None:
    """Upload contents and project files, copy ``s3://`` inputs server-side, all under ``inputs/``."""
    prefix = f"{bucket_path}{layout.INPUTS_PREFIX}"
    bucket = layout.bucket_and_key(bucket_path)[0]
    try:
        for name, path in project.items():
            hook.upload_file(f"{prefix}{name}", str(path))
        for name, value in inputs.items():
            if layout.is_s3_uri(value):
                try:
                    hook.copy(value, f"{prefix}{name}")
                except NotFound as exc:
                    raise ValueError(f"input_files[{name!r}]: {value} does not exist ({exc})") from exc
            else:
                hook.upload_text(f"{prefix}{name}", value)
    except NotFound as exc:
        raise ValueError(
            f"bucket {bucket!r} does not exist or is not accessible with these credentials ({exc})"
        ) from exc
    log.info("Staged %d input file(s) under %s", len(inputs) + len(project), prefix)


def collect_outputs(hook: BatchRunnerHook, bucket_path: str | None) -> tuple[dict[str, str], bool]:
    """XCom names (relative to the working or the output dir, see ``layout.output_names``) -> ``s3://`` URIs,
    and whether the job wrote ``$OUTPUTS_FILE`` (one listing answers both: no GetObject for a file not there)."""
    if not bucket_path:
        return {}, False
    bucket, prefix = layout.bucket_and_key(bucket_path)
    keys = [key[len(prefix) :] for key in hook.list_objects(bucket_path)]
    names = layout.output_names(keys)
    return {name: f"s3://{bucket}/{prefix}{key}" for name, key in names.items()}, layout.OUTPUTS_FILE_KEY in keys


def read_outputs_file(hook: BatchRunnerHook, bucket_path: str | None, max_bytes: int) -> str | None:
    """The ``$OUTPUTS_FILE`` the job wrote, as the outputs sidecar collected it; None when it wrote none."""
    if not bucket_path:
        return None
    return hook.read_text(f"{bucket_path}{layout.OUTPUTS_FILE_KEY}", max_bytes)


def delete_inputs(hook: BatchRunnerHook, bucket_path: str) -> int:
    """This submission's staged inputs: what ``delete`` removes, never what XCom points to."""
    return hook.delete_prefix(f"{bucket_path}{layout.INPUTS_PREFIX}")


def delete_stale_inputs(hook: BatchRunnerHook, task_prefix: str, keep: str | None) -> int:
    """Inputs staged by earlier tries of the task instance, whose jobs failed or never started."""
    bucket, prefix = layout.bucket_and_key(task_prefix)
    keep_key = layout.bucket_and_key(keep)[1] if keep else None
    stale = [
        key for key in hook.list_objects(task_prefix)
        if f"/{layout.INPUTS_PREFIX}" in key[len(prefix) :] and not (keep_key and key.startswith(keep_key))
    ]
    hook.delete_keys(bucket, stale)
    return len(stale)
