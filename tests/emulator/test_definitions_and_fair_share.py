"""Job definitions as AWS stores them, SubmitJob's platform check, fair-share scheduling policies and
the fair-share fields of queues and jobs, request ids, and features refused by name (API reference:
RegisterJobDefinition, SubmitJob, CreateSchedulingPolicy and friends, CreateJobQueue/UpdateJobQueue)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.emulator import helpers
from tests.emulator.helpers import container
from tests.emulator.test_batch_validation import refused

EXECUTION_ROLE = helpers.EXECUTION_ROLE


def _definition(batch: Any, arn: str) -> dict[str, Any]:
    found: dict[str, Any] = batch.describe_job_definitions(jobDefinitions=[arn])["jobDefinitions"][0]
    return found


@pytest.mark.parametrize("platform", ["EC2", "FARGATE"])
def test_container_properties_get_the_defaults_aws_fills_in(batch: Any, platform: str) -> None:
    properties: dict[str, Any] = {"image": "busybox", "resourceRequirements": helpers.resources("1", "2048")}
    if platform == "FARGATE":
        properties.update(executionRoleArn=EXECUTION_ROLE, networkConfiguration=helpers.FARGATE_NETWORK)
    arn = batch.register_job_definition(
        jobDefinitionName=helpers.unique("defaults"), type="container", platformCapabilities=[platform],
        containerProperties=properties,
    )["jobDefinitionArn"]
    stored = _definition(batch, arn)
    props = stored["containerProperties"]
    for name in ("command", "environment", "mountPoints", "volumes", "ulimits", "secrets"):
        assert props[name] == [], name
    assert props["resourceRequirements"] == helpers.resources("1", "2048")
    if platform == "FARGATE":
        assert props["fargatePlatformConfiguration"] == {"platformVersion": "LATEST"}
    else:
        assert "fargatePlatformConfiguration" not in props
    assert "propagateTags" not in stored


@pytest.mark.parametrize("propagate", [True, False])
def test_propagate_tags_is_reported_when_given(batch: Any, propagate: bool) -> None:
    arn = helpers.register_container(batch, ["true"], propagateTags=propagate)["jobDefinitionArn"]
    assert _definition(batch, arn)["propagateTags"] is propagate


def test_evaluate_on_exit_actions_are_stored_in_lower_case(raw_batch: Any) -> None:
    rules = [{"onStatusReason": "Host*", "action": "RETRY"}, {"onExitCode": "1", "action": "Exit"}]
    arn = helpers.register_container(
        raw_batch, ["true"], retryStrategy={"attempts": 3, "evaluateOnExit": rules}
    )["jobDefinitionArn"]
    assert _definition(raw_batch, arn)["retryStrategy"]["evaluateOnExit"] == [
        {"onStatusReason": "Host*", "action": "retry"}, {"onExitCode": "1", "action": "exit"},
    ]
    message = refused(
        helpers.register_container, raw_batch, ["true"],
        retryStrategy={"attempts": 2, "evaluateOnExit": [{"onExitCode": "1", "action": "IGNORE"}]},
    )
    assert "action must be RETRY or EXIT" in message


def test_a_job_its_queue_cannot_run_is_refused_at_submit(batch: Any, ec2_queue: str, fargate_queue: str) -> None:
    fargate = helpers.register_ecs(batch, [container("main", ["true"])], fargate=True)["jobDefinitionArn"]
    ec2 = helpers.register_ecs(batch, [container("main", ["true"])])["jobDefinitionArn"]
    message = refused(batch.submit_job, jobName="j", jobQueue=ec2_queue, jobDefinition=fargate)
    assert "FARGATE" in message and "EC2" in message
    message = refused(batch.submit_job, jobName="j", jobQueue=fargate_queue, jobDefinition=ec2)
    assert "EC2" in message and "FARGATE" in message


def test_every_answer_carries_a_request_id(batch: Any, ec2_queue: str) -> None:
    ok = batch.describe_job_queues(jobQueues=[ec2_queue])["ResponseMetadata"]
    assert ok["RequestId"] and ok["HTTPHeaders"]["x-amzn-requestid"] == ok["RequestId"]
    with pytest.raises(Exception) as excinfo:
        batch.describe_jobs(jobs=[str(i) for i in range(101)])
    failed = excinfo.value.response["ResponseMetadata"]  # type: ignore[attr-defined]
    assert failed["RequestId"] and failed["RequestId"] != ok["RequestId"]


@pytest.mark.parametrize(
    ("operation", "member", "value"),
    [
        ("submit_job", "nodeOverrides", {"numNodes": 2}),
        ("submit_job", "eksPropertiesOverride", {"podProperties": {}}),
        ("register_job_definition", "nodeProperties", {"numNodes": 2, "mainNode": 0, "nodeRangeProperties": []}),
        ("register_job_definition", "eksProperties", {"podProperties": {"containers": []}}),
        ("create_job_queue", "serviceEnvironmentOrder", [{"order": 1, "serviceEnvironment": "se"}]),
    ],
)
def test_features_not_implemented_are_refused_by_name(
    raw_batch: Any, ec2_queue: str, operation: str, member: str, value: Any
) -> None:
    bases: dict[str, dict[str, Any]] = {
        "submit_job": {"jobName": "j", "jobQueue": ec2_queue, "jobDefinition": "whatever"},
        "register_job_definition": {"jobDefinitionName": "d", "type": "multinode"},
        "create_job_queue": {"jobQueueName": "q", "priority": 1, "computeEnvironmentOrder": []},
    }
    base = bases[operation]
    message = refused(getattr(raw_batch, operation), **base, **{member: value})
    assert member in message and "not supported" in message


# Fair-share scheduling policies


def _policy(batch: Any, name: str | None = None, **fairshare: Any) -> str:
    arn: str = batch.create_scheduling_policy(
        name=name or helpers.unique("policy"), fairsharePolicy=fairshare, tags={"team": "a"}
    )["arn"]
    return arn


def test_scheduling_policy_lifecycle(batch: Any) -> None:
    shares = [{"shareIdentifier": "teamA", "weightFactor": 0.5}, {"shareIdentifier": "teamB*", "weightFactor": 2.0}]
    arn = _policy(batch, "fair", shareDecaySeconds=3600, computeReservation=10, shareDistribution=shares)
    assert arn == "arn:aws:batch:us-east-1:123456789012:scheduling-policy/fair"
    policy = batch.describe_scheduling_policies(arns=[arn, arn + "-missing"])["schedulingPolicies"]
    assert policy == [{
        "name": "fair", "arn": arn, "tags": {"team": "a"},
        "fairsharePolicy": {"shareDecaySeconds": 3600, "computeReservation": 10, "shareDistribution": shares},
    }]
    assert batch.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "a"}
    batch.update_scheduling_policy(arn=arn, fairsharePolicy={"shareDecaySeconds": 60})
    assert batch.describe_scheduling_policies(arns=[arn])["schedulingPolicies"][0]["fairsharePolicy"] == {
        "shareDecaySeconds": 60
    }
    second = _policy(batch)
    listed = batch.list_scheduling_policies(maxResults=1)
    assert len(listed["schedulingPolicies"]) == 1 and listed["nextToken"]
    rest = batch.list_scheduling_policies(maxResults=1, nextToken=listed["nextToken"])["schedulingPolicies"]
    assert {p["arn"] for p in listed["schedulingPolicies"] + rest} == {arn, second}
    assert "already exists" in refused(_policy, batch, "fair")
    batch.delete_scheduling_policy(arn=arn)
    assert batch.describe_scheduling_policies(arns=[arn])["schedulingPolicies"] == []
    assert "does not exist" in refused(batch.delete_scheduling_policy, arn=arn)


@pytest.mark.parametrize(
    ("fairshare", "expected"),
    [
        ({"shareDecaySeconds": 604_801}, "shareDecaySeconds"),
        ({"computeReservation": 100}, "computeReservation"),
        ({"shareDistribution": [{"shareIdentifier": "bad id!"}]}, "shareIdentifier"),
        ({"shareDistribution": [{"shareIdentifier": "a", "weightFactor": 1000}]}, "weightFactor"),
        ({"shareDistribution": [{"shareIdentifier": "UserA*"}, {"shareIdentifier": "UserA1"}]}, "overlap"),
    ],
)
def test_fairshare_policy_rules(batch: Any, fairshare: dict[str, Any], expected: str) -> None:
    assert expected in refused(_policy, batch, None, **fairshare)


def test_fair_share_queue_needs_a_share_identifier_and_reports_priorities(batch: Any) -> None:
    policy = _policy(batch, shareDistribution=[{"shareIdentifier": "teamA"}])
    ce = helpers.create_compute_environment(batch)
    queue = batch.create_job_queue(
        jobQueueName=helpers.unique("fair"), priority=1, schedulingPolicyArn=policy,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}],
    )["jobQueueArn"]
    helpers.wait_until(lambda: helpers.queue_status(batch, queue) == "VALID")
    assert batch.describe_job_queues(jobQueues=[queue])["jobQueues"][0]["schedulingPolicyArn"] == policy
    definition = helpers.register_container(batch, ["true"], schedulingPriority=10)["jobDefinitionArn"]
    assert _definition(batch, definition)["schedulingPriority"] == 10

    assert "shareIdentifier is required" in refused(
        batch.submit_job, jobName="j", jobQueue=queue, jobDefinition=definition
    )
    assert "schedulingPriorityOverride" in refused(
        batch.submit_job, jobName="j", jobQueue=queue, jobDefinition=definition, shareIdentifier="teamA",
        schedulingPriorityOverride=10_000,
    )
    default = helpers.submit(batch, queue, definition, shareIdentifier="teamA")
    override = helpers.submit(batch, queue, definition, shareIdentifier="teamA", schedulingPriorityOverride=99)
    for job_id, priority in ((default, 10), (override, 99)):
        job = helpers.wait_for_status(batch, job_id)
        assert (job["status"], job["shareIdentifier"], job["schedulingPriority"]) == ("SUCCEEDED", "teamA", priority)
    summaries = batch.list_jobs(jobQueue=queue, jobStatus="SUCCEEDED")["jobSummaryList"]
    assert {s["shareIdentifier"] for s in summaries} == {"teamA"}

    # The policy can be replaced, never removed; a policy in use can't be deleted.
    other = _policy(batch)
    batch.update_job_queue(jobQueue=queue, schedulingPolicyArn=other)
    assert batch.describe_job_queues(jobQueues=[queue])["jobQueues"][0]["schedulingPolicyArn"] == other
    assert "used by job queue" in refused(batch.delete_scheduling_policy, arn=other)
    batch.delete_scheduling_policy(arn=policy)


def test_a_job_share_identifier_is_255_alphanumeric_characters_at_most_and_an_optional_asterisk(batch: Any) -> None:
    # SubmitJob: "This string is limited to 255 alphanumeric characters, and can be followed by an asterisk (*)."
    ce = helpers.create_compute_environment(batch)
    queue = batch.create_job_queue(
        jobQueueName=helpers.unique("fair"), priority=1, schedulingPolicyArn=_policy(batch),
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}],
    )["jobQueueArn"]
    helpers.wait_until(lambda: helpers.queue_status(batch, queue) == "VALID")
    definition = helpers.register_container(batch, ["true"])["jobDefinitionArn"]
    for share in ("team_A", "team-a", "team a", "a" * 256, "blue**", "*"):
        message = refused(batch.submit_job, jobName="j", jobQueue=queue, jobDefinition=definition,
                          shareIdentifier=share)
        assert "shareIdentifier" in message, share
    for share in ("teamA", "a" * 255, "blue*"):
        helpers.submit(batch, queue, definition, shareIdentifier=share)


def test_fifo_queue_refuses_share_identifiers_and_a_policy(batch: Any, ec2_queue: str) -> None:
    definition = helpers.register_container(batch, ["true"])["jobDefinitionArn"]
    assert "no fair-share scheduling policy" in refused(
        batch.submit_job, jobName="j", jobQueue=ec2_queue, jobDefinition=definition, shareIdentifier="teamA"
    )
    assert "FIFO" in refused(batch.update_job_queue, jobQueue=ec2_queue, schedulingPolicyArn=_policy(batch))
    assert "does not exist" in refused(
        batch.create_job_queue, jobQueueName="q", priority=1,
        schedulingPolicyArn="arn:aws:batch:us-east-1:123456789012:scheduling-policy/none",
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": helpers.create_compute_environment(batch)}],
    )


@pytest.fixture
def raw_batch(emulator_url: str) -> Any:
    return helpers.client(emulator_url, "batch", parameter_validation=False)


def test_aws_cli_sees_the_same_rules(emulator_url: str, ec2_queue: str) -> None:
    """The AWS CLI as a second client: an array job's children, and a refused array size."""
    import json
    import os
    import shutil
    import subprocess
    import sys

    aws = shutil.which("aws", path=os.path.dirname(sys.executable)) or "aws"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([aws, "--endpoint-url", emulator_url, "batch", *args, "--output", "json"],
                              capture_output=True, text=True, env=env, timeout=60)

    batch = helpers.client(emulator_url, "batch")
    definition = helpers.register_container(batch, ["true"])["jobDefinitionArn"]
    refused_size = cli("submit-job", "--job-name", "j", "--job-queue", ec2_queue, "--job-definition", definition,
                       "--array-properties", "size=1")
    assert refused_size.returncode != 0 and "arrayProperties.size" in refused_size.stderr
    submitted = cli("submit-job", "--job-name", "j", "--job-queue", ec2_queue, "--job-definition", definition,
                    "--array-properties", "size=3")
    parent = json.loads(submitted.stdout)["jobId"]
    helpers.wait_for_status(batch, parent)
    listed = json.loads(cli("list-jobs", "--array-job-id", parent, "--job-status", "SUCCEEDED").stdout)
    assert sorted(s["jobId"] for s in listed["jobSummaryList"]) == [f"{parent}:{i}" for i in range(3)]
