"""Pure: what a task's job reads and writes in S3, and who it is, in the terms OpenLineage reports.

``lineage_facets`` turns these into the OpenLineage provider's objects; this module imports neither it nor boto3.

- Read: every ``s3://`` input file (the object itself, not the run's staged copy of it), and the staged object of
  each content input and project file (``<bucket_path>inputs/<name>``); an array child's own inputs likewise
  (``<bucket_path>children/<i>/inputs/<name>``).
- Written: a single job's output files, each as in the XCom. An array: one dataset per child prefix
  (``<bucket_path>children/<i>/``) of each child that wrote files. At 10,000 children, a dataset per file would
  put several times 10,000 datasets in one event and in the lineage graph on every run; a dataset per child stays
  at most the array's size, is what a consumer of one child's results reads, and the files stay named in the
  manifest.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_batch_runner import layout


@dataclass(frozen=True)
class JobFiles:
    """What the task knows of its job's files at one point: before the job (no bucket path yet), or after."""

    input_files: Mapping[str, str] = field(default_factory=dict)
    project_files: Sequence[str] = ()
    child_inputs: Sequence[Mapping[str, str]] = ()
    bucket_path: str | None = None
    output_files: Sequence[str] = ()  # the URIs a single job wrote
    child_prefixes: Sequence[str] = ()  # an array's children that wrote files


def dataset(uri: str) -> tuple[str, str]:
    """OpenLineage's (namespace, name) of an S3 object or prefix: ``("s3://bucket", "key")``, as the Amazon
    provider's S3 operators report them."""
    bucket, key = layout.bucket_and_key(uri)
    return f"s3://{bucket}", key


def read(files: JobFiles) -> list[str]:
    """The S3 URIs the job reads, in order, each once."""
    staged = f"{files.bucket_path}{layout.INPUTS_PREFIX}" if files.bucket_path else None
    uris = list(_staged_or_source(files.input_files, staged))
    if files.bucket_path:
        uris += [f"{files.bucket_path}{layout.INPUTS_PREFIX}{name}" for name in files.project_files]
    for index, child in enumerate(files.child_inputs):
        prefix = layout.child_inputs_prefix(files.bucket_path, index) if files.bucket_path else None
        uris += _staged_or_source(child, prefix)
    return list(dict.fromkeys(uris))


def _staged_or_source(inputs: Mapping[str, str], staged_prefix: str | None) -> Iterable[str]:
    for name, value in inputs.items():
        if layout.is_s3_uri(value):
            yield value
        elif staged_prefix:
            yield f"{staged_prefix}{name}"


def written(files: JobFiles) -> list[str]:
    """The S3 URIs (objects, or an array's child prefixes) the job wrote."""
    return list(dict.fromkeys([*files.output_files, *files.child_prefixes]))


def child_prefixes(bucket_path: str, children: Iterable[Mapping[str, Any]]) -> list[str]:
    """The prefix of each child (an XCom's inline ``children`` or the manifest's items) that wrote files."""
    return [layout.child_prefix(bucket_path, int(child["index"])) for child in children if child.get("output_files")]


def inline_children(result: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """An array XCom's children with their index, when the XCom holds them (small arrays); None otherwise."""
    children = result.get("children")
    if not isinstance(children, Mapping):
        return None
    return [{**dict(child), "index": int(index)} for index, child in children.items()]


def job_fields(description: Mapping[str, Any], console_url: str | None) -> dict[str, Any]:
    """The run facet's fields from the job's DescribeJobs entry."""
    return {
        "jobId": description.get("jobId"),
        "jobArn": description.get("jobArn"),
        "jobName": description.get("jobName"),
        "jobQueue": description.get("jobQueue"),
        "status": description.get("status"),
        "attempts": len(description.get("attempts") or []),
        "arraySize": (description.get("arrayProperties") or {}).get("size"),
        "consoleUrl": console_url,
    }


def identity_env(namespace: str, job_name: str, run_id: str, root: tuple[str, str, str]) -> dict[str, str]:
    """The container's environment naming its Airflow task's OpenLineage run (and the DAG run as its root), in the
    variables dbt-ol and the OpenLineage clients read (``OPENLINEAGE_PARENT_ID``, ``OPENLINEAGE_ROOT_PARENT_ID``,
    ``OPENLINEAGE_CONTEXT``) and one variable a part (a Spark job's ``spark.openlineage.parent*`` settings)."""
    root_namespace, root_name, root_run_id = root
    context = {"parent": {
        "run": {"runId": run_id}, "job": {"namespace": namespace, "name": job_name},
        "root": {"run": {"runId": root_run_id}, "job": {"namespace": root_namespace, "name": root_name}},
    }}
    return {
        "OPENLINEAGE_PARENT_ID": f"{namespace}/{job_name}/{run_id}",
        "OPENLINEAGE_PARENT_JOB_NAMESPACE": namespace,
        "OPENLINEAGE_PARENT_JOB_NAME": job_name,
        "OPENLINEAGE_PARENT_RUN_ID": run_id,
        "OPENLINEAGE_ROOT_PARENT_ID": f"{root_namespace}/{root_name}/{root_run_id}",
        "OPENLINEAGE_CONTEXT": json.dumps(context, separators=(",", ":")),
    }
