"""The extra links: persisted before the wait, the log stream's once AWS names it, on both paths."""

from __future__ import annotations

import pytest
from airflow.providers.amazon.aws.links.logs import CloudWatchEventsLink

from tests.e2e.conftest import AwsWorld, link_data, run_dag
from tests.e2e.test_failures import task_dag, the_job


def test_a_job_that_never_starts_still_has_both_links(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    # Persisted before the wait: the job's page, and the log group's search while no stream exists.
    queue = aws.queue_where_jobs_never_start("never-starts")
    dag = task_dag("links_never_start", bucket=None, job_queue_arn=queue, commands=["true"], wait_until_completion=2)
    result = run_dag(dag, capsys)
    assert result.state == "failed"
    links = link_data(dag.dag_id, result.run_id)
    assert links["batch_job_details"]["job_id"] == the_job(aws, "links_never_start", queue)["jobId"]
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
    links = link_data(dag.dag_id, result.run_id)
    stream = aws.main_log_stream(result.xcom["job_id"])
    assert links["batch_job_details"]["job_id"] == result.xcom["job_id"]
    assert links["cloudwatch_events"]["awslogs_stream_name"] == stream
    url = CloudWatchEventsLink().format_link(**links["cloudwatch_events"])
    assert url.endswith("/log-events/" + stream.replace("/", "%2F"))
