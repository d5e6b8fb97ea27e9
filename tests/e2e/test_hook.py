"""BatchRunnerHook against the emulator: what parallel tasks do to shared resources."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from airflow_batch_runner.emulator.testing import control
from airflow_batch_runner.hooks.batch_runner import BatchRunnerHook, ConnectionOverrides
from airflow_batch_runner.job_spec import queue_name_for
from tests.e2e.conftest import AwsWorld


def _hook(aws: AwsWorld) -> BatchRunnerHook:
    return BatchRunnerHook(aws_conn_id=None, region_name="us-east-1",
                           overrides=ConnectionOverrides(endpoint_override=aws.url))


def test_parallel_tasks_racing_to_create_the_queue_all_get_the_same_one(aws: AwsWorld) -> None:
    name = queue_name_for(aws.ec2_ce)
    # Hold each task's first look, so that all of them see no queue and all try to create it.
    control(aws.url, "faults", {"batch:DescribeJobQueues": {"delay": 2, "count": 8}})
    # Each hook and its client made first: on a loaded host, making them in the threads spread the first looks
    # past the first creation, and the race did not happen.
    hooks = [_hook(aws) for _ in range(8)]
    for hook in hooks:
        assert hook.batch is not None
    try:
        with ThreadPoolExecutor(8) as pool:
            arns = list(pool.map(lambda hook: hook.ensure_job_queue(name, aws.ec2_ce), hooks))
    finally:
        control(aws.url, "faults", {})
    assert len(set(arns)) == 1
    queues = [q for q in aws.client("batch").describe_job_queues()["jobQueues"] if q["jobQueueName"] == name]
    assert len(queues) == 1
    assert queues[0]["status"] == "VALID"
    assert aws.calls()["CreateJobQueue"] >= 2  # the race really happened: some lost it


def test_parallel_registration_of_one_definition_leaves_active_revisions_that_all_work(aws: AwsWorld) -> None:
    from airflow_batch_runner.job_spec import JobSpec, Resources, build_job_definition

    spec = JobSpec(image="busybox", commands=("true",), platform="EC2", resources=Resources(1, 2048))
    request = build_job_definition(spec)
    with ThreadPoolExecutor(4) as pool:
        arns = list(pool.map(lambda _: _hook(aws).ensure_job_definition(request), range(4)))
    found = aws.client("batch").describe_job_definitions(jobDefinitionName=request["jobDefinitionName"],
                                                         status="ACTIVE")["jobDefinitions"]
    assert {d["jobDefinitionArn"] for d in found} >= set(arns)
    assert _hook(aws).ensure_job_definition(request) == max(found, key=lambda d: d["revision"])["jobDefinitionArn"]


def test_every_client_of_a_task_names_the_operator_in_its_user_agent(aws: AwsWorld) -> None:
    hook = BatchRunnerHook(aws_conn_id=None, region_name="us-east-1", caller="BatchRunnerOperator",
                           overrides=ConnectionOverrides(endpoint_override=aws.url))
    for client in (hook.batch, hook.s3.conn, hook.logs.conn):
        assert "Caller/BatchRunnerOperator" in client.meta.config.user_agent_extra
        assert "Airflow/" in client.meta.config.user_agent_extra  # the rest of the provider's user agent stays


def test_a_hook_built_without_a_caller_lets_the_provider_find_it(aws: AwsWorld) -> None:
    # The provider looks for the nearest frame named "execute"; there is none here.
    assert "Caller/BatchRunnerOperator" not in _hook(aws).batch.meta.config.user_agent_extra


def test_the_log_readers_calls_are_tried_once_not_retried_by_botocore(aws: AwsWorld) -> None:
    """botocore's ``max_attempts`` counts retries (1 means two tries, the second after a jittered
    backoff of up to a second); the log readers keep their own backoff and budget and need one try."""
    import pytest
    from botocore.exceptions import ClientError

    hook = _hook(aws)
    control(aws.url, "faults", {"logs:FilterLogEvents": {"throttle_rate": 1.0},
                                "logs:GetLogEvents": {"throttle_rate": 1.0}})
    try:
        with pytest.raises(ClientError, match="Throttling"):
            hook.filter_log_events_page(["some/stream"], 0)
        with pytest.raises(ClientError, match="Throttling"):
            hook.read_log_lines("some/stream", None)
        calls = control(aws.url, "stats")["calls"]["logs"]
    finally:
        control(aws.url, "faults", {})
    assert (calls.get("FilterLogEvents"), calls.get("GetLogEvents")) == (1, 1)


def test_the_tasks_of_one_process_parse_botocores_models_once(
    aws: AwsWorld, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each task's hook has its own session, but its clients read the API models through the process's one loader
    (a loader per session parsed them again for every task); a different AWS_DATA_PATH gets a loader of its own."""
    first, second = _hook(aws), _hook(aws)
    assert first.batch is not None and second.logs.conn is not None
    loaders = [h.get_session(h.region_name)._session.get_component("data_loader") for h in (first, second)]
    assert loaders[0] is loaders[1]
    assert first.get_session(first.region_name) is not second.get_session(second.region_name)
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    custom = _hook(aws)
    assert custom.batch is not None
    own = custom.get_session(custom.region_name)._session.get_component("data_loader")
    assert own is not loaders[0] and str(tmp_path) in own.search_paths
