"""Compute environments, the job queue lifecycle and job definitions (revisions, status, pages)."""

from __future__ import annotations

from typing import Any

from tests.emulator import helpers
from tests.emulator.helpers import container, resources
from tests.emulator.test_batch_validation import refused


def test_compute_environment_becomes_valid(batch: Any, emulator_url: str) -> None:
    with helpers.held(emulator_url, "computeEnvironments"):
        arn = helpers.create_compute_environment(batch, name="fargate-ce", platform="FARGATE", wait=False)
        assert arn == "arn:aws:batch:us-east-1:123456789012:compute-environment/fargate-ce"
        first = batch.describe_compute_environments(computeEnvironments=["fargate-ce"])["computeEnvironments"][0]
        assert first["status"] == "CREATING"
    helpers.wait_until(
        lambda: batch.describe_compute_environments(computeEnvironments=[arn])["computeEnvironments"][0]["status"]
        == "VALID"
    )
    ce = batch.describe_compute_environments(computeEnvironments=[arn])["computeEnvironments"][0]
    assert ce["computeEnvironmentName"] == "fargate-ce"
    assert ce["state"] == "ENABLED"
    assert ce["type"] == "MANAGED"
    assert ce["computeResources"]["type"] == "FARGATE"
    assert ce["containerOrchestrationType"] == "ECS"
    assert ce["ecsClusterArn"].startswith("arn:aws:ecs:us-east-1:123456789012:cluster/")
    assert batch.describe_compute_environments(computeEnvironments=["missing"])["computeEnvironments"] == []


def test_job_queue_lifecycle(batch: Any, emulator_url: str) -> None:
    ce = helpers.create_compute_environment(batch)
    with helpers.held(emulator_url, "jobQueues"):
        arn = helpers.create_queue(batch, ce, name="lifecycle", wait=False)
        assert arn == "arn:aws:batch:us-east-1:123456789012:job-queue/lifecycle"
        queue = batch.describe_job_queues(jobQueues=[arn])["jobQueues"][0]
        assert (queue["state"], queue["status"]) == ("ENABLED", "CREATING")
    helpers.wait_until(lambda: helpers.queue_status(batch, "lifecycle") == "VALID")
    queue = batch.describe_job_queues(jobQueues=["lifecycle"])["jobQueues"][0]
    assert queue["computeEnvironmentOrder"] == [{"order": 1, "computeEnvironment": ce}]
    assert queue["priority"] == 1

    assert "DISABLED" in refused(batch.delete_job_queue, jobQueue=arn)

    with helpers.held(emulator_url, "jobQueues"):
        batch.update_job_queue(jobQueue=arn, state="DISABLED", priority=5)
        queue = batch.describe_job_queues(jobQueues=[arn])["jobQueues"][0]
        assert (queue["state"], queue["status"], queue["priority"]) == ("DISABLED", "UPDATING", 5)
    helpers.wait_until(lambda: helpers.queue_status(batch, arn) == "VALID")
    queue = batch.describe_job_queues(jobQueues=[arn])["jobQueues"][0]
    assert (queue["state"], queue["priority"]) == ("DISABLED", 5)

    with helpers.held(emulator_url, "jobQueues"):
        batch.delete_job_queue(jobQueue=arn)
        assert helpers.queue_status(batch, arn) == "DELETING"
    helpers.wait_until(lambda: helpers.queue_status(batch, arn) is None)
    assert batch.describe_job_queues()["jobQueues"] == []
    assert "does not exist" in refused(batch.update_job_queue, jobQueue=arn, state="ENABLED")


def test_held_changes_take_effect_in_order_when_released(batch: Any, emulator_url: str) -> None:
    from airflow_batch_runner.emulator.testing import control

    ce = helpers.create_compute_environment(batch)
    with helpers.held(emulator_url, "jobQueues"):
        first = helpers.create_queue(batch, ce, wait=False)
        second = helpers.create_queue(batch, ce, wait=False)
        # A compute environment created later settles (a hold on queues holds no compute environment): the
        # queues' step, due before, has come and been held.
        assert helpers.create_compute_environment(batch)
        assert control(emulator_url, "holds")["jobQueues"] == {"held": True, "pending": 2}
        assert [helpers.queue_status(batch, q) for q in (first, second)] == ["CREATING", "CREATING"]
    assert [helpers.queue_status(batch, q) for q in (first, second)] == ["VALID", "VALID"]  # at the release
    assert control(emulator_url, "holds")["jobQueues"] == {"held": False, "pending": 0}
    assert "holds take" in str(_control_error(emulator_url, {"queues": True}))


def _control_error(url: str, payload: Any) -> Any:
    import urllib.error

    from airflow_batch_runner.emulator.testing import control

    try:
        control(url, "holds", payload)
    except urllib.error.HTTPError as exc:
        return exc.read().decode()
    raise AssertionError("the control call was accepted")


def test_deleting_a_queue_fails_its_waiting_jobs(batch: Any) -> None:
    definition = helpers.register_container(batch, ["true"])["jobDefinitionArn"]
    # A queue whose compute environment is disabled keeps its jobs RUNNABLE.
    blocked = helpers.create_queue(batch, helpers.create_compute_environment(batch, state="DISABLED"))
    job_id = helpers.submit(batch, blocked, definition)
    helpers.wait_for_status(batch, job_id, ["RUNNABLE"])
    batch.update_job_queue(jobQueue=blocked, state="DISABLED")
    batch.delete_job_queue(jobQueue=blocked)
    job = helpers.wait_for_status(batch, job_id, helpers.TERMINAL, timeout=5)
    assert job["status"] == "FAILED"
    assert "deleted" in job["statusReason"].lower()


def test_describe_job_queues_pages(batch: Any) -> None:
    ce = helpers.create_compute_environment(batch)
    names = {helpers.create_queue(batch, ce, name=f"q{i}", wait=False).rsplit("/", 1)[-1] for i in range(5)}
    first = batch.describe_job_queues(maxResults=2)
    assert len(first["jobQueues"]) == 2 and "nextToken" in first
    paginator = batch.get_paginator("describe_job_queues")
    pages = paginator.paginate(PaginationConfig={"PageSize": 2})
    found = [q["jobQueueName"] for page in pages for q in page["jobQueues"]]
    assert sorted(found) == sorted(names)


def _register_revisions(batch: Any) -> dict[str, list[str]]:
    arns: dict[str, list[str]] = {"defs-a": [], "defs-b": []}
    for i in range(3):
        arns["defs-a"].append(
            helpers.register_ecs(batch, [container("main", ["echo", str(i)])], name="defs-a")["jobDefinitionArn"]
        )
    arns["defs-b"].append(helpers.register_container(batch, ["true"], name="defs-b")["jobDefinitionArn"])
    return arns


def test_register_job_definition_revisions(batch: Any) -> None:
    arns = _register_revisions(batch)
    assert arns["defs-a"] == [f"arn:aws:batch:us-east-1:123456789012:job-definition/defs-a:{i}" for i in (1, 2, 3)]
    batch.deregister_job_definition(jobDefinition="defs-a:3")
    again = helpers.register_ecs(batch, [container("main", ["true"])], name="defs-a")
    assert again["revision"] == 4, "revisions keep counting after a deregistration"


def test_describe_job_definitions_by_name_arn_and_status(batch: Any) -> None:
    arns = _register_revisions(batch)
    batch.deregister_job_definition(jobDefinition=arns["defs-a"][1])

    by_name = batch.describe_job_definitions(jobDefinitionName="defs-a")["jobDefinitions"]
    assert sorted(d["revision"] for d in by_name) == [1, 2, 3]
    active = batch.describe_job_definitions(jobDefinitionName="defs-a", status="ACTIVE")["jobDefinitions"]
    assert sorted(d["revision"] for d in active) == [1, 3]
    inactive = batch.describe_job_definitions(jobDefinitionName="defs-a", status="INACTIVE")["jobDefinitions"]
    assert [(d["revision"], d["status"]) for d in inactive] == [(2, "INACTIVE")]

    by_arn = batch.describe_job_definitions(jobDefinitions=[arns["defs-a"][2]])["jobDefinitions"]
    assert len(by_arn) == 1
    definition = by_arn[0]
    assert definition["jobDefinitionArn"] == arns["defs-a"][2]
    assert (definition["jobDefinitionName"], definition["revision"], definition["status"]) == ("defs-a", 3, "ACTIVE")
    assert definition["type"] == "container"
    assert definition["platformCapabilities"] == ["EC2"]
    assert definition["containerOrchestrationType"] == "ECS"
    assert definition["ecsProperties"]["taskProperties"][0]["containers"][0]["command"] == ["echo", "2"]

    short = batch.describe_job_definitions(jobDefinitions=["defs-b:1", arns["defs-a"][0]])["jobDefinitions"]
    assert sorted(d["jobDefinitionArn"] for d in short) == sorted([arns["defs-b"][0], arns["defs-a"][0]])

    every_active = batch.describe_job_definitions(status="ACTIVE")["jobDefinitions"]
    assert sorted(d["jobDefinitionArn"] for d in every_active) == sorted(
        [arns["defs-a"][0], arns["defs-a"][2], arns["defs-b"][0]]
    )
    assert batch.describe_job_definitions(jobDefinitionName="missing")["jobDefinitions"] == []


def test_describe_job_definitions_pages(batch: Any) -> None:
    expected = {
        helpers.register_container(batch, ["true"], name=f"paged-{i}")["jobDefinitionArn"] for i in range(7)
    }
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = batch.describe_job_definitions(maxResults=3, **({"nextToken": token} if token else {}))
        assert len(page["jobDefinitions"]) <= 3
        seen.extend(d["jobDefinitionArn"] for d in page["jobDefinitions"])
        pages += 1
        token = page.get("nextToken")
        if not token:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == expected

    paginator = batch.get_paginator("describe_job_definitions")
    found = [
        d["jobDefinitionArn"]
        for page in paginator.paginate(status="ACTIVE", PaginationConfig={"PageSize": 2})
        for d in page["jobDefinitions"]
    ]
    assert sorted(found) == sorted(expected)


def test_fargate_job_definition_round_trip(batch: Any) -> None:
    registered = helpers.register_ecs(
        batch,
        [container("main", ["true"], resourceRequirements=resources("0.25", "512"))],
        name="fargate-def",
        volumes=["work"],
        fargate=True,
        tags={"team": "data"},
        propagateTags=True,
        timeout={"attemptDurationSeconds": 3600},
        retryStrategy={"attempts": 3},
    )
    described = batch.describe_job_definitions(jobDefinitions=[registered["jobDefinitionArn"]])["jobDefinitions"][0]
    assert described["platformCapabilities"] == ["FARGATE"]
    task = described["ecsProperties"]["taskProperties"][0]
    assert task["executionRoleArn"] == helpers.EXECUTION_ROLE
    assert task["networkConfiguration"] == helpers.FARGATE_NETWORK
    assert task["volumes"] == [{"name": "work"}]
    assert described["tags"] == {"team": "data"}
    assert described["propagateTags"] is True
    assert described["timeout"] == {"attemptDurationSeconds": 3600}
    assert described["retryStrategy"] == {"attempts": 3}
    tags = batch.list_tags_for_resource(resourceArn=registered["jobDefinitionArn"])["tags"]
    assert tags == {"team": "data"}


def test_deregister_unknown_job_definition(batch: Any) -> None:
    assert "does not exist" in refused(batch.deregister_job_definition, jobDefinition="ghost:1")


def test_submit_by_name_uses_the_latest_active_revision(batch: Any, ec2_queue: str) -> None:
    for command in ("one", "two", "three"):
        helpers.register_container(batch, ["echo", command], name="by-name")
    batch.deregister_job_definition(jobDefinition="by-name:3")
    job = helpers.describe(batch, helpers.submit(batch, ec2_queue, "by-name"))
    assert job["jobDefinition"].endswith(":job-definition/by-name:2")
    assert job["container"]["command"] == ["echo", "two"]
    job = helpers.describe(batch, helpers.submit(batch, ec2_queue, "by-name:1"))
    assert job["container"]["command"] == ["echo", "one"]
