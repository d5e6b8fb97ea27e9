"""The rules a real AWS Batch account enforces: each refused request is a ClientException with a useful message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.emulator import helpers
from tests.emulator.helpers import container, resources


@pytest.fixture
def raw_batch(emulator_url: str) -> Any:
    """A Batch client that sends what it is given: the server, not botocore, must refuse bad requests."""
    return helpers.client(emulator_url, "batch", parameter_validation=False)


def refused(call: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    """Call, expect a ClientException (HTTP 400) and return its message."""
    with pytest.raises(ClientError) as excinfo:
        call(*args, **kwargs)
    code, message, status = helpers.client_error(excinfo)
    assert (code, status) == ("ClientException", 400), message
    assert message
    return message


def register(batch: Any, containers: list[dict[str, Any]], **params: Any) -> Any:
    return helpers.register_ecs(batch, containers, **params)


MAIN = container("main", ["true"])


# Names


@pytest.mark.parametrize("name", ["has space", "dots.not.allowed", "slash/no", "x" * 129, ""])
def test_bad_job_definition_names(raw_batch: Any, name: str) -> None:
    message = refused(register, raw_batch, [MAIN], name=name)
    assert "jobDefinitionName" in message


def test_job_definition_name_of_128_characters_is_accepted(batch: Any) -> None:
    assert register(batch, [MAIN], name="d" * 128)["revision"] == 1


@pytest.mark.parametrize("name", ["-starts-with-hyphen", "_starts-with-underscore", "j" * 129, "bad name", "a.b"])
def test_bad_job_names(batch: Any, ec2_queue: str, name: str) -> None:
    definition = register(batch, [MAIN])["jobDefinitionArn"]
    message = refused(batch.submit_job, jobName=name, jobQueue=ec2_queue, jobDefinition=definition)
    assert "jobName" in message
    assert "128" in message


def test_job_name_of_128_characters_is_accepted(batch: Any, ec2_queue: str) -> None:
    definition = register(batch, [MAIN])["jobDefinitionArn"]
    assert helpers.submit(batch, ec2_queue, definition, name="J" + "j" * 127)


@pytest.mark.parametrize("name", ["bad queue", "-" * 129])
def test_bad_queue_and_compute_environment_names(batch: Any, name: str) -> None:
    ce = helpers.create_compute_environment(batch)
    message = refused(
        batch.create_job_queue,
        jobQueueName=name,
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}],
    )
    assert "jobQueueName" in message
    message = refused(helpers.create_compute_environment, batch, name=name, wait=False)
    assert "computeEnvironmentName" in message


# Required fields


def test_register_without_type(raw_batch: Any) -> None:
    message = refused(
        raw_batch.register_job_definition,
        jobDefinitionName="no-type",
        ecsProperties=helpers.ecs_properties([MAIN]),
    )
    assert "type is required" in message


def test_register_without_properties(batch: Any) -> None:
    message = refused(batch.register_job_definition, jobDefinitionName="nothing", type="container")
    assert "containerProperties" in message and "ecsProperties" in message


def test_register_with_both_container_and_ecs_properties(batch: Any) -> None:
    message = refused(
        batch.register_job_definition,
        jobDefinitionName="both",
        type="container",
        containerProperties={"image": "busybox", "command": ["true"]},
        ecsProperties=helpers.ecs_properties([MAIN]),
    )
    assert "Exactly one" in message


def test_container_properties_without_image(raw_batch: Any) -> None:
    message = refused(
        raw_batch.register_job_definition,
        jobDefinitionName="no-image",
        type="container",
        containerProperties={"command": ["true"]},
    )
    assert "image is required" in message


def test_ecs_container_without_image(raw_batch: Any) -> None:
    spec = {"name": "main", "command": ["true"]}
    message = refused(register, raw_batch, [spec])
    assert "'main'" in message and "image is required" in message


def test_ecs_properties_without_containers(batch: Any) -> None:
    message = refused(register, batch, [])
    assert "at least one container" in message


def test_submit_without_job_queue(raw_batch: Any) -> None:
    message = refused(raw_batch.submit_job, jobName="j", jobDefinition="whatever")
    assert "jobQueue is required" in message


def test_submit_with_an_empty_job_name(batch: Any, ec2_queue: str) -> None:
    definition = register(batch, [MAIN])["jobDefinitionArn"]
    message = refused(batch.submit_job, jobName="", jobQueue=ec2_queue, jobDefinition=definition)
    assert "jobName is required" in message


def test_terminate_without_reason(raw_batch: Any) -> None:
    message = refused(raw_batch.terminate_job, jobId="some-job")
    assert "reason is required" in message


def test_create_queue_without_compute_environments(batch: Any) -> None:
    message = refused(batch.create_job_queue, jobQueueName="q", priority=1, computeEnvironmentOrder=[])
    assert "computeEnvironmentOrder is required" in message


# Containers and their dependencies


def test_no_essential_container(batch: Any) -> None:
    message = refused(
        register, batch, [container("a", ["true"], essential=False), container("b", ["true"], essential=False)]
    )
    assert "essential" in message


def test_depends_on_a_container_that_does_not_exist(batch: Any) -> None:
    message = refused(register, batch, [container("main", ["true"], depends_on=[("ghost", "START")])])
    assert "'ghost'" in message and "not a container of the task" in message


@pytest.mark.parametrize("condition", ["COMPLETE", "SUCCESS"])
def test_complete_or_success_on_an_essential_container(batch: Any, condition: str) -> None:
    message = refused(
        register,
        batch,
        [container("inputs", ["true"]), container("main", ["true"], depends_on=[("inputs", condition)])],
    )
    assert condition in message and "essential" in message and "'inputs'" in message


@pytest.mark.parametrize("condition", ["START", "COMPLETE", "SUCCESS"])
def test_any_condition_on_a_non_essential_container_is_accepted(batch: Any, condition: str) -> None:
    containers = [
        container("inputs", ["true"], essential=False),
        container("main", ["true"], depends_on=[("inputs", condition)]),
    ]
    assert register(batch, containers)["revision"] == 1


def test_unknown_dependency_condition(batch: Any) -> None:
    message = refused(
        register,
        batch,
        [container("a", ["true"], essential=False), container("main", ["true"], depends_on=[("a", "FINISHED")])],
    )
    assert "FINISHED" in message and "START" in message


def test_self_and_cyclic_dependencies(batch: Any) -> None:
    message = refused(register, batch, [container("main", ["true"], depends_on=[("main", "START")])])
    assert "itself" in message
    message = refused(
        register,
        batch,
        [
            container("a", ["true"], depends_on=[("b", "START")]),
            container("b", ["true"], depends_on=[("a", "START")]),
        ],
    )
    assert "cycle" in message


def test_duplicate_container_names(batch: Any) -> None:
    message = refused(register, batch, [container("main", ["true"]), container("main", ["false"])])
    assert "unique" in message and "'main'" in message


def test_too_many_containers(batch: Any) -> None:
    message = refused(register, batch, [container(f"c{i}", ["true"]) for i in range(11)])
    assert "10" in message


# Fargate


@pytest.mark.parametrize(("missing", "said"), [("executionRoleArn", ["executionRoleArn", "FARGATE"])])
def test_fargate_job_definition_without_a_task_property_it_needs(batch: Any, missing: str, said: list[str]) -> None:
    properties = helpers.ecs_properties([container("main", ["true"], resourceRequirements=resources("1", "2048"))])
    needed = {"executionRoleArn": helpers.EXECUTION_ROLE, "networkConfiguration": helpers.FARGATE_NETWORK}
    properties["taskProperties"][0].update({k: v for k, v in needed.items() if k != missing})
    message = refused(
        batch.register_job_definition,
        jobDefinitionName=f"no-{missing}",
        type="container",
        platformCapabilities=["FARGATE"],
        ecsProperties=properties,
    )
    assert all(word in message for word in said), message


def test_fargate_definitions_without_network_configuration_are_accepted_and_run(
    batch: Any, fargate_queue: str
) -> None:
    """The API reference marks networkConfiguration optional; assignPublicIp "The default value is DISABLED"."""
    main = container("main", ["true"], resourceRequirements=resources("1", "2048"))
    ecs = batch.register_job_definition(
        jobDefinitionName=helpers.unique("no-network"), type="container", platformCapabilities=["FARGATE"],
        ecsProperties={"taskProperties": [{"containers": [main], "executionRoleArn": helpers.EXECUTION_ROLE}]},
    )["jobDefinitionArn"]
    plain = batch.register_job_definition(
        jobDefinitionName=helpers.unique("no-network"), type="container", platformCapabilities=["FARGATE"],
        containerProperties={"image": "busybox", "command": ["true"], "resourceRequirements": resources("1", "2048"),
                             "executionRoleArn": helpers.EXECUTION_ROLE},
    )["jobDefinitionArn"]
    described = batch.describe_job_definitions(jobDefinitions=[plain])["jobDefinitions"][0]
    assert described["containerProperties"]["networkConfiguration"] == {"assignPublicIp": "DISABLED"}
    for definition in (ecs, plain):
        job = helpers.submit(batch, fargate_queue, definition)
        assert helpers.wait_for_status(batch, job)["status"] == "SUCCEEDED"


def test_fargate_container_job_definition_without_execution_role(batch: Any) -> None:
    message = refused(
        batch.register_job_definition,
        jobDefinitionName="no-role",
        type="container",
        platformCapabilities=["FARGATE"],
        containerProperties={
            "image": "busybox",
            "command": ["true"],
            "resourceRequirements": resources("1", "2048"),
            "networkConfiguration": helpers.FARGATE_NETWORK,
        },
    )
    assert "executionRoleArn" in message


@pytest.mark.parametrize(("vcpu", "memory"), [("1", "512"), ("0.25", "4096"), ("3", "8192"), ("16", "16384")])
def test_invalid_fargate_cpu_memory_pair_at_register(batch: Any, vcpu: str, memory: str) -> None:
    message = refused(
        register, batch, [container("main", ["true"], resourceRequirements=resources(vcpu, memory))], fargate=True
    )
    assert "Fargate" in message and f"{memory} MiB" in message


def test_fargate_pair_is_checked_on_the_total_of_the_task(batch: Any) -> None:
    # 0.5 + 0.5 vCPU with 1024 + 1024 MiB: 1 vCPU / 2048 MiB is a valid task size.
    halves = [
        container("a", ["true"], essential=False, resourceRequirements=resources("0.5", "1024")),
        container("b", ["true"], resourceRequirements=resources("0.5", "1024")),
    ]
    assert register(batch, halves, fargate=True)["revision"] == 1
    # 0.5 + 0.5 vCPU with 512 + 512 MiB: 1 vCPU / 1024 MiB is not.
    halves[0]["resourceRequirements"] = halves[1]["resourceRequirements"] = resources("0.5", "512")
    message = refused(register, batch, halves, fargate=True)
    assert "1 vCPU with 1024 MiB" in message


def test_invalid_fargate_cpu_memory_pair_in_ecs_properties_override(batch: Any, fargate_queue: str) -> None:
    definition = register(
        batch, [container("main", ["true"], resourceRequirements=resources("1", "2048"))], fargate=True
    )["jobDefinitionArn"]
    override = {"taskProperties": [{"containers": [{"name": "main", "resourceRequirements": resources("2", "1024")}]}]}
    message = refused(
        batch.submit_job, jobName="j", jobQueue=fargate_queue, jobDefinition=definition, ecsPropertiesOverride=override
    )
    assert "Fargate" in message and "2 vCPU with 1024 MiB" in message
    listed = batch.list_jobs(jobQueue=fargate_queue, filters=[{"name": "JOB_NAME", "values": ["j"]}])
    assert listed["jobSummaryList"] == [], "a refused submission must not create a job"


def test_override_naming_an_unknown_container(batch: Any, ec2_queue: str) -> None:
    definition = register(batch, [MAIN])["jobDefinitionArn"]
    override = {"taskProperties": [{"containers": [{"name": "ghost", "command": ["true"]}]}]}
    message = refused(
        batch.submit_job, jobName="j", jobQueue=ec2_queue, jobDefinition=definition, ecsPropertiesOverride=override
    )
    assert "'ghost'" in message


def test_container_overrides_on_an_ecs_job_definition(batch: Any, ec2_queue: str) -> None:
    definition = register(batch, [MAIN])["jobDefinitionArn"]
    message = refused(
        batch.submit_job,
        jobName="j",
        jobQueue=ec2_queue,
        jobDefinition=definition,
        containerOverrides={"command": ["true"]},
    )
    assert "containerOverrides" in message


# Timeout, retries, tags


@pytest.mark.parametrize("seconds", [0, 1, 59])
def test_attempt_duration_under_60_seconds_is_refused(batch: Any, ec2_queue: str, seconds: int) -> None:
    definition = register(batch, [MAIN])["jobDefinitionArn"]
    message = refused(
        batch.submit_job,
        jobName="j",
        jobQueue=ec2_queue,
        jobDefinition=definition,
        timeout={"attemptDurationSeconds": seconds},
    )
    assert "attemptDurationSeconds" in message and "60" in message
    message = refused(register, batch, [MAIN], timeout={"attemptDurationSeconds": seconds})
    assert "attemptDurationSeconds" in message


def test_attempt_duration_of_60_seconds_is_accepted(batch: Any, ec2_queue: str) -> None:
    definition = register(batch, [MAIN], timeout={"attemptDurationSeconds": 60})["jobDefinitionArn"]
    job_id = helpers.submit(batch, ec2_queue, definition, timeout={"attemptDurationSeconds": 60})
    assert helpers.describe(batch, job_id)["timeout"] == {"attemptDurationSeconds": 60}


@pytest.mark.parametrize("attempts", [0, 11])
def test_retry_attempts_out_of_range(batch: Any, ec2_queue: str, attempts: int) -> None:
    definition = register(batch, [MAIN])["jobDefinitionArn"]
    message = refused(
        batch.submit_job,
        jobName="j",
        jobQueue=ec2_queue,
        jobDefinition=definition,
        retryStrategy={"attempts": attempts},
    )
    assert "attempts" in message


def test_more_than_50_tags(batch: Any, ec2_queue: str) -> None:
    definition = register(batch, [MAIN])["jobDefinitionArn"]
    tags = {f"k{i}": "v" for i in range(51)}
    message = refused(batch.submit_job, jobName="j", jobQueue=ec2_queue, jobDefinition=definition, tags=tags)
    assert "50" in message


def test_tag_limits_are_refused_by_the_server_on_every_operation(raw_batch: Any, ec2_queue: str) -> None:
    """botocore checks only the minimum size of the ``tags`` map, so 51 tags, or a key or value longer than the
    user guide's "Tag restrictions" (50 tags per resource, keys of 128 and values of 256 characters; the service
    model's TagrisTagsMap, TagKey, TagValue) reach the server. The API reference lists ClientException (HTTP 400)
    as the client-side error of SubmitJob, TagResource and the create calls: nothing is created or tagged."""
    definition = register(raw_batch, [MAIN])["jobDefinitionArn"]
    job_arn = raw_batch.describe_jobs(jobs=[helpers.submit(raw_batch, ec2_queue, definition)])["jobs"][0]["jobArn"]
    for bad in ({f"k{i}": "v" for i in range(51)}, {"k" * 129: "v"}, {"k": "v" * 257}):
        calls: list[tuple[Callable[..., Any], dict[str, Any]]] = [
            (raw_batch.submit_job, {"jobName": "j", "jobQueue": ec2_queue, "jobDefinition": definition}),
            (raw_batch.tag_resource, {"resourceArn": job_arn}),
            (raw_batch.register_job_definition, {
                "jobDefinitionName": helpers.unique("d"), "type": "container",
                "containerProperties": {
                    "image": "busybox", "command": ["true"], "resourceRequirements": resources("1", "2048"),
                },
            }),
            (raw_batch.create_job_queue, {
                "jobQueueName": helpers.unique("q"), "priority": 1, "computeEnvironmentOrder": [],
            }),
            (raw_batch.create_scheduling_policy, {"name": helpers.unique("p")}),
        ]
        for call, params in calls:
            message = refused(call, tags=bad, **params)
            assert "tag" in message.lower(), message
    assert raw_batch.list_tags_for_resource(resourceArn=job_arn)["tags"] == {}
    # The largest tags the restrictions allow are accepted.
    largest = {f"{i:02d}" + "k" * 126: "v" * 256 for i in range(50)}
    raw_batch.tag_resource(resourceArn=job_arn, tags=largest)
    assert raw_batch.list_tags_for_resource(resourceArn=job_arn)["tags"] == largest


def test_tag_calls_refuse_the_arn_of_an_array_child(batch: Any, ec2_queue: str) -> None:
    """TagResource, UntagResource, ListTagsForResource: "ARNs for child jobs of array and multi-node parallel
    (MNP) jobs aren't supported"."""
    definition = register(batch, [MAIN])["jobDefinitionArn"]
    parent = helpers.describe(batch, helpers.submit(batch, ec2_queue, definition, arrayProperties={"size": 2}))
    child_arn = f"{parent['jobArn']}:0"
    assert "child" in refused(batch.tag_resource, resourceArn=child_arn, tags={"k": "v"}).lower()
    assert "child" in refused(batch.untag_resource, resourceArn=child_arn, tagKeys=["k"]).lower()
    assert "child" in refused(batch.list_tags_for_resource, resourceArn=child_arn).lower()


def test_a_job_whose_propagated_tags_exceed_50_fails(batch: Any, ec2_queue: str) -> None:
    # SubmitJob, propagateTags: "If the total number of combined tags from the job and job definition is over 50,
    # the job is moved to the FAILED state." The request itself is accepted.
    definition = helpers.register_container(
        batch, ["true"], tags={f"d{i}": "v" for i in range(10)})["jobDefinitionArn"]
    job_tags = {f"j{i}": "v" for i in range(41)}
    failed = helpers.submit(batch, ec2_queue, definition, tags=job_tags, propagateTags=True,
                            retryStrategy={"attempts": 3})
    fifty = {f"j{i}": "v" for i in range(40)}
    at_limit = helpers.submit(batch, ec2_queue, definition, tags={**fifty, "d0": "job's"}, propagateTags=True)
    not_propagated = helpers.submit(batch, ec2_queue, definition, tags=job_tags, propagateTags=False)
    job = helpers.wait_for_status(batch, failed)
    assert job["status"] == "FAILED"
    assert "tags" in job["statusReason"] and "50" in job["statusReason"]
    assert len(job["attempts"]) == 1  # no retry: the task cannot be created
    assert helpers.wait_for_status(batch, at_limit)["status"] == "SUCCEEDED"  # a shared key counts once
    assert helpers.wait_for_status(batch, not_propagated)["status"] == "SUCCEEDED"


# Queues and job definitions that cannot take jobs


def test_submit_to_a_queue_that_does_not_exist(batch: Any) -> None:
    definition = register(batch, [MAIN])["jobDefinitionArn"]
    message = refused(batch.submit_job, jobName="j", jobQueue="no-such-queue", jobDefinition=definition)
    assert "no-such-queue" in message and "does not exist" in message


def test_submit_to_a_disabled_queue(batch: Any, ec2_queue: str) -> None:
    definition = register(batch, [MAIN])["jobDefinitionArn"]
    batch.update_job_queue(jobQueue=ec2_queue, state="DISABLED")
    message = refused(batch.submit_job, jobName="j", jobQueue=ec2_queue, jobDefinition=definition)
    assert "DISABLED" in message


def test_submit_to_a_queue_that_is_not_valid_yet(batch: Any, emulator_url: str) -> None:
    ce = helpers.create_compute_environment(batch)
    definition = register(batch, [MAIN])["jobDefinitionArn"]
    with helpers.held(emulator_url, "jobQueues"):
        queue = helpers.create_queue(batch, ce, wait=False)
        message = refused(batch.submit_job, jobName="j", jobQueue=queue, jobDefinition=definition)
    assert "CREATING" in message and "VALID" in message
    helpers.wait_until(lambda: helpers.queue_status(batch, queue) == "VALID")
    assert helpers.submit(batch, queue, definition)


def test_submit_with_a_job_definition_that_does_not_exist(batch: Any, ec2_queue: str) -> None:
    message = refused(batch.submit_job, jobName="j", jobQueue=ec2_queue, jobDefinition="nope:1")
    assert "nope:1" in message and "does not exist" in message


def test_submit_with_an_inactive_job_definition(batch: Any, ec2_queue: str) -> None:
    definition = register(batch, [MAIN])
    arn, name = definition["jobDefinitionArn"], definition["jobDefinitionName"]
    batch.deregister_job_definition(jobDefinition=arn)
    message = refused(batch.submit_job, jobName="j", jobQueue=ec2_queue, jobDefinition=arn)
    assert "INACTIVE" in message
    message = refused(batch.submit_job, jobName="j", jobQueue=ec2_queue, jobDefinition=f"{name}:1")
    assert "INACTIVE" in message
    # By name alone: there is no ACTIVE revision left.
    message = refused(batch.submit_job, jobName="j", jobQueue=ec2_queue, jobDefinition=name)
    assert name in message


def test_describe_jobs_with_101_ids(batch: Any) -> None:
    message = refused(batch.describe_jobs, jobs=[f"job-{i}" for i in range(101)])
    assert "100" in message


def test_describe_jobs_with_100_unknown_ids_is_empty(batch: Any) -> None:
    assert batch.describe_jobs(jobs=[f"job-{i}" for i in range(100)])["jobs"] == []


@pytest.mark.parametrize("operation", ["terminate_job", "cancel_job"])
def test_reason_of_more_than_1024_characters_is_refused(batch: Any, operation: str) -> None:
    assert "1024" in refused(getattr(batch, operation), jobId="any", reason="r" * 1025)
    getattr(batch, operation)(jobId="any", reason="r" * 1024)


def test_terminate_or_cancel_an_unknown_job_succeeds_as_on_aws(batch: Any) -> None:
    # AWS answers 200 whether or not the id names a job.
    assert batch.terminate_job(jobId="no-such-job", reason="x")["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert batch.cancel_job(jobId="no-such-job", reason="x")["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_queue_with_compute_environments_of_two_platforms(batch: Any) -> None:
    ec2 = helpers.create_compute_environment(batch, platform="EC2")
    fargate = helpers.create_compute_environment(batch, platform="FARGATE")
    message = refused(
        batch.create_job_queue,
        jobQueueName="mixed",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ec2}, {"order": 2, "computeEnvironment": fargate}],
    )
    assert "platform" in message


def test_queue_with_an_unknown_compute_environment(batch: Any) -> None:
    message = refused(
        batch.create_job_queue,
        jobQueueName="orphan",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "no-such-ce"}],
    )
    assert "no-such-ce" in message


def test_duplicate_queue_and_compute_environment(batch: Any) -> None:
    ce = helpers.create_compute_environment(batch, name="twice")
    assert "already exists" in refused(helpers.create_compute_environment, batch, name="twice", wait=False)
    helpers.create_queue(batch, ce, name="twice-q")
    assert "already exists" in refused(helpers.create_queue, batch, ce, name="twice-q", wait=False)
