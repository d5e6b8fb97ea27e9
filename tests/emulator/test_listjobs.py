"""ListJobs: by queue and status, the JOB_NAME / JOB_DEFINITION / *_CREATED_AT filters, pages and summaries."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.emulator import helpers
from tests.emulator.test_batch_validation import refused


def _list_all(batch: Any, **params: Any) -> list[dict[str, Any]]:
    """Every summary ListJobs returns, following nextToken."""
    out: list[dict[str, Any]] = []
    token = None
    while True:
        page = batch.list_jobs(**params, **({"nextToken": token} if token else {}))
        out.extend(page["jobSummaryList"])
        token = page.get("nextToken")
        if not token:
            return out


def _names(summaries: list[dict[str, Any]]) -> set[str]:
    return {s["jobName"] for s in summaries}


def _by_name(value: str) -> list[dict[str, Any]]:
    return [{"name": "JOB_NAME", "values": [value]}]


@pytest.fixture
def populated(batch: Any, ec2_queue: str) -> dict[str, Any]:
    """alpha-1..3 (SUCCEEDED), then beta-run (RUNNING), beta-fail (FAILED), Alpha-Late (SUCCEEDED)."""
    ok = helpers.register_container(batch, ["true"], name="ok")["jobDefinitionArn"]
    fail = helpers.register_container(batch, ["sh", "-c", "exit 5"], name="fail")["jobDefinitionArn"]
    slow = helpers.register_container(batch, ["sleep", "30"], name="slow")["jobDefinitionArn"]
    first = [helpers.submit(batch, ec2_queue, ok, name=f"alpha-{i}") for i in (1, 2, 3)]
    done = [helpers.wait_for_status(batch, job_id) for job_id in first]
    time.sleep(0.01)
    ids = {
        "beta-run": helpers.submit(batch, ec2_queue, slow, name="beta-run"),
        "beta-fail": helpers.submit(batch, ec2_queue, fail, name="beta-fail"),
        "Alpha-Late": helpers.submit(batch, ec2_queue, ok, name="Alpha-Late"),
    }
    helpers.wait_for_status(batch, ids["beta-run"], ["RUNNING"])
    helpers.wait_for_status(batch, ids["beta-fail"])
    helpers.wait_for_status(batch, ids["Alpha-Late"])
    ids.update({f"alpha-{i}": job_id for i, job_id in zip((1, 2, 3), first, strict=True)})
    return {"queue": ec2_queue, "ids": ids, "threshold": max(j["createdAt"] for j in done)}


def test_by_queue_and_status(batch: Any, populated: dict[str, Any]) -> None:
    queue = populated["queue"]
    assert _names(_list_all(batch, jobQueue=queue, jobStatus="SUCCEEDED")) == {
        "alpha-1", "alpha-2", "alpha-3", "Alpha-Late",
    }
    assert _names(_list_all(batch, jobQueue=queue, jobStatus="FAILED")) == {"beta-fail"}
    assert _names(_list_all(batch, jobQueue=queue, jobStatus="RUNNING")) == {"beta-run"}
    assert _names(_list_all(batch, jobQueue=queue)) == {"beta-run"}, "RUNNING is the default status"
    assert _list_all(batch, jobQueue=queue, jobStatus="RUNNABLE") == []
    # By ARN or by name.
    name = queue.rsplit("/", 1)[-1]
    assert _names(_list_all(batch, jobQueue=name, jobStatus="FAILED")) == {"beta-fail"}


def test_job_name_filter_exact_and_prefix_returns_every_status(batch: Any, populated: dict[str, Any]) -> None:
    queue = populated["queue"]
    exact = _list_all(batch, jobQueue=queue, filters=_by_name("alpha-2"))
    assert [s["jobId"] for s in exact] == [populated["ids"]["alpha-2"]]
    # Case-insensitive, as on AWS.
    assert _names(_list_all(batch, jobQueue=queue, filters=_by_name("ALPHA-2"))) == {"alpha-2"}
    assert _names(_list_all(batch, jobQueue=queue, filters=_by_name("alpha*"))) == {
        "alpha-1", "alpha-2", "alpha-3", "Alpha-Late",
    }
    betas = _list_all(batch, jobQueue=queue, filters=_by_name("beta-*"), jobStatus="SUCCEEDED")
    assert {(s["jobName"], s["status"]) for s in betas} == {("beta-run", "RUNNING"), ("beta-fail", "FAILED")}
    assert _list_all(batch, jobQueue=queue, filters=_by_name("alpha")) == [], "no * means an exact name"
    assert _list_all(batch, jobQueue=queue, filters=_by_name("gamma*")) == []


def test_after_and_before_created_at_filters(batch: Any, populated: dict[str, Any]) -> None:
    queue = populated["queue"]
    after = _list_all(
        batch, jobQueue=queue, filters=[{"name": "AFTER_CREATED_AT", "values": [str(populated["threshold"])]}]
    )
    assert {(s["jobName"], s["status"]) for s in after} == {
        ("beta-run", "RUNNING"),
        ("beta-fail", "FAILED"),
        ("Alpha-Late", "SUCCEEDED"),
    }
    before = _list_all(
        batch, jobQueue=queue, filters=[{"name": "BEFORE_CREATED_AT", "values": [str(populated["threshold"] + 1)]}]
    )
    assert _names(before) == {"alpha-1", "alpha-2", "alpha-3"}


def test_job_definition_filter(batch: Any, populated: dict[str, Any]) -> None:
    queue = populated["queue"]
    flt = [{"name": "JOB_DEFINITION", "values": ["fail"]}]
    assert _names(_list_all(batch, jobQueue=queue, filters=flt)) == {"beta-fail"}
    flt = [{"name": "JOB_DEFINITION", "values": ["ok:1"]}]
    assert _names(_list_all(batch, jobQueue=queue, filters=flt)) == {"alpha-1", "alpha-2", "alpha-3", "Alpha-Late"}


def test_summaries(batch: Any, populated: dict[str, Any]) -> None:
    queue, ids = populated["queue"], populated["ids"]
    summaries = {s["jobName"]: s for s in _list_all(batch, jobQueue=queue, filters=_by_name("*"))}
    assert set(summaries) == set(ids)

    failed = summaries["beta-fail"]
    described = helpers.describe(batch, ids["beta-fail"])
    for key in ("jobArn", "jobId", "jobName", "createdAt", "startedAt", "stoppedAt", "status", "statusReason"):
        assert failed[key] == described[key], key
    assert failed["status"] == "FAILED"
    assert failed["statusReason"] == "Essential container in task exited"
    assert failed["container"] == {"exitCode": 5}
    assert failed["jobDefinition"].endswith(":job-definition/fail:1")

    running = summaries["beta-run"]
    assert running["status"] == "RUNNING"
    assert "startedAt" in running and "stoppedAt" not in running
    assert "exitCode" not in running.get("container", {})

    assert summaries["alpha-1"]["container"] == {"exitCode": 0}
    assert summaries["alpha-1"]["createdAt"] <= summaries["alpha-1"]["startedAt"] <= summaries["alpha-1"]["stoppedAt"]


def test_pages_with_max_results_and_next_token(batch: Any, ec2_queue: str) -> None:
    definition = helpers.register_container(batch, ["true"])["jobDefinitionArn"]
    ids = {helpers.submit(batch, ec2_queue, definition, name=f"page-{i}") for i in range(8)}
    for job_id in ids:
        helpers.wait_for_status(batch, job_id)

    def pages(**params: Any) -> list[list[str]]:
        out, token = [], None
        while True:
            more: dict[str, Any] = {"nextToken": token} if token else {}
            page = batch.list_jobs(jobQueue=ec2_queue, maxResults=3, **params, **more)
            out.append([s["jobId"] for s in page["jobSummaryList"]])
            token = page.get("nextToken")
            if token is None:
                return out

    for params in ({"filters": _by_name("page-*")}, {"jobStatus": "SUCCEEDED"}):
        seen = pages(**params)
        assert [len(p) for p in seen] == [3, 3, 2], params
        flat = [job_id for page in seen for job_id in page]
        assert len(flat) == len(set(flat)) == 8
        assert set(flat) == ids

    paginator = batch.get_paginator("list_jobs")
    found = [
        s["jobId"]
        for page in paginator.paginate(
            jobQueue=ec2_queue, filters=_by_name("page-*"), PaginationConfig={"PageSize": 3}
        )
        for s in page["jobSummaryList"]
    ]
    assert sorted(found) == sorted(ids)


def test_list_jobs_errors(batch: Any, ec2_queue: str) -> None:
    assert "does not exist" in refused(batch.list_jobs, jobQueue="no-such-queue")
    assert "JOB_NAME" in refused(batch.list_jobs, jobQueue=ec2_queue, filters=[{"name": "COLOR", "values": ["red"]}])
    assert "nextToken" in refused(batch.list_jobs, jobQueue=ec2_queue, nextToken="not-a-token")


# "Only one filter can be used at a time. When the filter is used, jobStatus is ignored with the exception
# that SHARE_IDENTIFIER and jobStatus can be used together." (ListJobs, filters)


def test_two_filters_at_once_are_refused(batch: Any, ec2_queue: str) -> None:
    message = refused(
        batch.list_jobs, jobQueue=ec2_queue,
        filters=[*_by_name("a*"), {"name": "AFTER_CREATED_AT", "values": ["0"]}],
    )
    assert "one filter" in message


@pytest.mark.parametrize("status", ["DONE", "running", ""])
def test_a_job_status_that_is_not_one_of_the_enum_is_refused(batch: Any, ec2_queue: str, status: str) -> None:
    message = refused(batch.list_jobs, jobQueue=ec2_queue, jobStatus=status)
    assert "jobStatus" in message and "RUNNABLE" in message


def test_describe_job_definitions_with_an_unknown_status_is_refused(batch: Any) -> None:
    message = refused(batch.describe_job_definitions, status="GONE")
    assert "ACTIVE" in message and "INACTIVE" in message


def test_share_identifier_filter_with_and_without_job_status(batch: Any) -> None:
    policy = batch.create_scheduling_policy(name=helpers.unique("policy"), fairsharePolicy={})["arn"]
    queue = helpers.create_queue(batch, helpers.create_compute_environment(batch), schedulingPolicyArn=policy)
    ok = helpers.register_container(batch, ["true"])["jobDefinitionArn"]
    slow = helpers.register_container(batch, ["sleep", "30"])["jobDefinitionArn"]
    done_a = helpers.submit(batch, queue, ok, shareIdentifier="teamA")
    running_a = helpers.submit(batch, queue, slow, shareIdentifier="teamA")
    done_b = helpers.submit(batch, queue, ok, shareIdentifier="teamB")
    helpers.wait_for_status(batch, done_a)
    helpers.wait_for_status(batch, done_b)
    helpers.wait_for_status(batch, running_a, ("RUNNING",))
    share_a = [{"name": "SHARE_IDENTIFIER", "values": ["teamA"]}]
    assert {s["jobId"] for s in _list_all(batch, jobQueue=queue, filters=share_a)} == {done_a, running_a}
    running = _list_all(batch, jobQueue=queue, filters=share_a, jobStatus="RUNNING")
    assert [s["jobId"] for s in running] == [running_a]
    batch.terminate_job(jobId=running_a, reason="test over")
