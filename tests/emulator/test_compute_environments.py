"""Compute environments and job queues as the AWS Batch API reference describes them: what
CreateComputeEnvironment requires of each resource type, the ECS cluster behind each environment,
UpdateComputeEnvironment and DeleteComputeEnvironment with their state rules, queue creation rules."""

from __future__ import annotations

from typing import Any

import pytest

from tests.emulator import helpers
from tests.emulator.test_batch_validation import refused

EC2 = {"type": "EC2", "maxvCpus": 8, "subnets": ["subnet-1"], "instanceRole": "ecsInstanceRole"}
FARGATE = {"type": "FARGATE", "maxvCpus": 8, "subnets": ["subnet-1"], "securityGroupIds": ["sg-1"]}


def _create(batch: Any, resources: dict[str, Any], **params: Any) -> str:
    arn: str = batch.create_compute_environment(
        computeEnvironmentName=helpers.unique("ce"), type="MANAGED", computeResources=resources, **params
    )["computeEnvironmentArn"]
    return arn


def _describe(batch: Any, arn: str) -> dict[str, Any] | None:
    found = batch.describe_compute_environments(computeEnvironments=[arn])["computeEnvironments"]
    return found[0] if found else None


def _status(batch: Any, arn: str) -> str | None:
    ce = _describe(batch, arn)
    return None if ce is None else str(ce["status"])


def test_each_compute_environment_has_its_own_ecs_cluster(batch: Any, emulator_url: str) -> None:
    ecs = helpers.client(emulator_url, "ecs")
    first, second = helpers.create_compute_environment(batch), helpers.create_compute_environment(batch)
    clusters = [_describe(batch, arn)["ecsClusterArn"] for arn in (first, second)]  # type: ignore[index]
    assert clusters[0] != clusters[1]
    assert set(clusters) <= set(ecs.list_clusters()["clusterArns"])
    described = ecs.describe_clusters(clusters=clusters)["clusters"]
    assert [c["status"] for c in described] == ["ACTIVE", "ACTIVE"]


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ({**EC2, "instanceRole": None}, "Instance role is required"),
        ({**EC2, "instanceTypes": ["m5.large", "nonexistent.huge"]}, "Instance type nonexistent.huge does not exist"),
        ({**EC2, "instanceTypes": []}, "instanceTypes"),
        ({**EC2, "minvCpus": 9}, "minvCpus"),
        ({**EC2, "type": "SPOT"}, "spotIamFleetRole"),
        ({**FARGATE, "securityGroupIds": None}, "securityGroupIds"),
        ({**FARGATE, "instanceTypes": ["optimal"]}, "instanceTypes"),
        ({**FARGATE, "minvCpus": 0}, "minvCpus"),
        ({**FARGATE, "subnets": None}, "subnets"),
        ({**EC2, "maxvCpus": None}, "maxvCpus"),
        ({**EC2, "type": "ECS_MANAGED_INSTANCES"}, "ECS_MANAGED_INSTANCES"),
    ],
)
def test_compute_resources_aws_refuses(raw_batch: Any, resources: dict[str, Any], expected: str) -> None:
    given = {k: v for k, v in resources.items() if v is not None}
    assert expected in refused(_create, raw_batch, given)


@pytest.mark.parametrize("types", [["optimal"], ["m5", "c5.xlarge"], ["default_x86_64"], ["default_arm64"]])
def test_instance_types_and_families_are_accepted(batch: Any, types: list[str]) -> None:
    assert _create(batch, {**EC2, "instanceTypes": types, "minvCpus": 0})


def test_spot_with_a_fleet_role_or_another_strategy_is_accepted(batch: Any) -> None:
    assert _create(batch, {**EC2, "type": "SPOT", "spotIamFleetRole": "arn:aws:iam::123456789012:role/fleet"})
    assert _create(batch, {**EC2, "type": "SPOT", "allocationStrategy": "SPOT_CAPACITY_OPTIMIZED"})


def test_state_must_be_enabled_or_disabled(raw_batch: Any) -> None:
    assert "ENABLED | DISABLED" in refused(_create, raw_batch, EC2, state="PAUSED")


def test_unmanaged_environment_keeps_its_unmanaged_vcpus(batch: Any) -> None:
    arn = batch.create_compute_environment(
        computeEnvironmentName=helpers.unique("unmanaged"), type="UNMANAGED", unmanagedvCpus=4
    )["computeEnvironmentArn"]
    assert _describe(batch, arn)["unmanagedvCpus"] == 4  # type: ignore[index]
    assert "unmanagedvCpus" in refused(_create, batch, EC2, unmanagedvCpus=4)


def test_update_compute_environment(batch: Any, emulator_url: str) -> None:
    arn = helpers.create_compute_environment(batch)
    with helpers.held(emulator_url, "computeEnvironments"):
        answer = batch.update_compute_environment(
            computeEnvironment=arn, state="DISABLED", computeResources={"maxvCpus": 32, "minvCpus": 2}
        )
        assert answer["computeEnvironmentArn"] == arn
        ce = _describe(batch, arn)
        assert ce is not None
        assert (ce["state"], ce["status"]) == ("DISABLED", "UPDATING")
        busy = refused(batch.update_compute_environment, computeEnvironment=arn, state="ENABLED")
        assert "updated only when VALID" in busy
    helpers.wait_until(lambda: _status(batch, arn) == "VALID")
    ce = _describe(batch, arn)
    assert ce is not None
    assert (ce["computeResources"]["maxvCpus"], ce["computeResources"]["minvCpus"]) == (32, 2)
    assert "minvCpus" in refused(
        batch.update_compute_environment, computeEnvironment=arn, computeResources={"minvCpus": 64}
    )
    assert "does not exist" in refused(batch.update_compute_environment, computeEnvironment="nope", state="ENABLED")


def test_delete_needs_a_disabled_environment_in_no_queue(batch: Any, emulator_url: str) -> None:
    ecs = helpers.client(emulator_url, "ecs")
    arn = helpers.create_compute_environment(batch)
    cluster = _describe(batch, arn)["ecsClusterArn"]  # type: ignore[index]
    queue = helpers.create_queue(batch, arn)
    assert "DISABLED" in refused(batch.delete_compute_environment, computeEnvironment=arn)
    batch.update_compute_environment(computeEnvironment=arn, state="DISABLED")
    helpers.wait_until(lambda: _status(batch, arn) == "VALID")
    assert "job queue" in refused(batch.delete_compute_environment, computeEnvironment=arn)
    batch.update_job_queue(jobQueue=queue, state="DISABLED")
    helpers.wait_until(lambda: helpers.queue_status(batch, queue) == "VALID")
    batch.delete_job_queue(jobQueue=queue)
    helpers.wait_until(lambda: helpers.queue_status(batch, queue) is None)
    with helpers.held(emulator_url, "computeEnvironments"):
        batch.delete_compute_environment(computeEnvironment=arn)
        assert _status(batch, arn) == "DELETING"
    helpers.wait_until(lambda: _status(batch, arn) is None)
    assert cluster not in ecs.list_clusters()["clusterArns"]
    assert "does not exist" in refused(batch.delete_compute_environment, computeEnvironment=arn)


# Job queues


def test_queue_state_must_be_enabled_or_disabled(raw_batch: Any) -> None:
    ce = helpers.create_compute_environment(raw_batch)
    message = refused(
        raw_batch.create_job_queue, jobQueueName="junk", state="JUNK", priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}],
    )
    assert message == "state JUNK must be one of ENABLED | DISABLED"
    queue = helpers.create_queue(raw_batch, ce)
    assert "ENABLED | DISABLED" in refused(raw_batch.update_job_queue, jobQueue=queue, state="JUNK")


def test_queue_refuses_a_compute_environment_not_yet_valid(batch: Any, emulator_url: str) -> None:
    with helpers.held(emulator_url, "computeEnvironments"):  # CREATING until the block ends
        creating = helpers.create_compute_environment(batch, wait=False)
        message = refused(
            batch.create_job_queue, jobQueueName="early", priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": creating}],
        )
    assert "VALID" in message
    helpers.wait_until(lambda: _status(batch, creating) == "VALID")
    assert helpers.create_queue(batch, creating)


def test_queue_type_follows_its_compute_environments(batch: Any) -> None:
    fargate = helpers.create_queue(batch, helpers.create_compute_environment(batch, platform="FARGATE"))
    ec2_ce = helpers.create_compute_environment(batch)
    assert batch.describe_job_queues(jobQueues=[fargate])["jobQueues"][0]["jobQueueType"] == "ECS_FARGATE"
    assert "ECS_FARGATE" in refused(
        batch.update_job_queue, jobQueue=fargate, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ec2_ce}]
    )


@pytest.fixture
def raw_batch(emulator_url: str) -> Any:
    return helpers.client(emulator_url, "batch", parameter_validation=False)


def test_a_job_knows_the_compute_environment_it_runs_on(batch: Any, logs: Any) -> None:
    disabled = helpers.create_compute_environment(batch, state="DISABLED")
    enabled = helpers.create_compute_environment(batch)
    queue = batch.create_job_queue(
        jobQueueName=helpers.unique("two"), priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": disabled},
                                 {"order": 2, "computeEnvironment": enabled}],
    )["jobQueueArn"]
    helpers.wait_until(lambda: helpers.queue_status(batch, queue) == "VALID")
    definition = helpers.register_container(batch, ["sh", "-c", "echo $AWS_BATCH_CE_NAME"])["jobDefinitionArn"]
    job = helpers.wait_for_status(batch, helpers.submit(batch, queue, definition))
    assert helpers.log_messages(logs, job["container"]["logStreamName"]) == [enabled.rsplit("/", 1)[-1]]


def test_listjobs_with_a_filter_pages_at_most_100(batch: Any, emulator_url: str) -> None:
    from airflow_batch_runner.emulator.testing import control

    control(emulator_url, "quotas", {"enabled": False})
    queue = helpers.create_queue(batch, helpers.create_compute_environment(batch, state="DISABLED"))
    definition = helpers.register_container(batch, ["true"])["jobDefinitionArn"]
    for _ in range(101):
        helpers.submit(batch, queue, definition, name="same")
    by_name = [{"name": "JOB_NAME", "values": ["same"]}]
    first = batch.list_jobs(jobQueue=queue, filters=by_name)
    assert len(first["jobSummaryList"]) == 100 and first["nextToken"]
    assert len(batch.list_jobs(jobQueue=queue, filters=by_name, maxResults=500)["jobSummaryList"]) == 100
    rest = batch.list_jobs(jobQueue=queue, filters=by_name, nextToken=first["nextToken"])
    assert len(rest["jobSummaryList"]) == 1 and "nextToken" not in rest
    # Without a filter a page holds up to 1000 (the jobs wait RUNNABLE: their environment is disabled).
    helpers.wait_until(lambda: len(batch.list_jobs(jobQueue=queue, jobStatus="RUNNABLE")["jobSummaryList"]) == 101)


# "The most common cause for a compute environment to enter an INVALID state is that the AWS Batch service
# role or the Amazon EC2 Spot Fleet role has an incorrect name or ARN ... AWS Batch can't validate the
# string. Instead, AWS Batch must accept the bad value and attempt to create the environment."
# (user guide, INVALID compute environment)

TRUST = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", ' \
        '"Principal": {"Service": "batch.amazonaws.com"}}]}'


def _settled(batch: Any, arn: str) -> dict[str, Any]:
    found: dict[str, Any] = helpers.wait_until(
        lambda: (lambda ce: ce if ce and ce["status"] in ("VALID", "INVALID") else None)(_describe(batch, arn))
    )
    return found


@pytest.mark.parametrize(
    ("resources", "params"),
    [(FARGATE, {"serviceRole": "arn:aws:iam::123456789012:role/no-such-role"}),
     ({**EC2, "instanceRole": "no-such-profile"}, {}),
     ({**EC2, "type": "SPOT", "spotIamFleetRole": "arn:aws:iam::123456789012:role/no-fleet-role"}, {})],
)
def test_a_role_that_does_not_exist_makes_the_environment_invalid(
    batch: Any, resources: dict[str, Any], params: dict[str, Any]
) -> None:
    ce = _settled(batch, _create(batch, resources, **params))
    assert ce["status"] == "INVALID"
    assert ce["statusReason"].startswith("CLIENT_ERROR - ")
    message = refused(helpers.create_queue, batch, ce["computeEnvironmentArn"], wait=False)
    assert "INVALID" in message


def test_existing_roles_and_the_service_linked_role_are_valid(batch: Any, emulator_url: str) -> None:
    iam = helpers.client(emulator_url, "iam")
    role = iam.create_role(RoleName=helpers.unique("batch"), Path="/service-role/",
                           AssumeRolePolicyDocument=TRUST)["Role"]
    linked = "arn:aws:iam::123456789012:role/aws-service-role/batch.amazonaws.com/AWSServiceRoleForBatch"
    for service_role in (role["Arn"], f"service-role/{role['RoleName']}", linked):
        assert _settled(batch, _create(batch, EC2, serviceRole=service_role))["status"] == "VALID"


def test_an_update_naming_a_missing_role_invalidates_and_a_good_one_repairs(batch: Any, emulator_url: str) -> None:
    arn = helpers.create_compute_environment(batch)
    batch.update_compute_environment(computeEnvironment=arn, serviceRole="arn:aws:iam::123456789012:role/gone")
    helpers.wait_until(lambda: _status(batch, arn) == "INVALID")
    role = helpers.client(emulator_url, "iam").create_role(
        RoleName=helpers.unique("batch"), AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    batch.update_compute_environment(computeEnvironment=arn, serviceRole=role)
    helpers.wait_until(lambda: _status(batch, arn) == "VALID")
