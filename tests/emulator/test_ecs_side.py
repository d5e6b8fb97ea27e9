"""The ECS side of Batch jobs, as the caller's ECS shows it.

From the AWS Batch API reference: a compute environment's ``ecsClusterArn`` is "the Amazon Resource Name (ARN) of
the underlying Amazon ECS cluster that the compute environment uses"; a job attempt's ``taskArn`` (``container``
for container jobs, ``taskProperties`` for ECS-properties jobs) is "the ARN of the Amazon ECS task", and
``containerInstanceArn`` "the ARN of the container instance that hosts the task". From the ECS API reference:
ListTasks and DescribeTasks show a cluster's tasks (``lastStatus`` PENDING, RUNNING, then STOPPED with each
container's ``exitCode`` and the task's ``stopCode``), DescribeClusters counts the running ones, and
DescribeTaskDefinition / DeregisterTaskDefinition take the task's ``taskDefinitionArn`` (or ``family:revision``).
Airflow's example_batch deregisters ``<job definition name>:1`` after its Fargate job: Batch registers the
job's task definition in the caller's ECS under the job definition's name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_batch_runner.emulator.testing import control
from tests.emulator import helpers
from tests.emulator.helpers import container


@pytest.fixture
def ecs(emulator_url: str) -> Any:
    return helpers.client(emulator_url, "ecs")


def _cluster_of(batch: Any, queue: str) -> str:
    ce = batch.describe_job_queues(jobQueues=[queue])["jobQueues"][0]["computeEnvironmentOrder"][0]
    described = batch.describe_compute_environments(computeEnvironments=[ce["computeEnvironment"]])
    return str(described["computeEnvironments"][0]["ecsClusterArn"])


def _wait_script(flag: Path) -> list[str]:
    """A command that runs until the test creates ``flag``."""
    return ["sh", "-c", f"while [ ! -e {flag} ]; do sleep 0.02; done"]


def _fargate_definition(batch: Any, command: list[str]) -> tuple[str, str]:
    name = helpers.unique("fargate-def")
    arn = batch.register_job_definition(
        jobDefinitionName=name,
        type="container",
        platformCapabilities=["FARGATE"],
        containerProperties={
            "image": "busybox", "command": command, "executionRoleArn": helpers.EXECUTION_ROLE,
            "resourceRequirements": helpers.resources("1", "2048"), "networkConfiguration": helpers.FARGATE_NETWORK,
        },
    )["jobDefinitionArn"]
    return name, str(arn)


def test_running_fargate_job_is_a_running_task_in_its_compute_environments_cluster(
    batch: Any, ecs: Any, fargate_queue: str, tmp_path: Path
) -> None:
    cluster = _cluster_of(batch, fargate_queue)
    assert ecs.describe_clusters(clusters=[cluster])["clusters"][0]["status"] == "ACTIVE"
    _, definition = _fargate_definition(batch, _wait_script(tmp_path / "go"))
    job_id = helpers.submit(batch, fargate_queue, definition)
    job = helpers.wait_for_status(batch, job_id, ("RUNNING",))
    task_arn = job["container"]["taskArn"]
    assert task_arn.startswith(f"{cluster.replace(':cluster/', ':task/')}/")
    assert ecs.list_tasks(cluster=cluster)["taskArns"] == [task_arn]
    task = ecs.describe_tasks(cluster=cluster, tasks=[task_arn])["tasks"][0]
    assert (task["taskArn"], task["clusterArn"], task["lastStatus"], task["launchType"]) == (
        task_arn, cluster, "RUNNING", "FARGATE")
    assert [c["name"] for c in task["containers"]] == ["default"]
    assert ecs.describe_clusters(clusters=[cluster])["clusters"][0]["runningTasksCount"] == 1

    (tmp_path / "go").touch()
    assert helpers.wait_for_status(batch, job_id)["status"] == "SUCCEEDED"
    task = ecs.describe_tasks(cluster=cluster, tasks=[task_arn])["tasks"][0]
    assert (task["lastStatus"], task["desiredStatus"], task["stopCode"]) == (
        "STOPPED", "STOPPED", "EssentialContainerExited")
    assert task["containers"][0]["exitCode"] == 0
    assert "stoppedAt" in task and "startedAt" in task
    # ListTasks: "The default status filter is RUNNING"; STOPPED lists the stopped ones.
    assert ecs.list_tasks(cluster=cluster)["taskArns"] == []
    assert ecs.list_tasks(cluster=cluster, desiredStatus="STOPPED")["taskArns"] == [task_arn]
    assert ecs.describe_clusters(clusters=[cluster])["clusters"][0]["runningTasksCount"] == 0


def test_jobs_task_definition_is_the_job_definitions_name_and_can_be_deregistered(
    batch: Any, ecs: Any, fargate_queue: str
) -> None:
    """What Airflow's example_batch does after its job: DeregisterTaskDefinition of ``<name>:1``."""
    name, definition = _fargate_definition(batch, ["true"])
    job = helpers.wait_for_status(batch, helpers.submit(batch, fargate_queue, definition))
    assert job["status"] == "SUCCEEDED"
    task = ecs.describe_tasks(cluster=_cluster_of(batch, fargate_queue), tasks=[job["container"]["taskArn"]])
    task_definition_arn = task["tasks"][0]["taskDefinitionArn"]
    assert task_definition_arn == f"arn:aws:ecs:{helpers.REGION}:123456789012:task-definition/{name}:1"
    described = ecs.describe_task_definition(taskDefinition=task_definition_arn)["taskDefinition"]
    assert (described["family"], described["revision"], described["status"]) == (name, 1, "ACTIVE")
    assert described["requiresCompatibilities"] == ["FARGATE"]
    assert described["executionRoleArn"] == helpers.EXECUTION_ROLE
    assert [(c["name"], c["image"], c["command"]) for c in described["containerDefinitions"]] == [
        ("default", "busybox", ["true"])]

    batch.deregister_job_definition(jobDefinition=definition)  # example_batch's order: the job definition first
    gone = ecs.deregister_task_definition(taskDefinition=f"{name}:1")["taskDefinition"]
    assert (gone["taskDefinitionArn"], gone["status"]) == (task_definition_arn, "INACTIVE")


def test_second_job_of_a_definition_reuses_its_task_definition_until_it_is_deregistered(
    batch: Any, ecs: Any, ec2_queue: str
) -> None:
    name = helpers.unique("reused")
    definition = helpers.register_container(batch, ["true"], name=name)["jobDefinitionArn"]
    cluster = _cluster_of(batch, ec2_queue)

    def task_definition_of_a_job() -> str:
        job = helpers.wait_for_status(batch, helpers.submit(batch, ec2_queue, definition))
        return str(ecs.describe_tasks(cluster=cluster, tasks=[job["container"]["taskArn"]])["tasks"][0][
            "taskDefinitionArn"])

    first = task_definition_of_a_job()
    assert task_definition_of_a_job() == first == (
        f"arn:aws:ecs:{helpers.REGION}:123456789012:task-definition/{name}:1")
    ecs.deregister_task_definition(taskDefinition=first)
    second = task_definition_of_a_job()
    assert second == f"{first.rsplit(':', 1)[0]}:2"
    assert ecs.list_task_definitions(familyPrefix=name)["taskDefinitionArns"] == [second]


def test_ec2_ecs_properties_job_task_is_on_the_container_instance_batch_reports(
    batch: Any, ecs: Any, ec2_queue: str
) -> None:
    definition = helpers.register_ecs(batch, [
        container("first", ["sh", "-c", "exit 0"], essential=False),
        container("main", ["sh", "-c", "exit 3"], depends_on=[("first", "SUCCESS")]),
    ])["jobDefinitionArn"]
    job = helpers.wait_for_status(batch, helpers.submit(batch, ec2_queue, definition))
    assert job["status"] == "FAILED"
    attempt = job["attempts"][0]["taskProperties"][0]
    cluster = _cluster_of(batch, ec2_queue)
    task = ecs.describe_tasks(cluster=cluster, tasks=[attempt["taskArn"]])["tasks"][0]
    assert (task["launchType"], task["containerInstanceArn"]) == ("EC2", attempt["containerInstanceArn"])
    assert {c["name"]: c["exitCode"] for c in task["containers"]} == {"first": 0, "main": 3}
    assert (task["lastStatus"], task["stopCode"]) == ("STOPPED", "EssentialContainerExited")
    on_instance = ecs.list_tasks(cluster=cluster, containerInstance=attempt["containerInstanceArn"],
                                 desiredStatus="STOPPED")
    assert on_instance["taskArns"] == [attempt["taskArn"]]
    described = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
    assert described["requiresCompatibilities"] == ["EC2"]
    assert [c["name"] for c in described["containerDefinitions"]] == ["first", "main"]


def test_terminated_jobs_task_stops_as_stopped_by_its_user(
    batch: Any, ecs: Any, ec2_queue: str, tmp_path: Path
) -> None:
    definition = helpers.register_container(batch, _wait_script(tmp_path / "never"))["jobDefinitionArn"]
    job_id = helpers.submit(batch, ec2_queue, definition)
    task_arn = helpers.wait_for_status(batch, job_id, ("RUNNING",))["container"]["taskArn"]
    batch.terminate_job(jobId=job_id, reason="enough")
    assert helpers.wait_for_status(batch, job_id)["status"] == "FAILED"
    task = ecs.describe_tasks(cluster=_cluster_of(batch, ec2_queue), tasks=[task_arn])["tasks"][0]
    assert (task["lastStatus"], task["stopCode"]) == ("STOPPED", "UserInitiated")


def test_each_attempt_has_its_own_task_and_an_interrupted_one_stops_as_a_spot_interruption(
    emulator_url: str, batch: Any, ecs: Any, ec2_queue: str
) -> None:
    host_gone = "Host EC2 (instance i-0123456789abcdef0) terminated."
    control(emulator_url, "interruptions",
            {"rules": [{"jobName": "spot-*", "statusReason": host_gone, "attempts": 1, "afterSeconds": 0.3}]})
    definition = helpers.register_container(batch, ["sh", "-c", "sleep 1"])["jobDefinitionArn"]
    job = helpers.wait_for_status(batch, helpers.submit(batch, ec2_queue, definition, name=helpers.unique("spot"),
                                                        retryStrategy={"attempts": 2}))
    assert job["status"] == "SUCCEEDED"
    arns = [a["container"]["taskArn"] for a in job["attempts"]]
    tasks = ecs.describe_tasks(cluster=_cluster_of(batch, ec2_queue), tasks=arns)["tasks"]
    by_arn = {t["taskArn"]: t for t in tasks}
    first, second = by_arn[arns[0]], by_arn[arns[1]]
    assert (first["stopCode"], first["stoppedReason"]) == ("SpotInterruption", host_gone)
    assert "exitCode" not in first["containers"][0]
    assert (second["stopCode"], second["containers"][0]["exitCode"]) == ("EssentialContainerExited", 0)
    assert first["taskDefinitionArn"] == second["taskDefinitionArn"]


def test_propagated_tags_of_the_job_and_its_definition_are_the_tasks(batch: Any, ecs: Any, ec2_queue: str) -> None:
    """SubmitJob's propagateTags: "propagate the tags from the job or job definition to the corresponding Amazon
    ECS task. If no value is specified, the tags aren't propagated." """
    definition = helpers.register_container(batch, ["true"], tags={"team": "data", "cost": "a"})["jobDefinitionArn"]
    cluster = _cluster_of(batch, ec2_queue)

    def task_tags(**params: Any) -> dict[str, str]:
        job = helpers.wait_for_status(batch, helpers.submit(batch, ec2_queue, definition, **params))
        task = ecs.describe_tasks(cluster=cluster, tasks=[job["container"]["taskArn"]], include=["TAGS"])
        return {t["key"]: t["value"] for t in task["tasks"][0].get("tags", [])}

    assert task_tags(tags={"cost": "b"}, propagateTags=True) == {"team": "data", "cost": "b"}
    assert task_tags(tags={"cost": "b"}) == {}
