"""The OpenLineage provider's objects for a task's job: its S3 inputs and outputs as datasets, a run facet for
the job, and the container's environment naming the task's OpenLineage run.

Imported only by the operator's ``get_openlineage_facets_*`` methods (which the OpenLineage provider alone calls)
and once the provider is found installed: without it, nothing here is imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.providers.common.compat.openlineage.facet import Dataset, RunFacet
from airflow.providers.openlineage import conf
from airflow.providers.openlineage.extractors import OperatorLineage
from attr import define, field

from airflow_batch_runner import lineage
from airflow_batch_runner.lineage import JobFiles

RUN_FACET = "awsBatchJob"


@define
class AwsBatchJobRunFacet(RunFacet):
    """The AWS Batch job a task ran: its id, ARN, name, queue, last status, attempts, array size and console
    page."""

    jobId: str | None = field(default=None)  # OpenLineage facets name their fields in camelCase
    jobArn: str | None = field(default=None)
    jobName: str | None = field(default=None)
    jobQueue: str | None = field(default=None)
    status: str | None = field(default=None)
    attempts: int = field(default=0)
    arraySize: int | None = field(default=None)
    consoleUrl: str | None = field(default=None)


def operator_lineage(files: JobFiles, description: Mapping[str, Any] | None, console_url: str | None) -> Any:
    """The ``OperatorLineage`` of what the task knows now (``description``: the job's DescribeJobs entry, once
    there is a job)."""
    run_facets = {}
    if description:
        run_facets[RUN_FACET] = AwsBatchJobRunFacet(**lineage.job_fields(description, console_url))
    return OperatorLineage(
        inputs=[Dataset(*lineage.dataset(uri)) for uri in lineage.read(files)],
        outputs=[Dataset(*lineage.dataset(uri)) for uri in lineage.written(files)],
        run_facets=run_facets,
    )


def identity_env(ti: Any) -> dict[str, str]:
    """The container's environment naming the task's OpenLineage run, as the provider's macros give it; empty
    when OpenLineage is disabled (no transport configured, or ``[openlineage] disabled``)."""
    if conf.is_disabled():
        return {}
    from airflow.providers.openlineage.plugins import macros

    root = (macros.lineage_root_job_namespace(ti), macros.lineage_root_job_name(ti), macros.lineage_root_run_id(ti))
    return lineage.identity_env(macros.lineage_job_namespace(), macros.lineage_job_name(ti),
                                str(macros.lineage_run_id(ti)), root)
