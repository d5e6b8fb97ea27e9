"""The control endpoints: injected throttling and errors as each service answers them, and call statistics."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from airflow_batch_runner.emulator.testing import control
from tests.emulator import helpers

NO_RETRIES: dict[str, Any] = {"retries": {"total_max_attempts": 1}}


def _expect_error(call: Any, **kwargs: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as excinfo:
        call(**kwargs)
    return helpers.client_error(excinfo)


def _calls(url: str, service: str, operation: str) -> int:
    return int(control(url, "stats")["calls"].get(service, {}).get(operation, 0))


def test_batch_throttling_is_retried_by_default(emulator_url: str) -> None:
    batch = helpers.client(emulator_url, "batch")  # botocore's default retries
    control(emulator_url, "faults", {"batch:DescribeJobs": {"throttle_rate": 1.0, "count": 2}})
    assert batch.describe_jobs(jobs=["none"])["jobs"] == []
    stats = control(emulator_url, "stats")
    assert stats["injected"] == {"batch:DescribeJobs": 2}
    assert stats["calls"]["batch"]["DescribeJobs"] == 3
    # The fault is used up.
    assert batch.describe_jobs(jobs=["none"])["jobs"] == []
    assert control(emulator_url, "stats")["injected"] == {"batch:DescribeJobs": 2}


def test_batch_throttling_without_retries(emulator_url: str) -> None:
    batch = helpers.client(emulator_url, "batch", **NO_RETRIES)
    control(emulator_url, "faults", {"batch:DescribeJobs": {"throttle_rate": 1.0, "count": 2}})
    assert _expect_error(batch.describe_jobs, jobs=["none"])[::2] == ("TooManyRequestsException", 429)
    assert _expect_error(batch.describe_jobs, jobs=["none"])[0] == "TooManyRequestsException"
    assert batch.describe_jobs(jobs=["none"])["jobs"] == []
    assert control(emulator_url, "stats")["injected"] == {"batch:DescribeJobs": 2}


def test_faults_only_hit_their_operation(emulator_url: str) -> None:
    batch = helpers.client(emulator_url, "batch", **NO_RETRIES)
    control(emulator_url, "faults", {"batch:DescribeJobs": {"throttle_rate": 1.0}})
    assert batch.describe_job_queues()["jobQueues"] == []
    for _ in range(3):
        assert _expect_error(batch.describe_jobs, jobs=["none"])[0] == "TooManyRequestsException"
    assert control(emulator_url, "stats")["injected"] == {"batch:DescribeJobs": 3}


def test_logs_throttling(emulator_url: str) -> None:
    logs = helpers.client(emulator_url, "logs")  # botocore's default retries
    logs.create_log_group(logGroupName="g")
    logs.create_log_stream(logGroupName="g", logStreamName="s")
    control(emulator_url, "faults", {"logs:GetLogEvents": {"throttle_rate": 1.0, "count": 2}})
    assert logs.get_log_events(logGroupName="g", logStreamName="s")["events"] == []
    assert control(emulator_url, "stats")["injected"] == {"logs:GetLogEvents": 2}

    control(emulator_url, "faults", {"logs:GetLogEvents": {"throttle_rate": 1.0, "count": 1}})
    raw = helpers.client(emulator_url, "logs", **NO_RETRIES)
    code, _, status = _expect_error(raw.get_log_events, logGroupName="g", logStreamName="s")
    assert (code, status) == ("ThrottlingException", 400)
    assert raw.get_log_events(logGroupName="g", logStreamName="s")["events"] == []


def test_s3_throttling(emulator_url: str) -> None:
    s3 = helpers.client(emulator_url, "s3")  # botocore's default retries
    s3.create_bucket(Bucket="slow")
    s3.put_object(Bucket="slow", Key="k", Body=b"v")
    control(emulator_url, "faults", {"s3:GetObject": {"throttle_rate": 1.0, "count": 2}})
    assert s3.get_object(Bucket="slow", Key="k")["Body"].read() == b"v"
    assert control(emulator_url, "stats")["injected"] == {"s3:GetObject": 2}

    control(emulator_url, "faults", {"s3:PutObject": {"throttle_rate": 1.0, "count": 1}})
    raw = helpers.client(emulator_url, "s3", **NO_RETRIES)
    code, _, status = _expect_error(raw.put_object, Bucket="slow", Key="k2", Body=b"v")
    assert (code, status) == ("SlowDown", 503)
    raw.put_object(Bucket="slow", Key="k2", Body=b"v2")
    assert s3.get_object(Bucket="slow", Key="k2")["Body"].read() == b"v2"


def test_injected_errors_with_code_and_status(emulator_url: str) -> None:
    batch = helpers.client(emulator_url, "batch", **NO_RETRIES)
    control(
        emulator_url,
        "faults",
        {"batch:*": {"error_rate": 1.0, "error_code": "ServerException", "error_status": 500, "count": 1}},
    )
    code, message, status = _expect_error(batch.describe_job_queues)
    assert (code, status) == ("ServerException", 500)
    assert message == "Injected failure"
    assert batch.describe_job_queues()["jobQueues"] == []
    assert control(emulator_url, "stats")["injected"] == {"batch:DescribeJobQueues": 1}


def test_faults_are_replaced_and_reset(emulator_url: str) -> None:
    batch = helpers.client(emulator_url, "batch", **NO_RETRIES)
    control(emulator_url, "faults", {"batch:DescribeJobs": {"throttle_rate": 1.0}})
    control(emulator_url, "faults", {"batch:ListJobs": {"throttle_rate": 1.0}})
    assert batch.describe_jobs(jobs=["x"])["jobs"] == [], "a new fault set replaces the old one"
    control(emulator_url, "reset", {})
    assert batch.describe_jobs(jobs=["x"])["jobs"] == []
    assert control(emulator_url, "stats")["injected"] == {}


@pytest.mark.parametrize(
    "spec", [{"DescribeJobs": {"throttle_rate": 1.0}}, {"batch:DescribeJobs": {"throttle": 1.0}}]
)
def test_bad_fault_specs_are_refused(emulator_url: str, spec: dict[str, Any]) -> None:
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        control(emulator_url, "faults", spec)
    assert excinfo.value.code == 400
    assert json.loads(excinfo.value.read())["message"]


def test_unknown_control_endpoint(emulator_url: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(f"{emulator_url}/_emulator/nothing", timeout=10)
    assert excinfo.value.code == 404


def test_stats_count_calls_by_service_and_operation(emulator_url: str) -> None:
    stats = control(emulator_url, "stats")
    assert (stats["calls"], stats["injected"], stats["total"], stats["jobs"]) == ({}, {}, 0, {})

    batch = helpers.client(emulator_url, "batch")
    s3 = helpers.client(emulator_url, "s3")
    logs = helpers.client(emulator_url, "logs")
    queue = helpers.create_queue_for(batch)
    definition = helpers.register_container(batch, ["true"])["jobDefinitionArn"]
    job_id = helpers.submit(batch, queue, definition)
    helpers.wait_for_status(batch, job_id)
    blocked = helpers.create_queue(batch, helpers.create_compute_environment(batch, state="DISABLED"))
    waiting = helpers.submit(batch, blocked, definition)
    helpers.wait_for_status(batch, waiting, ["RUNNABLE"])
    s3.create_bucket(Bucket="counted")
    for key in ("a", "b"):
        s3.put_object(Bucket="counted", Key=key, Body=b"x")
    s3.get_object(Bucket="counted", Key="a")
    s3.list_objects_v2(Bucket="counted")
    logs.describe_log_groups()

    describe_calls = _calls(emulator_url, "batch", "DescribeJobs")
    stats = control(emulator_url, "stats")
    calls = stats["calls"]
    assert calls["batch"]["SubmitJob"] == 2
    assert calls["batch"]["RegisterJobDefinition"] == 1
    assert calls["batch"]["CreateJobQueue"] == 2
    assert calls["batch"]["CreateComputeEnvironment"] == 2
    assert calls["batch"]["DescribeJobs"] == describe_calls >= 2
    assert calls["s3"] == {"CreateBucket": 1, "PutObject": 2, "GetObject": 1, "ListObjectsV2": 1}
    assert calls["logs"] == {"DescribeLogGroups": 1}
    assert stats["total"] == sum(n for ops in calls.values() for n in ops.values())
    assert stats["jobs"] == {"SUCCEEDED": 1, "RUNNABLE": 1}

    control(emulator_url, "reset", {})
    stats = control(emulator_url, "stats")
    assert (stats["calls"], stats["total"], stats["jobs"]) == ({}, 0, {})


def test_stats_count_the_calls_still_unanswered(emulator_url: str) -> None:
    """A delayed call has taken effect but is not answered yet: ``in_flight`` counts it until it is, and
    replacing the fault set ends the hold (long before its 60 s)."""
    import threading

    s3 = helpers.client(emulator_url, "s3")
    s3.create_bucket(Bucket="held")
    control(emulator_url, "faults", {"s3:PutObject": {"delay": 60.0, "count": 1}})
    assert control(emulator_url, "stats")["in_flight"] == 0
    put = threading.Thread(target=s3.put_object, kwargs={"Bucket": "held", "Key": "k", "Body": b"x"})
    put.start()
    helpers.wait_until(lambda: control(emulator_url, "stats")["in_flight"] == 1)
    # Counted from its arrival; it takes effect a moment later (later still on a loaded host), then is held.
    listed = helpers.wait_until(lambda: s3.list_objects_v2(Bucket="held").get("Contents"), timeout=30)
    assert [o["Key"] for o in listed] == ["k"]
    assert s3.get_object(Bucket="held", Key="k")["Body"].read() == b"x", "the held call took effect"
    assert control(emulator_url, "stats")["in_flight"] == 1, "still held"
    control(emulator_url, "faults", {})
    put.join(timeout=30)
    assert not put.is_alive(), "replacing the fault set releases a held call"
    assert control(emulator_url, "stats")["in_flight"] == 0
