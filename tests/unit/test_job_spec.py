"""The pure job builder: configuration -> RegisterJobDefinition and SubmitJob requests.

No AWS, no emulator. Every request built here is also checked against botocore's own model of
the Batch API, so a field AWS does not know, or a value of the wrong type, fails a unit test.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from airflow_batch_runner import array_outcome, array_spec, fargate, job_spec, layout, outcome, validation
from airflow_batch_runner.fargate import FARGATE_MEMORY, is_valid_fargate_pair
from airflow_batch_runner.job_spec import (
    AWS_CLI_IMAGE,
    JobSpec,
    Resources,
    build_job_definition,
    build_submit_request,
    definition_name,
    main_script,
    queue_name_for,
)
from airflow_batch_runner.layout import (
    OUTPUT_DIR,
    VOLUME_NAME,
    VOLUME_ROOT,
    WORKING_DIR,
    TaskIdentity,
    bucket_and_key,
    output_name,
)
from airflow_batch_runner.validation import (
    DEFAULT_RESOURCES,
    check_commands,
    check_fargate_resources,
    check_image,
    check_relative_name,
    compute_environment_platform,
    parse_resources,
)

BATCH_MODEL = botocore.session.get_session().get_service_model("batch")
EXECUTION_ROLE = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
TASK_ROLE = "arn:aws:iam::123456789012:role/batch-job-role"
BUCKET_PATH = "s3://my-bucket/airflow-batch-runner/etl/manual__2025-01-01/shell/-1/0001/"
QUEUE = "arn:aws:batch:eu-west-1:123456789012:job-queue/airflow"
IDENTITY = TaskIdentity("etl", "shell", "manual__2025-01-01T00:00:00+00:00", map_index=-1, try_number=1)
# AWS's rule for job, job definition and job queue names.
AWS_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")

LAYOUTS = ("main_only", "main_outputs", "inputs_main_outputs")
PLATFORMS = ("FARGATE", "EC2")
EXPECTED_CONTAINERS = {
    "main_only": ["main"],
    "main_outputs": ["main", "outputs"],
    "inputs_main_outputs": ["inputs", "main", "outputs"],
}


def make_spec(layout: str = "main_only", platform: str = "EC2", **changes: Any) -> JobSpec:
    """A realistic spec in one of the three layouts; ``changes`` override any field."""
    fields: dict[str, Any] = {
        "image": "ubuntu:24.04",
        "commands": ("echo hello > out.txt",),
        "platform": platform,
        "resources": Resources(1.0, 2048),
        "env": {"GREETING": "hello"},
        "execution_role_arn": EXECUTION_ROLE if platform == "FARGATE" else None,
        "region": "eu-west-1",
    }
    if layout != "main_only":
        fields["bucket_path"] = BUCKET_PATH
        fields["output_patterns"] = ("out.txt", "*.csv")
    if layout == "inputs_main_outputs":
        fields["has_inputs"] = True
    fields.update(changes)
    return JobSpec(**fields)


def definition_containers(definition: dict[str, Any]) -> list[dict[str, Any]]:
    tasks = definition["ecsProperties"]["taskProperties"]
    assert len(tasks) == 1
    return tasks[0]["containers"]


def definition_task(definition: dict[str, Any]) -> dict[str, Any]:
    return definition["ecsProperties"]["taskProperties"][0]


def override_containers(request: dict[str, Any]) -> list[dict[str, Any]]:
    tasks = request["ecsPropertiesOverride"]["taskProperties"]
    assert len(tasks) == 1
    return tasks[0]["containers"]


def by_name(containers: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in containers}


def requirement(container: dict[str, Any], kind: str) -> str:
    values = [r["value"] for r in container["resourceRequirements"] if r["type"] == kind]
    assert len(values) == 1, container["resourceRequirements"]
    return values[0]


def totals(containers: list[dict[str, Any]]) -> tuple[Decimal, Decimal]:
    cpu = sum((Decimal(requirement(c, "VCPU")) for c in containers), Decimal(0))
    memory = sum((Decimal(requirement(c, "MEMORY")) for c in containers), Decimal(0))
    return cpu, memory


def environment_of(container: dict[str, Any]) -> dict[str, str]:
    names = [e["name"] for e in container["environment"]]
    assert len(names) == len(set(names)), f"duplicate environment names: {names}"
    return {e["name"]: e["value"] for e in container["environment"]}


def assert_valid_for_botocore(operation: str, params: dict[str, Any]) -> None:
    shape = BATCH_MODEL.operation_model(operation).input_shape
    assert shape is not None
    report = ParamValidator().validate(params, shape)
    assert not report.has_errors(), report.generate_report()


# Botocore's model of the Batch API


def test_botocore_validation_really_rejects_a_malformed_request():
    """The helper below must be able to fail, or the validation tests prove nothing."""
    request = build_submit_request(make_spec(), IDENTITY, QUEUE, 3600)
    request["timeout"] = {"attemptDurationSeconds": "3600"}
    request["ecsPropertiesOverride"]["taskProperties"][0]["containers"][0]["unknownField"] = 1
    with pytest.raises(AssertionError, match="attemptDurationSeconds"):
        assert_valid_for_botocore("SubmitJob", request)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("task_role", [None, TASK_ROLE])
@pytest.mark.parametrize("region", [None, "eu-west-1"])
def test_job_definition_is_valid_for_register_job_definition(layout, platform, task_role, region):
    spec = make_spec(layout, platform, task_role_arn=task_role, region=region)
    assert_valid_for_botocore("RegisterJobDefinition", build_job_definition(spec))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("attempt_duration", [None, 5, 3600])
def test_submit_request_is_valid_for_submit_job(layout, platform, attempt_duration):
    identity = TaskIdentity("dag with spaces", "group.task/ü", "manual__2025-01-01T00:00:00+00:00", 7, 3)
    spec = make_spec(layout, platform, env={"A": "1", "B": "two words"}, task_role_arn=TASK_ROLE)
    assert_valid_for_botocore("SubmitJob", build_submit_request(spec, identity, QUEUE, attempt_duration))


# Container layout of the job definition


def test_without_bucket_the_job_is_the_main_container_alone_and_it_is_essential():
    containers = definition_containers(build_job_definition(make_spec("main_only")))
    assert [c["name"] for c in containers] == ["main"]
    assert containers[0]["essential"] is True
    assert "dependsOn" not in containers[0]


def test_with_bucket_but_no_inputs_outputs_sidecar_runs_after_main_succeeds():
    containers = definition_containers(build_job_definition(make_spec("main_outputs")))
    assert [c["name"] for c in containers] == ["main", "outputs"]
    main, outputs = containers
    assert "dependsOn" not in main
    assert outputs["dependsOn"] == [{"containerName": "main", "condition": "SUCCESS"}]
    assert main["essential"] is False
    assert outputs["essential"] is True


def test_with_inputs_the_chain_is_inputs_then_main_then_outputs_each_on_success():
    containers = definition_containers(build_job_definition(make_spec("inputs_main_outputs")))
    assert [c["name"] for c in containers] == ["inputs", "main", "outputs"]
    inputs, main, outputs = containers
    assert "dependsOn" not in inputs
    assert main["dependsOn"] == [{"containerName": "inputs", "condition": "SUCCESS"}]
    assert outputs["dependsOn"] == [{"containerName": "main", "condition": "SUCCESS"}]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_only_the_last_container_is_essential_because_success_targets_cannot_be(layout):
    containers = definition_containers(build_job_definition(make_spec(layout)))
    assert [c["essential"] for c in containers] == [False] * (len(containers) - 1) + [True]
    targets = {d["containerName"] for c in containers for d in c.get("dependsOn", [])}
    assert all(not c["essential"] for c in containers if c["name"] in targets)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_main_runs_the_users_image_and_sidecars_run_the_aws_cli(layout):
    spec = make_spec(layout, image="123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/tool:1.2")
    containers = by_name(definition_containers(build_job_definition(spec)))
    assert containers["main"]["image"] == spec.image
    for name in set(containers) - {"main"}:
        assert containers[name]["image"] == AWS_CLI_IMAGE


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_container_mounts_the_one_shared_task_volume(layout):
    definition = build_job_definition(make_spec(layout))
    assert definition_task(definition)["volumes"] == [{"name": VOLUME_NAME}]
    for container in definition_containers(definition):
        assert container["mountPoints"] == [{"sourceVolume": VOLUME_NAME, "containerPath": VOLUME_ROOT}]
    # The working and output dirs live on that volume, so the sidecars see what main wrote.
    assert WORKING_DIR.startswith(f"{VOLUME_ROOT}/")
    assert OUTPUT_DIR.startswith(f"{VOLUME_ROOT}/")


def test_definition_is_a_container_job_tagged_as_managed_by_the_runner():
    definition = build_job_definition(make_spec())
    assert definition["type"] == "container"
    assert definition["tags"] == {"airflow:managed-by": "airflow-batch-runner"}
    assert definition["jobDefinitionName"] == definition_name(make_spec())


@pytest.mark.parametrize("layout", LAYOUTS)
def test_definition_commands_are_harmless_placeholders_for_the_per_run_overrides(layout):
    containers = by_name(definition_containers(build_job_definition(make_spec(layout))))
    assert containers["main"]["command"] == ["/bin/sh", "-c", "true"]
    for name in set(containers) - {"main"}:
        assert containers[name]["command"] == ["--version"]


def test_definition_carries_no_per_run_data():
    spec = make_spec(
        "inputs_main_outputs",
        commands=("echo per-run-command-marker",),
        env={"PER_RUN_VARIABLE": "per-run-value-marker"},
        output_patterns=("per-run-output-marker.txt",),
    )
    text = json.dumps(build_job_definition(spec))
    for marker in ("per-run-command-marker", "PER_RUN_VARIABLE", "per-run-value-marker", "per-run-output-marker"):
        assert marker not in text
    assert spec.bucket_path is not None
    assert spec.bucket_path not in text
    assert "environment" not in text


# Platform and roles


def test_fargate_definition_declares_fargate_public_ip_and_execution_role():
    definition = build_job_definition(make_spec(platform="FARGATE", execution_role_arn=EXECUTION_ROLE))
    task = definition_task(definition)
    assert definition["platformCapabilities"] == ["FARGATE"]
    assert task["networkConfiguration"] == {"assignPublicIp": "ENABLED"}
    assert task["platformVersion"] == "LATEST"
    assert task["executionRoleArn"] == EXECUTION_ROLE


def test_ec2_definition_declares_ec2_without_fargate_networking():
    definition = build_job_definition(make_spec(platform="EC2"))
    task = definition_task(definition)
    assert definition["platformCapabilities"] == ["EC2"]
    assert "networkConfiguration" not in task
    assert "platformVersion" not in task
    assert "executionRoleArn" not in task


def test_ec2_definition_keeps_an_execution_role_when_one_is_given():
    definition = build_job_definition(make_spec(platform="EC2", execution_role_arn=EXECUTION_ROLE))
    assert definition_task(definition)["executionRoleArn"] == EXECUTION_ROLE


@pytest.mark.parametrize("platform", PLATFORMS)
def test_task_role_becomes_the_jobs_own_aws_identity(platform):
    with_role = definition_task(build_job_definition(make_spec(platform=platform, task_role_arn=TASK_ROLE)))
    without_role = definition_task(build_job_definition(make_spec(platform=platform)))
    assert with_role["taskRoleArn"] == TASK_ROLE
    assert "taskRoleArn" not in without_role


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_container_logs_to_cloudwatch_under_the_definition_name(layout):
    spec = make_spec(layout, region="ap-southeast-2")
    definition = build_job_definition(spec)
    for container in definition_containers(definition):
        assert container["logConfiguration"] == {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": "/aws/batch/job",
                "awslogs-stream-prefix": definition["jobDefinitionName"],
                "awslogs-region": "ap-southeast-2",
            },
        }


def test_log_region_is_left_to_aws_when_no_region_is_known():
    definition = build_job_definition(make_spec(region=None))
    options = definition_containers(definition)[0]["logConfiguration"]["options"]
    assert "awslogs-region" not in options
    assert options["awslogs-group"] == "/aws/batch/job"


# The SubmitJob request


@pytest.mark.parametrize("layout", LAYOUTS)
def test_submit_overrides_every_container_of_the_definition_in_the_same_order(layout):
    spec = make_spec(layout)
    request = build_submit_request(spec, IDENTITY, QUEUE, None)
    names = [c["name"] for c in override_containers(request)]
    assert names == EXPECTED_CONTAINERS[layout]
    assert names == [c["name"] for c in definition_containers(build_job_definition(spec))]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_submit_uses_the_content_hash_definition_the_queue_and_the_identity(layout):
    spec = make_spec(layout)
    request = build_submit_request(spec, IDENTITY, QUEUE, None)
    assert request["jobDefinition"] == build_job_definition(spec)["jobDefinitionName"]
    assert request["jobQueue"] == QUEUE
    assert request["jobName"] == IDENTITY.job_name
    assert request["tags"] == IDENTITY.tags()
    assert request["propagateTags"] is True


@pytest.mark.parametrize("layout", LAYOUTS)
def test_main_runs_the_commands_through_the_main_script(layout):
    spec = make_spec(layout, commands=("echo one", "echo two"))
    main = by_name(override_containers(build_submit_request(spec, IDENTITY, QUEUE, None)))["main"]
    assert main["command"] == ["/bin/sh", "-c", main_script(spec.commands, spec.output_patterns, spec.has_outputs)]
    assert "echo one" in main["command"][2]
    assert "echo two" in main["command"][2]


def test_main_gets_the_users_environment_plus_working_and_output_dirs_and_bucket_path():
    spec = make_spec("main_outputs", env={"GREETING": "hello", "EMPTY": ""})
    main = by_name(override_containers(build_submit_request(spec, IDENTITY, QUEUE, None)))["main"]
    assert environment_of(main) == {
        "GREETING": "hello",
        "EMPTY": "",
        "WORKING_DIR": WORKING_DIR,
        "OUTPUT_DIR": OUTPUT_DIR,
        "BUCKET_PATH": BUCKET_PATH,
        "OUTPUTS_FILE": f"{VOLUME_ROOT}/outputs.json",
    }


def test_without_bucket_main_has_no_bucket_path_variable():
    main = by_name(override_containers(build_submit_request(make_spec("main_only"), IDENTITY, QUEUE, None)))["main"]
    env = environment_of(main)
    assert "BUCKET_PATH" not in env and "OUTPUTS_FILE" not in env
    assert env["WORKING_DIR"] == WORKING_DIR
    assert env["OUTPUT_DIR"] == OUTPUT_DIR


def test_users_environment_cannot_move_the_runners_directories():
    spec = make_spec("main_outputs", env={"WORKING_DIR": "/elsewhere", "BUCKET_PATH": "s3://other/"})
    env = environment_of(by_name(override_containers(build_submit_request(spec, IDENTITY, QUEUE, None)))["main"])
    assert env["WORKING_DIR"] == WORKING_DIR
    assert env["BUCKET_PATH"] == BUCKET_PATH


def test_non_string_environment_values_are_sent_as_strings():
    spec = make_spec(env={"RETRIES": 3, "RATIO": 0.5})
    request = build_submit_request(spec, IDENTITY, QUEUE, None)
    env = environment_of(override_containers(request)[0])
    assert env["RETRIES"] == "3"
    assert env["RATIO"] == "0.5"
    assert_valid_for_botocore("SubmitJob", request)


@pytest.mark.parametrize("layout", ["main_outputs", "inputs_main_outputs"])
def test_only_main_receives_the_environment(layout):
    containers = override_containers(build_submit_request(make_spec(layout), IDENTITY, QUEUE, None))
    assert [c["name"] for c in containers if "environment" in c] == ["main"]


def test_inputs_sidecar_copies_the_staged_prefix_into_the_working_dir():
    spec = make_spec("inputs_main_outputs")
    inputs = by_name(override_containers(build_submit_request(spec, IDENTITY, QUEUE, None)))["inputs"]
    assert inputs["command"] == [
        "s3", "cp", "--recursive", "--only-show-errors", f"{BUCKET_PATH}inputs/", f"{WORKING_DIR}/",
    ]


def test_outputs_sidecar_uploads_only_declared_files_and_the_output_dir():
    spec = make_spec("main_outputs", output_patterns=("out.txt", "reports/*.csv"))
    outputs = by_name(override_containers(build_submit_request(spec, IDENTITY, QUEUE, None)))["outputs"]
    command = outputs["command"]
    assert command[:6] == ["s3", "cp", "--recursive", "--only-show-errors", f"{VOLUME_ROOT}/", BUCKET_PATH]
    filters = command[6:]
    # Later filters win in the AWS CLI: exclude everything first, then include what was asked for; a
    # declared name that is a directory brings everything in it.
    assert filters == [
        "--exclude", "*",
        "--include", "work/out.txt", "--include", "work/out.txt/*",
        "--include", "work/reports/*.csv", "--include", "work/reports/*.csv/*",
        "--include", "output/*",
        "--include", "outputs.json",
    ]
    # Every object written under an include maps back to a name for XCom.
    assert output_name("work/out.txt") == "out.txt"
    assert output_name("work/reports/a.csv") == "reports/a.csv"
    assert output_name("output/anything.bin") == "anything.bin"


def test_outputs_sidecar_without_declared_files_still_uploads_the_output_dir():
    spec = make_spec("main_outputs", output_patterns=())
    outputs = by_name(override_containers(build_submit_request(spec, IDENTITY, QUEUE, None)))["outputs"]
    assert outputs["command"][6:] == ["--exclude", "*", "--include", "output/*", "--include", "outputs.json"]


def test_without_bucket_no_sidecar_command_is_sent():
    request = build_submit_request(make_spec("main_only"), IDENTITY, QUEUE, None)
    assert "s3" not in json.dumps(request)


@pytest.mark.parametrize(
    ("requested", "sent"),
    [(3600, 3600), (61, 61), (60, 60), (59, 60), (1, 60), (0, 60), (90.7, 90)],
)
def test_attempt_duration_is_at_least_sixty_seconds(requested, sent):
    request = build_submit_request(make_spec(), IDENTITY, QUEUE, requested)
    assert request["timeout"] == {"attemptDurationSeconds": sent}
    assert isinstance(request["timeout"]["attemptDurationSeconds"], int)


def test_without_attempt_duration_no_timeout_is_sent():
    assert "timeout" not in build_submit_request(make_spec(), IDENTITY, QUEUE, None)


# Resources


RESOURCE_TOTALS = [
    (0.25, 512),
    (0.25, 2048),
    (0.5, 1024),
    (1, 2048),
    (1.5, 3000),
    (2, 4096),
    (3.3, 5000),
    (0.3, 700),
    (0.1, 100),
    (4, 30720),
    (16, 122880),
    (96, 786432),
]


def _decimal(value: float) -> Decimal:
    return Decimal(f"{value}")


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("cpu", "memory"), RESOURCE_TOTALS)
def test_containers_share_exactly_the_requested_resources(layout, cpu, memory):
    spec = make_spec(layout, resources=Resources(cpu, memory))
    for containers in (
        override_containers(build_submit_request(spec, IDENTITY, QUEUE, None)),
        definition_containers(build_job_definition(spec)),
    ):
        assert totals(containers) == (_decimal(cpu), Decimal(memory))
        for container in containers:
            assert re.fullmatch(r"\d+(\.\d+)?", requirement(container, "VCPU")), container
            assert re.fullmatch(r"\d+", requirement(container, "MEMORY")), container
            assert Decimal(requirement(container, "VCPU")) > 0
            assert Decimal(requirement(container, "MEMORY")) > 0


@pytest.mark.parametrize("layout", ["main_outputs", "inputs_main_outputs"])
def test_sidecars_take_a_small_share_and_main_keeps_the_rest(layout):
    spec = make_spec(layout, resources=Resources(4, 8192))
    containers = by_name(override_containers(build_submit_request(spec, IDENTITY, QUEUE, None)))
    sidecars = [c for name, c in containers.items() if name != "main"]
    for sidecar in sidecars:
        assert requirement(sidecar, "VCPU") == "0.125"
        assert requirement(sidecar, "MEMORY") == "128"
    assert Decimal(requirement(containers["main"], "VCPU")) == Decimal(4) - Decimal("0.125") * len(sidecars)
    assert int(requirement(containers["main"], "MEMORY")) == 8192 - 128 * len(sidecars)


def test_without_sidecars_main_asks_for_the_whole_job():
    spec = make_spec("main_only", resources=Resources(2, 4096))
    (main,) = override_containers(build_submit_request(spec, IDENTITY, QUEUE, None))
    assert requirement(main, "VCPU") == "2"
    assert requirement(main, "MEMORY") == "4096"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_valid_fargate_pair_stays_a_valid_fargate_pair_after_the_split(layout):
    checked = 0
    for cpu, memories in FARGATE_MEMORY.items():
        for memory in memories:
            spec = make_spec(layout, "FARGATE", resources=Resources(cpu, memory))
            for containers in (
                override_containers(build_submit_request(spec, IDENTITY, QUEUE, None)),
                definition_containers(build_job_definition(spec)),
            ):
                total_cpu, total_memory = totals(containers)
                assert (total_cpu, total_memory) == (_decimal(cpu), Decimal(memory))
                assert is_valid_fargate_pair(float(total_cpu), int(total_memory))
            checked += 1
    assert checked == 74


def test_default_resources_are_one_vcpu_and_two_gib():
    assert parse_resources(DEFAULT_RESOURCES) == Resources(1.0, 2048)
    check_fargate_resources(parse_resources(DEFAULT_RESOURCES))


# Identity: run key, job name, tags, bucket path


def test_run_key_is_stable_across_tries_of_one_task_instance():
    first = TaskIdentity("etl", "shell", "run-1", map_index=2, try_number=1)
    retry = replace(first, try_number=4)
    assert first.run_key == retry.run_key
    assert first.job_name == retry.job_name
    assert re.fullmatch(r"[0-9a-f]{16}", first.run_key)


@pytest.mark.parametrize(
    "other",
    [
        TaskIdentity("etl", "shell", "run-1", map_index=3),
        TaskIdentity("etl", "shell", "run-2", map_index=2),
        TaskIdentity("etl", "other", "run-1", map_index=2),
        TaskIdentity("other", "shell", "run-1", map_index=2),
    ],
)
def test_run_key_differs_for_another_task_instance(other):
    assert TaskIdentity("etl", "shell", "run-1", map_index=2).run_key != other.run_key
    assert TaskIdentity("etl", "shell", "run-1", map_index=2).job_name != other.job_name


def test_run_key_does_not_confuse_ids_that_concatenate_alike():
    assert TaskIdentity("a-b", "c", "r").run_key != TaskIdentity("a", "b-c", "r").run_key
    assert TaskIdentity("a", "b", "r1", 1).run_key != TaskIdentity("a", "b", "r", 11).run_key


def test_job_name_is_a_readable_slug_followed_by_the_run_key():
    identity = TaskIdentity("etl_daily", "load-table", "run")
    assert identity.job_name == f"etl_daily-load-table-{identity.run_key}"


@pytest.mark.parametrize(
    ("dag_id", "task_id"),
    [
        ("etl", "shell"),
        ("dag.with.dots", "group.inner_task"),
        ("ünïcödé", "タスク"),
        ("-leading-dash", "_leading_underscore"),
        ("___", "---"),
        ("", ""),
        ("a b/c:d", "e+f@g"),
        ("x" * 250, "y" * 250),
        ("9starts_with_digit", "t"),
        (".", "."),
    ],
)
def test_job_name_is_valid_for_aws_whatever_the_ids(dag_id, task_id):
    identity = TaskIdentity(dag_id, task_id, "manual__2025-01-01T00:00:00+00:00")
    name = identity.job_name
    assert AWS_NAME_RE.fullmatch(name), name
    assert len(name) <= 128
    assert name.endswith(identity.run_key)


def test_tags_record_the_task_instance_and_the_run_key():
    identity = TaskIdentity("etl", "shell", "scheduled__2025-01-01T00:00:00+00:00", map_index=5, try_number=3)
    assert identity.tags() == {
        "airflow:dag_id": "etl",
        "airflow:task_id": "shell",
        "airflow:run_id": "scheduled__2025-01-01T00:00:00+00:00",
        "airflow:map_index": "5",
        "airflow:try_number": "3",
        "airflow:run_key": identity.run_key,
    }


def test_tags_fit_aws_limits_even_for_very_long_ids():
    identity = TaskIdentity("d" * 300, "t" * 300, "r" * 300)
    tags = identity.tags()
    assert all(len(key) <= 128 for key in tags)
    assert all(0 < len(value) <= 256 for value in tags.values())
    assert tags["airflow:dag_id"] == "d" * 256


def test_bucket_path_is_laid_out_by_dag_run_task_map_index_and_submission():
    identity = TaskIdentity("etl", "shell", "run-1", map_index=3)
    assert identity.bucket_path("my-bucket", "sub-1") == "s3://my-bucket/airflow-batch-runner/etl/run-1/shell/3/sub-1/"


def test_bucket_path_is_fresh_for_every_submission():
    identity = TaskIdentity("etl", "shell", "run-1")
    first, retry = identity.bucket_path("b", "sub-1"), identity.bucket_path("b", "sub-2")
    assert first != retry
    assert not retry.startswith(first)
    assert not first.startswith(retry)


def test_bucket_path_separates_mapped_task_instances():
    first = TaskIdentity("etl", "shell", "r", map_index=0).bucket_path("b", "s")
    second = TaskIdentity("etl", "shell", "r", map_index=1).bucket_path("b", "s")
    assert first != second


def test_bucket_path_sanitises_every_segment():
    identity = TaskIdentity("dag one", "group/task", "manual__2025-01-01T00:00:00+00:00")
    path = identity.bucket_path("my-bucket", "a/b c")
    bucket, key = bucket_and_key(path)
    assert bucket == "my-bucket"
    segments = key.rstrip("/").split("/")
    assert segments == [
        "airflow-batch-runner", "dag_one", "manual__2025-01-01T00_00_00_00_00", "group_task", "-1", "a_b_c",
    ]
    assert all(re.fullmatch(r"[A-Za-z0-9._=-]+", s) for s in segments)
    assert path.endswith("/")


# Job definition name (content hash)


def test_definition_name_is_stable_for_the_same_configuration():
    assert definition_name(make_spec("inputs_main_outputs", "FARGATE")) == definition_name(
        make_spec("inputs_main_outputs", "FARGATE")
    )


def test_definition_name_is_valid_for_aws():
    name = definition_name(make_spec())
    assert AWS_NAME_RE.fullmatch(name)
    assert name.startswith("airflow-batch-runner-")


@pytest.mark.parametrize(
    "change",
    [
        {"image": "ubuntu:22.04"},
        {"execution_role_arn": "arn:aws:iam::123456789012:role/other-execution"},
        {"task_role_arn": TASK_ROLE},
        {"platform": "FARGATE"},
        {"region": "us-east-1"},
        {"bucket_path": BUCKET_PATH},
        {"bucket_path": BUCKET_PATH, "has_inputs": True},
    ],
    ids=["image", "execution_role", "task_role", "platform", "region", "outputs_layout", "inputs_layout"],
)
def test_definition_name_changes_with_what_the_definition_holds(change):
    base = make_spec("main_only", "EC2")
    assert definition_name(base) != definition_name(replace(base, **change))


def test_each_layout_has_its_own_definition():
    names = {definition_name(make_spec(layout)) for layout in LAYOUTS}
    assert len(names) == len(LAYOUTS)


@pytest.mark.parametrize(
    "change",
    [
        {"commands": ("something else entirely",)},
        {"env": {"OTHER": "value"}},
        {"resources": Resources(4, 16384)},
        {"output_patterns": ("another.txt",)},
        {"bucket_path": "s3://another-bucket/airflow-batch-runner/x/y/z/0/9/"},
    ],
    ids=["commands", "env", "resources", "output_patterns", "bucket_path_value"],
)
def test_definition_name_ignores_per_run_data_that_travels_in_overrides(change):
    base = make_spec("main_outputs", "FARGATE")
    changed = replace(base, **change)
    assert definition_name(base) == definition_name(changed)
    # ... and the override really carries the change.
    assert build_submit_request(base, IDENTITY, QUEUE, None) != build_submit_request(changed, IDENTITY, QUEUE, None)


# Queue name


def test_queue_name_is_derived_from_the_compute_environment_and_stable():
    arn = "arn:aws:batch:eu-west-1:123456789012:compute-environment/fargate-ce"
    name = queue_name_for(arn)
    assert name == queue_name_for(arn)
    assert name.startswith("airflow-batch-runner-fargate-ce-")
    assert AWS_NAME_RE.fullmatch(name)


def test_queue_name_differs_for_same_named_environments_in_other_accounts_or_regions():
    names = {
        queue_name_for("arn:aws:batch:eu-west-1:123456789012:compute-environment/ce"),
        queue_name_for("arn:aws:batch:us-east-1:123456789012:compute-environment/ce"),
        queue_name_for("arn:aws:batch:eu-west-1:210987654321:compute-environment/ce"),
    }
    assert len(names) == 3


@pytest.mark.parametrize("ce_name", ["c" * 128, "ce_with_underscores-and-dashes", "Ce9"])
def test_queue_name_is_valid_for_aws_even_for_long_environment_names(ce_name):
    name = queue_name_for(f"arn:aws:batch:eu-west-1:123456789012:compute-environment/{ce_name}")
    assert AWS_NAME_RE.fullmatch(name), name


# The main container's script, actually run with /bin/sh


def run_main_script(
    tmp_path: Path, commands: list[str], outputs: tuple[str, ...] = (), collect: bool = False, staged: bool = False,
    path: str | None = None,
) -> subprocess.CompletedProcess:
    """The main script run with /bin/sh, the volume under ``tmp_path`` (its container path rewritten, as
    the emulator does); ``staged``: the commands arrive as the staged script, as the inputs sidecar leaves it."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    volume = tmp_path / "volume"
    env = {
        "PATH": path or os.environ.get("PATH", "/usr/bin:/bin"),
        "WORKING_DIR": str(volume / "work"),
        "OUTPUT_DIR": str(volume / "output"),
    }
    if staged:
        script = volume / "work" / layout.STAGED_SCRIPT
        script.parent.mkdir(parents=True)
        script.write_text(job_spec.staged_script(commands))
    return subprocess.run(
        ["/bin/sh", "-c", main_script(commands, outputs, collect, staged).replace(VOLUME_ROOT, str(volume))],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def work(tmp_path: Path) -> Path:
    return tmp_path / "volume" / "work"


def test_script_creates_working_and_output_dirs_and_runs_in_the_working_dir(tmp_path):
    result = run_main_script(tmp_path, ["pwd > where.txt"])
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "volume" / "output").is_dir()
    assert Path((work(tmp_path) / "where.txt").read_text().strip()).resolve() == work(tmp_path).resolve()


def test_script_runs_commands_in_order(tmp_path):
    result = run_main_script(tmp_path, ["echo one >> log", "echo two >> log", "echo three >> log"])
    assert result.returncode == 0, result.stderr
    assert (work(tmp_path) / "log").read_text() == "one\ntwo\nthree\n"


@pytest.mark.parametrize(("failing", "code"), [("false", 1), ("(exit 7)", 7), ("sh -c 'exit 42'", 42)])
def test_first_failing_command_sets_the_exit_code_and_stops_the_script(tmp_path, failing, code):
    result = run_main_script(tmp_path, ["echo before >> log", failing, "echo after >> log", "(exit 9)"])
    assert result.returncode == code
    assert (work(tmp_path) / "log").read_text() == "before\n"


def test_unknown_command_fails_with_the_shells_not_found_code(tmp_path):
    result = run_main_script(tmp_path, ["no-such-command-abr", "echo after > after.txt"])
    assert result.returncode == 127
    assert not (work(tmp_path) / "after.txt").exists()


def test_cd_in_one_command_persists_to_the_next(tmp_path):
    result = run_main_script(tmp_path, ["mkdir -p sub/dir", "cd sub/dir", "echo here > marker.txt"])
    assert result.returncode == 0, result.stderr
    assert (work(tmp_path) / "sub" / "dir" / "marker.txt").read_text() == "here\n"
    assert not (work(tmp_path) / "marker.txt").exists()


def test_variables_set_in_one_command_are_seen_by_the_next(tmp_path):
    result = run_main_script(tmp_path, ["NAME=abc", 'echo "$NAME" > name.txt'])
    assert result.returncode == 0, result.stderr
    assert (work(tmp_path) / "name.txt").read_text() == "abc\n"


def test_multi_line_commands_loops_and_heredocs_work(tmp_path):
    result = run_main_script(
        tmp_path,
        [
            "for i in 1 2 3; do\n  echo $i >> loop.txt\ndone",
            "cat > doc.txt <<EOF\nfirst line\nsecond line\nEOF",
            "if [ -f doc.txt ]; then\n  echo yes > cond.txt\nfi",
        ],
    )
    assert result.returncode == 0, result.stderr
    assert (work(tmp_path) / "loop.txt").read_text() == "1\n2\n3\n"
    assert (work(tmp_path) / "doc.txt").read_text() == "first line\nsecond line\n"
    assert (work(tmp_path) / "cond.txt").read_text() == "yes\n"


def test_a_trailing_comment_does_not_swallow_the_rest_of_the_script(tmp_path):
    result = run_main_script(tmp_path, ["echo a >> log # a comment", "false # fails"])
    assert result.returncode == 1
    assert (work(tmp_path) / "log").read_text() == "a\n"


def test_blank_commands_are_skipped(tmp_path):
    result = run_main_script(tmp_path, ["", "   ", "echo ok > ok.txt", "\n"])
    assert result.returncode == 0, result.stderr
    assert (work(tmp_path) / "ok.txt").read_text() == "ok\n"


def test_working_and_output_dirs_are_usable_through_their_variables(tmp_path):
    result = run_main_script(tmp_path, ['echo data > "$OUTPUT_DIR/report.txt"', 'cp "$OUTPUT_DIR/report.txt" copy.txt'])
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "volume" / "output" / "report.txt").read_text() == "data\n"
    assert (work(tmp_path) / "copy.txt").read_text() == "data\n"


@pytest.mark.parametrize("declared", ["out.txt", "*.csv", "reports/summary.txt", "reports/*.json"])
def test_declared_output_that_was_not_written_fails_with_a_message_naming_it(tmp_path, declared):
    result = run_main_script(tmp_path, ["echo unrelated > other.dat"], outputs=(declared,))
    assert result.returncode == 1
    assert f"output file {declared} was not written" in result.stderr


def test_only_the_missing_declared_output_is_named(tmp_path):
    result = run_main_script(tmp_path, ["echo x > present.txt"], outputs=("present.txt", "absent.txt"))
    assert result.returncode == 1
    assert "absent.txt" in result.stderr
    assert "present.txt" not in result.stderr


def test_written_outputs_names_and_globs_pass(tmp_path):
    result = run_main_script(
        tmp_path,
        ["echo x > out.txt", "echo a,b > one.csv", "echo c,d > two.csv", "mkdir reports", "echo {} > reports/r.json"],
        outputs=("out.txt", "*.csv", "reports/*.json"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_outputs_are_checked_in_the_working_dir_even_after_a_cd(tmp_path):
    moved = ["mkdir elsewhere", "cd elsewhere"]
    ok = run_main_script(tmp_path / "ok", [*moved, 'echo x > "$WORKING_DIR/out.txt"'], ("out.txt",))
    assert ok.returncode == 0, ok.stderr
    wrong_place = run_main_script(tmp_path / "wrong", [*moved, "echo x > out.txt"], ("out.txt",))
    assert wrong_place.returncode == 1
    assert "out.txt" in wrong_place.stderr


@pytest.mark.parametrize("declared", ["my file.txt", "it's $HOME.txt", "semi;colon.txt"])
def test_written_outputs_with_spaces_quotes_or_dollars_in_their_names_pass(tmp_path, declared):
    result = run_main_script(tmp_path, [f"echo x > {shlex.quote(declared)}"], outputs=(declared,))
    assert result.returncode == 0, result.stderr


def test_a_space_in_a_missing_declared_output_is_still_one_name(tmp_path):
    result = run_main_script(tmp_path, ["echo x > my"], outputs=("my file.txt",))
    assert result.returncode == 1
    assert "output file my file.txt was not written" in result.stderr


def test_output_check_does_not_run_when_a_command_already_failed(tmp_path):
    result = run_main_script(tmp_path, ["(exit 3)"], outputs=("never.txt",))
    assert result.returncode == 3
    assert "was not written" not in result.stderr


@pytest.mark.parametrize("staged", [False, True])
@pytest.mark.parametrize("exit_command", ["exit 0", "exit", "true; exit 0"])
def test_an_exit_among_the_commands_cannot_skip_the_output_check(tmp_path, exit_command, staged):
    result = run_main_script(tmp_path, [exit_command, "echo x > out.txt"], outputs=("out.txt",), staged=staged)
    assert result.returncode == 1
    assert "output file out.txt was not written" in result.stderr


@pytest.mark.parametrize("staged", [False, True])
def test_an_exit_with_a_failing_code_still_fails_with_it(tmp_path, staged):
    result = run_main_script(tmp_path, ["echo x > out.txt", "exit 7"], outputs=("out.txt",), staged=staged)
    assert result.returncode == 7


def test_staged_commands_run_in_order_in_the_working_dir_and_leave_no_script_there(tmp_path):
    commands = ["pwd > where.txt", "NAME=abc", 'echo "$NAME" >> where.txt', "false", "echo never > never.txt"]
    result = run_main_script(tmp_path, commands, staged=True)
    assert result.returncode == 1
    assert (work(tmp_path) / "where.txt").read_text() == f"{work(tmp_path)}\nabc\n"
    assert not (work(tmp_path) / "never.txt").exists()
    assert not (work(tmp_path) / layout.RUNNER_DIR).exists()


def test_a_declared_directory_passes_when_it_holds_files_and_fails_when_empty(tmp_path):
    full = run_main_script(tmp_path / "full", ["mkdir -p results/deep", "echo x > results/deep/a.txt"], ("results",))
    assert full.returncode == 0, full.stderr
    empty = run_main_script(tmp_path / "empty", ["mkdir results"], ("results",))
    assert empty.returncode == 1
    assert "output directory results in" in empty.stderr and "is empty" in empty.stderr


def test_a_declared_output_that_is_a_dangling_link_is_not_written(tmp_path):
    result = run_main_script(tmp_path, ["ln -s /nonexistent/abr out.txt"], outputs=("out.txt",), collect=True)
    assert result.returncode == 1
    assert "output file out.txt was not written" in result.stderr


def path_without_find(tmp_path: Path) -> str:
    """A PATH with the tools the test's commands use, but no ``find`` (as in a minimal image)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("mkdir", "ls", "rm", "ln", "mkfifo", "cat", "mv", "rmdir"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    (bin_dir / "python3").symlink_to(sys.executable)
    return str(bin_dir)


@pytest.mark.parametrize("with_find", [True, False], ids=["find", "shell-only"])
def test_dangling_links_fifos_and_sockets_are_left_out_with_a_line_naming_each(tmp_path, with_find):
    commands = [
        'ln -s /nonexistent/abr "$OUTPUT_DIR/dangling"',
        'mkdir -p "$OUTPUT_DIR/sub" && mkfifo "$OUTPUT_DIR/sub/pipe"',
        'python3 -c "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])" "$OUTPUT_DIR/.sock"',
        "ln -s /nonexistent/abr stray-link",
        'echo kept > "$OUTPUT_DIR/kept.txt"',
        'ln -s kept.txt "$OUTPUT_DIR/good-link"',
    ]
    path = None if with_find else path_without_find(tmp_path)
    result = run_main_script(tmp_path, commands, collect=True, path=path)
    assert result.returncode == 0, result.stderr
    output = tmp_path / "volume" / "output"
    assert f"not collecting {output}/dangling: a dangling symbolic link" in result.stderr
    assert f"not collecting {output}/sub/pipe: not a regular file (a fifo, socket or device)" in result.stderr
    assert f"not collecting {output}/.sock: not a regular file" in result.stderr
    assert f"not collecting {work(tmp_path)}/stray-link: a dangling symbolic link" in result.stderr
    assert sorted(p.name for p in output.rglob("*")) == ["good-link", "kept.txt", "sub"]


def test_special_files_are_left_alone_when_nothing_is_collected(tmp_path):
    result = run_main_script(tmp_path, ['ln -s /nonexistent/abr "$OUTPUT_DIR/dangling"'])
    assert result.returncode == 0 and result.stderr == ""


# Validation of the arguments


def test_resources_are_parsed_from_strings_or_numbers():
    assert parse_resources({"request": {"cpu": "0.5", "memory": "1024"}}) == Resources(0.5, 1024)
    assert parse_resources({"request": {"cpu": 2, "memory": 4096}}) == Resources(2.0, 4096)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "1 vCPU",
        {},
        {"limits": {"cpu": "1", "memory": "2048"}},
        {"request": {"cpu": "1", "memory": "2048"}, "limits": {}},
        {"request": "cpu=1"},
        {"request": {"cpu": "1"}},
        {"request": {"memory": "2048"}},
        {"request": {"cpu": "1", "memory": "2048", "gpu": "1"}},
    ],
)
def test_resources_of_the_wrong_shape_are_refused_with_the_expected_shape(value):
    with pytest.raises(ValueError, match="resources") as excinfo:
        parse_resources(value)
    assert '{"request": {"cpu": "1", "memory": "2048"}}' in str(excinfo.value)


@pytest.mark.parametrize(
    "request_",
    [
        {"cpu": "one", "memory": "2048"},
        {"cpu": None, "memory": "2048"},
        {"cpu": "1", "memory": "2GB"},
        {"cpu": "1", "memory": "2048.5"},
        {"cpu": "1", "memory": None},
    ],
)
def test_resources_that_are_not_numbers_are_refused(request_):
    with pytest.raises(ValueError, match=r"resources.*cpu must be a number and memory a whole number of MiB"):
        parse_resources({"request": request_})


@pytest.mark.parametrize(
    "request_",
    [
        {"cpu": "0", "memory": "2048"},
        {"cpu": "-1", "memory": "2048"},
        {"cpu": "1", "memory": "0"},
        {"cpu": "1", "memory": "-512"},
        {"cpu": "nan", "memory": "2048"},
        {"cpu": "inf", "memory": "2048"},
    ],
)
def test_resources_that_are_not_positive_finite_are_refused(request_):
    with pytest.raises(ValueError, match="resources: cpu and memory must be positive"):
        parse_resources({"request": request_})


def test_every_fargate_pair_is_accepted():
    for cpu, memories in FARGATE_MEMORY.items():
        for memory in memories:
            check_fargate_resources(Resources(cpu, memory))


@pytest.mark.parametrize(("cpu", "memory"), [(0.25, 4096), (1, 1024), (3, 8192), (16, 32769), (0.125, 512)])
def test_resources_fargate_does_not_offer_are_refused_with_the_valid_combinations(cpu, memory):
    with pytest.raises(ValueError) as excinfo:
        check_fargate_resources(Resources(cpu, memory))
    message = str(excinfo.value)
    assert message.startswith("resources: Fargate does not offer")
    assert f"{cpu:g} vCPU with {memory} MiB" in message
    assert "1 vCPU: 2048-8192 MiB in steps of 1024" in message
    assert "0.25 vCPU: 512, 1024, 2048 MiB" in message


@pytest.mark.parametrize(
    ("name", "normalised"),
    [
        ("out.txt", "out.txt"),
        ("reports/2025/summary.csv", "reports/2025/summary.csv"),
        ("*.csv", "*.csv"),
        ("**/*.json", "**/*.json"),
        ("./out.txt", "out.txt"),
        ("a//b.txt", "a/b.txt"),
        ("my file.txt", "my file.txt"),
        ("..hidden", "..hidden"),
    ],
)
def test_relative_names_inside_the_working_dir_are_accepted(name, normalised):
    assert check_relative_name(name, "output_files") == normalised


@pytest.mark.parametrize("name", ["../secret", "a/../../etc/passwd", "sub/..", "/etc/passwd", "//x", "a\\..\\b"])
@pytest.mark.parametrize("argument", ["output_files", "input_files", "project_files"])
def test_declared_file_that_escapes_working_dir_is_refused(name, argument):
    with pytest.raises(ValueError) as excinfo:
        check_relative_name(name, argument)
    message = str(excinfo.value)
    assert message.startswith(f"{argument}: ")
    assert "escapes the working directory" in message
    assert "relative" in message and "'..'" in message


@pytest.mark.parametrize("name", ["", "   ", None, 3])
def test_empty_or_non_string_file_names_are_refused(name):
    with pytest.raises(ValueError, match=r"^input_files: file names must be non-empty strings"):
        check_relative_name(name, "input_files")


@pytest.mark.parametrize(
    "image",
    [
        "centos",
        "ubuntu:24.04",
        "python:3.12-slim",
        "library/python:3.12",
        "public.ecr.aws/aws-cli/aws-cli:2.22.0",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/tool:v1.2_3",
        "localhost:5000/app",
        "ghcr.io/org/app@sha256:" + "a" * 64,
        "ghcr.io/org/app:1.0@sha256:" + "0123456789abcdef" * 4,
    ],
)
def test_valid_image_references_are_accepted(image):
    assert check_image(image) == image


@pytest.mark.parametrize(
    "image",
    [
        "",
        "Ubuntu",
        "ubuntu:",
        "ubuntu latest",
        "https://registry/app",
        ":latest",
        "app:" + "t" * 129,
        "app@sha256:abc",
        "app:-tag",
        None,
    ],
)
def test_invalid_image_references_are_refused_with_an_example(image):
    with pytest.raises(ValueError) as excinfo:
        check_image(image)
    message = str(excinfo.value)
    assert message.startswith("container_image ")
    assert "is not a valid image reference" in message
    assert "'ubuntu:24.04'" in message


def test_commands_are_a_tuple_of_strings_and_a_single_string_is_one_command():
    assert check_commands(["echo a", "echo b"]) == ("echo a", "echo b")
    assert check_commands(("echo a",)) == ("echo a",)
    assert check_commands("echo a && echo b") == ("echo a && echo b",)


@pytest.mark.parametrize("commands", [None, [], (), [1, 2], ["echo ok", None], {"echo": 1}, 42])
def test_commands_that_are_not_a_list_of_strings_are_refused(commands):
    with pytest.raises(ValueError, match=r"^commands must be a non-empty list of shell command strings$"):
        check_commands(commands)


@pytest.mark.parametrize("commands", ["", "  ", ["", " \n "]])
def test_commands_that_are_all_blank_are_refused(commands):
    with pytest.raises(ValueError, match=r"^commands must contain at least one non-blank command$"):
        check_commands(commands)


EKS_CONFIGURATION = {"eksClusterArn": "arn:aws:eks:eu-west-1:123456789012:cluster/k8s", "kubernetesNamespace": "batch"}
CE_ARN = "arn:aws:batch:eu-west-1:123456789012:compute-environment/my-ce"


def ce_description(**fields: Any) -> dict[str, Any]:
    """A DescribeComputeEnvironments entry."""
    return {
        "computeEnvironmentName": "my-ce",
        "computeEnvironmentArn": CE_ARN,
        "type": "MANAGED",
        "state": "ENABLED",
        "status": "VALID",
        "containerOrchestrationType": "ECS",
        "ecsClusterArn": "arn:aws:ecs:eu-west-1:123456789012:cluster/my-ce_Batch",
        **fields,
    }


@pytest.mark.parametrize(
    ("resource_type", "platform"),
    [("FARGATE", "FARGATE"), ("FARGATE_SPOT", "FARGATE"), ("EC2", "EC2"), ("SPOT", "EC2")],
)
def test_compute_environment_type_decides_the_platform(resource_type, platform):
    description = ce_description(computeResources={"type": resource_type, "maxvCpus": 16, "subnets": ["subnet-1"]})
    assert compute_environment_platform(description, CE_ARN) == platform


def test_unmanaged_compute_environment_runs_on_ec2():
    description = ce_description(type="UNMANAGED", unmanagedvCpus=4)
    assert compute_environment_platform(description, CE_ARN) == "EC2"


@pytest.mark.parametrize(
    "fields",
    [
        {"containerOrchestrationType": "EKS"},
        {"containerOrchestrationType": "EKS", "eksConfiguration": EKS_CONFIGURATION},
        {"eksConfiguration": EKS_CONFIGURATION},
    ],
)
def test_eks_compute_environment_is_refused_with_the_alternative(fields):
    description = ce_description(computeResources={"type": "EC2"}, **fields)
    with pytest.raises(ValueError) as excinfo:
        compute_environment_platform(description, CE_ARN)
    message = str(excinfo.value)
    assert message.startswith(f"compute_environment_arn {CE_ARN!r} is an EKS compute environment")
    assert "ECS" in message
    assert "Kubernetes pod operator" in message


def test_missing_compute_environment_is_refused_naming_arn_and_region():
    with pytest.raises(ValueError) as excinfo:
        compute_environment_platform(None, CE_ARN)
    message = str(excinfo.value)
    assert message.startswith(f"compute_environment_arn {CE_ARN!r} does not exist")
    assert "region_name" in message


# S3 URIs and output names


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bucket/a/b/c.txt", ("bucket", "a/b/c.txt")),
        ("s3://bucket/prefix/", ("bucket", "prefix/")),
        ("s3://bucket/", ("bucket", "")),
        ("s3://bucket", ("bucket", "")),
    ],
)
def test_bucket_and_key_split_an_s3_uri(uri, expected):
    assert bucket_and_key(uri) == expected


@pytest.mark.parametrize("uri", ["https://bucket.s3.amazonaws.com/key", "bucket/key", "S3://bucket/key", ""])
def test_bucket_and_key_refuse_anything_but_s3_uris(uri):
    with pytest.raises(ValueError, match="is not an s3:// URI"):
        bucket_and_key(uri)


def test_bucket_path_round_trips_through_bucket_and_key():
    path = TaskIdentity("etl", "shell", "run").bucket_path("my-bucket", "s1")
    bucket, key = bucket_and_key(path)
    assert f"s3://{bucket}/{key}" == path
    assert bucket == "my-bucket"


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("work/out.txt", "out.txt"),
        ("work/reports/2025/a.csv", "reports/2025/a.csv"),
        ("output/report.html", "report.html"),
        ("output/nested/x.bin", "nested/x.bin"),
        ("inputs/data.txt", None),
        ("workshop/out.txt", None),
        ("outputs/x", None),
        ("out.txt", None),
        ("", None),
    ],
)
def test_output_name_is_relative_to_the_directory_the_sidecar_copied_from(key, name):
    assert output_name(key) == name


def test_has_outputs_follows_the_bucket():
    assert make_spec("main_only").has_outputs is False
    assert make_spec("main_outputs").has_outputs is True


@pytest.mark.parametrize("module", [job_spec, layout, validation, array_spec, array_outcome, outcome, fargate])
def test_pure_modules_import_neither_aws_nor_airflow(module):
    source = Path(module.__file__).read_text()
    assert not re.search(r"^\s*(import|from)\s+(boto3|botocore|aiobotocore|airflow)\b", source, re.MULTILINE)


# Names and environment


@pytest.mark.parametrize("name", [".", "./", ".//", "a\nb.txt", "tab\there", "bell\x07", "del\x7f", "ret\r"])
@pytest.mark.parametrize("argument", ["input_files", "output_files"])
def test_the_working_dir_itself_and_control_characters_are_refused(name, argument):
    with pytest.raises(ValueError, match=rf"^{argument}: ") as excinfo:
        check_relative_name(name, argument)
    assert "working directory itself" in str(excinfo.value) or "control character" in str(excinfo.value)


def test_the_runners_own_folder_is_refused_as_a_file_name():
    with pytest.raises(ValueError, match=r"^input_files: .*reserves"):
        check_relative_name(layout.STAGED_SCRIPT, "input_files")


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("1BAD", "not a valid environment variable name"),
        ("A-B", "not a valid environment variable name"),
        ("A B", "not a valid environment variable name"),
        ("", "not a valid environment variable name"),
        ("A=B", "not a valid environment variable name"),
        ("É", "not a valid environment variable name"),
        (3, "not a valid environment variable name"),
        ("AWS_BATCH_JOB_ID", "AWS Batch reserves"),
        ("AWS_BATCHY", "AWS Batch reserves"),
        ("WORKING_DIR", "set by the runner"),
        ("OUTPUT_DIR", "set by the runner"),
        ("BUCKET_PATH", "set by the runner"),
        ("OUTPUTS_FILE", "set by the runner"),
    ],
)
def test_env_names_a_shell_cannot_read_or_that_aws_or_the_runner_set_are_refused(name, why):
    with pytest.raises(ValueError, match=r"^env: ") as excinfo:
        validation.check_env({name: "x"})
    assert why in str(excinfo.value)


def test_valid_env_names_pass_with_their_values_as_strings():
    assert validation.check_env({"_A1": 1, "lower_case": "x"}) == {"_A1": "1", "lower_case": "x"}
    assert validation.check_env(None) == {}
    with pytest.raises(ValueError, match=r"^env must be a mapping"):
        validation.check_env(["A=1"])
    with pytest.raises(ValueError, match=r"^env: the value of 'A' contains a NUL"):
        validation.check_env({"A": "x\x00y"})


# XCom names of the collected files


def test_every_collected_file_is_reachable_and_declared_names_keep_theirs():
    keys = ["work/report.txt", "output/report.txt", "output/other.txt", "work/dir/a.txt", "output/dir/a.txt",
            "inputs/in.txt"]
    assert layout.output_names(keys) == {
        "report.txt": "work/report.txt",
        f"{OUTPUT_DIR}/report.txt": "output/report.txt",
        "other.txt": "output/other.txt",
        "dir/a.txt": "work/dir/a.txt",
        f"{OUTPUT_DIR}/dir/a.txt": "output/dir/a.txt",
    }


# AWS's size limits


def test_short_commands_stay_inline():
    spec = make_spec("main_outputs")
    assert job_spec.fit_to_limits(spec, IDENTITY, QUEUE, 3600) == spec


def long_script(lines: int = 400) -> tuple[str, ...]:
    return tuple(f'echo "line {i} of a long inline script with some words in it" >> log.txt' for i in range(lines))


def test_commands_too_long_for_submit_job_travel_as_a_staged_script():
    spec = make_spec("main_outputs", commands=long_script())
    inline = build_submit_request(spec, IDENTITY, QUEUE, 3600)
    assert job_spec.json_size(inline) > job_spec.MAX_SUBMIT_JOB_BYTES  # AWS would refuse it
    fitted = job_spec.fit_to_limits(spec, IDENTITY, QUEUE, 3600)
    assert fitted.staged_commands and fitted.has_inputs
    request = build_submit_request(fitted, IDENTITY, QUEUE, 3600)
    assert len(json.dumps(request["ecsPropertiesOverride"])) <= job_spec.MAX_OVERRIDES_CHARS
    assert_valid_for_botocore("SubmitJob", request)
    containers = by_name(override_containers(request))
    assert "line 399" not in json.dumps(request)
    assert layout.SCRIPT_PATH in containers["main"]["command"][2]
    assert "line 399" in job_spec.staged_script(fitted.commands)
    assert [c["name"] for c in build_job_definition(fitted)["ecsProperties"]["taskProperties"][0]["containers"]] == [
        "inputs", "main", "outputs"]


def test_commands_too_long_without_a_bucket_are_refused_naming_commands_and_bucket():
    with pytest.raises(ValueError, match=r"^commands: .*bucket="):
        job_spec.fit_to_limits(make_spec("main_only", commands=long_script()), IDENTITY, QUEUE, 3600)


@pytest.mark.parametrize("layout", ["main_only", "main_outputs"])
def test_an_environment_too_big_for_submit_job_is_refused_naming_env(layout):
    spec = make_spec(layout, env={f"VAR_{i}": "v" * 100 for i in range(100)})
    with pytest.raises(ValueError, match=r"^env: the environment takes \d+ of the \d+ characters of the job.s"):
        job_spec.fit_to_limits(spec, IDENTITY, QUEUE, 3600)
