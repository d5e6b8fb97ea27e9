"""What a BatchRunnerOperator tells the OpenLineage provider: its job's files as far as the task knows them, the
job's console page, and the container's lineage identity. The operator's ``get_openlineage_facets_*`` methods
call these; ``lineage`` (pure) and ``lineage_facets`` (the provider's objects) do the rest."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.links.batch import BatchJobDetailsLink

from airflow_batch_runner import arguments, array_run, array_spec, lineage, validation
from airflow_batch_runner.masking import redact

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator


def job_files(task: BatchRunnerOperator, bucket_path: str | None) -> lineage.JobFiles:
    """What the job reads and writes, as far as known: staged inputs once it has a bucket path, outputs once it
    succeeded (an array's children read from its manifest when the XCom does not hold them)."""
    array = array_spec.resolve(task.array_size, task.array_input_files, task.allowed_failures)
    outputs: list[str] = []
    prefixes: list[str] = []
    result: dict[str, Any] = task._result or {}
    if "array_size" in result and bucket_path:
        children = lineage.inline_children(result)
        if children is None:
            children = array_run.read_manifest(result, status=None, hook=task.hook)
        prefixes = lineage.child_prefixes(bucket_path, children)
    else:
        outputs = [str(uri) for uri in (result.get("output_files") or {}).values()]
    return lineage.JobFiles(
        input_files=validation.check_input_files(arguments.input_files(task.input_files)),
        project_files=sorted(task._project_file_paths()) if bucket_path else (),
        child_inputs=array.child_inputs if array else (),
        bucket_path=bucket_path,
        output_files=outputs,
        child_prefixes=prefixes,
    )


def console_url(task: BatchRunnerOperator, job_id: str) -> str:
    """The job's page in the AWS Batch console, as the "Batch Job Details" link opens it."""
    return BatchJobDetailsLink.format_str.format(
        aws_domain=BatchJobDetailsLink.get_aws_domain(task.hook.conn_partition),
        region_name=task.hook.conn_region_name, job_id=job_id,
    )


def container_env(task: BatchRunnerOperator, context: Context) -> dict[str, str]:
    """The container's environment naming the task's OpenLineage run, when the provider is installed and enabled
    (``lineage_facets.identity_env``). Lineage never fails a task: a provider that cannot tell the run leaves a
    warning and a container without it."""
    if importlib.util.find_spec("airflow.providers.openlineage") is None:
        return {}
    try:
        from airflow_batch_runner import lineage_facets

        return lineage_facets.identity_env(context["ti"])
    except Exception as exc:
        task.log.warning("The container gets no OpenLineage parent run: the provider could not tell it (%s)",
                         redact(str(exc)))
        return {}
