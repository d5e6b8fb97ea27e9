"""The extra links: persisted before the wait, the log stream's once AWS names it, on both paths."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.providers.amazon.aws.links.logs import CloudWatchEventsLink

from tests.e2e.conftest import AwsWorld, DagResult, run_dag, xcom_value
from tests.e2e.test_failures import task_dag

LINK_KEYS = ("batch_job_details", "cloudwatch_events")


def _links(dag: Any, result: DagResult) -> dict[str, dict[str, Any]]:
    found = {key: xcom_value(dag.dag_id, result.run_id, "shell", key=key) for key in LINK_KEYS}
    assert all(found.values()), f"missing link data: {found}"
    return {key: dict(value or {}) for key, value in found.items()}


def _stream_of(aws: AwsWorld, job_id: str) -> str:
    job = aws.client("batch").describe_jobs(jobs=[job_id])["jobs"][0]
    return str(job["ecsProperties"]["taskProperties"][0]["containers"][0]["logStreamName"])


def test_a_job_that_never_starts_still_has_both_links(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    # Persisted before the wait: the job's page, and the log group's search while no stream exists.
    queue = aws.queue_where_jobs_never_start("never-starts")
    dag = task_dag("links_never_start", bucket=None, job_queue_arn=queue, commands=["true"], wait_until_completion=2)
    result = run_dag(dag, capsys)
    assert result.state == "failed"
    links = _links(dag, result)
    jobs = aws.client("batch").list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": ["links_never*"]}])
    (summary,) = jobs["jobSummaryList"]
    assert links["batch_job_details"]["job_id"] == summary["jobId"]
    assert links["cloudwatch_events"]["awslogs_group"] == "/aws/batch/job"
    assert links["cloudwatch_events"]["awslogs_stream_name"] == ""
    url = CloudWatchEventsLink().format_link(**links["cloudwatch_events"])
    assert url.endswith("#logsV2:log-groups/log-group/%2Faws%2Fbatch%2Fjob/log-events/")


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_the_log_link_points_to_the_main_containers_stream(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], deferrable: bool
) -> None:
    dag = task_dag(f"links_stream_{deferrable}", bucket=None, deferrable=deferrable, commands=["echo hi"])
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    links = _links(dag, result)
    assert links["batch_job_details"]["job_id"] == result.xcom["job_id"]
    assert links["cloudwatch_events"]["awslogs_stream_name"] == _stream_of(aws, result.xcom["job_id"])
    url = CloudWatchEventsLink().format_link(**links["cloudwatch_events"])
    assert url.endswith("/log-events/" + _stream_of(aws, result.xcom["job_id"]).replace("/", "%2F"))
