"""Ephemeral storage, CPU architecture, shared memory, init process, tmpfs and ulimits: each argument within AWS's
own bounds (every bound and its neighbour), what each platform refuses, and where each lands in the job definition
(never in SubmitJob's overrides, which AWS does not let carry them). Pure: no AWS."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from airflow_batch_runner import array_spec, container_settings
from airflow_batch_runner.container_settings import ContainerSettings, check_platform, parse
from airflow_batch_runner.job_spec import build_job_definition, build_submit_request, definition_name
from airflow_batch_runner.layout import TaskIdentity
from tests.unit.test_job_spec import assert_valid_for_botocore, make_spec

CE = "arn:aws:batch:us-east-1:123456789012:compute-environment/ce"


@pytest.mark.parametrize("value, expected", [
    (21, 21), (200, 200), ("21", 21), (" 200 ", 200), (50.0, 50), (None, None), ("", None),
])
def test_ephemeral_storage_takes_21_to_200_gib(value: Any, expected: Any) -> None:
    assert parse(ephemeral_storage=value).ephemeral_storage == expected


@pytest.mark.parametrize("value", [20, 201, 0, -21, "20", "201", 21.5, "lots", True, [21]])
def test_ephemeral_storage_outside_aws_bounds_is_refused_naming_it(value: Any) -> None:
    with pytest.raises(ValueError, match=r"ephemeral_storage must be a whole number of GiB from 21 to 200"):
        parse(ephemeral_storage=value)


@pytest.mark.parametrize("value, expected", [("X86_64", "X86_64"), ("ARM64", "ARM64"), ("arm64", "ARM64"),
                                             (" x86_64", "X86_64"), (None, None)])
def test_cpu_architecture_is_x86_64_or_arm64(value: Any, expected: Any) -> None:
    assert parse(cpu_architecture=value).cpu_architecture == expected


@pytest.mark.parametrize("value", ["AMD64", "aarch64", "X86", "ARM", 64])
def test_another_cpu_architecture_is_refused_naming_it(value: Any) -> None:
    with pytest.raises(ValueError, match=r"cpu_architecture must be 'X86_64' or 'ARM64'"):
        parse(cpu_architecture=value)


@pytest.mark.parametrize("value, expected", [(1, 1), (2, 2), ("1024", 1024), (None, None)])
def test_shared_memory_is_at_least_one_mib(value: Any, expected: Any) -> None:
    assert parse(shared_memory=value).shared_memory == expected


@pytest.mark.parametrize("value", [0, -1, "0", 1.5, "big", False])
def test_shared_memory_below_one_mib_or_not_whole_is_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="shared_memory must be"):
        parse(shared_memory=value)


@pytest.mark.parametrize("value, expected", [(True, True), (False, False), ("true", True), ("False", False),
                                             (None, None)])
def test_init_process_is_a_boolean_or_its_rendered_word(value: Any, expected: Any) -> None:
    assert parse(init_process=value).init_process is expected


@pytest.mark.parametrize("value", ["yes", 1, 0, "1"])
def test_init_process_refuses_what_is_not_a_boolean(value: Any) -> None:
    with pytest.raises(ValueError, match="init_process must be True or False"):
        parse(init_process=value)


def test_tmpfs_takes_aws_tmpfs_mounts_with_rendered_sizes() -> None:
    mounts = parse(tmpfs=[{"containerPath": "/scratch", "size": "1"},
                          {"containerPath": "/fast", "size": 2048, "mountOptions": ["noexec", "nosuid"]}]).tmpfs
    assert mounts == ({"containerPath": "/scratch", "size": 1},
                      {"containerPath": "/fast", "size": 2048, "mountOptions": ["noexec", "nosuid"]})


@pytest.mark.parametrize("value, message", [
    ({"containerPath": "/scratch", "size": 1}, "tmpfs must be a list"),
    ("/scratch", "tmpfs must be a list"),
    ([{"containerPath": "/scratch"}], "tmpfs must be a list"),
    ([{"containerPath": "/scratch", "size": 1, "readOnly": True}], "tmpfs must be a list"),
    ([{"containerPath": "scratch", "size": 1}], r"tmpfs\[0\].containerPath must be an absolute path"),
    ([{"containerPath": "/scratch", "size": 0}], r"tmpfs\[0\].size must be at least 1 MiB"),
    ([{"containerPath": "/scratch", "size": -1}], r"tmpfs\[0\].size must be at least 1 MiB"),
    ([{"containerPath": "/scratch", "size": 1.5}], r"tmpfs\[0\].size must be a whole number"),
    ([{"containerPath": "/scratch", "size": 1, "mountOptions": ["fast"]}], r"\['fast'\] are not tmpfs mount"),
    ([{"containerPath": "/scratch", "size": 1, "mountOptions": "noexec"}], "mountOptions must be a list"),
    ([{"containerPath": "/a", "size": 1}, {"containerPath": "/a/", "size": 2}], r"tmpfs\[1\].* is given twice"),
    ([{"containerPath": "/airflow-batch/work", "size": 1}], "would hide or lie in the runner's volume"),
    ([{"containerPath": "/airflow-batch", "size": 1}], "would hide or lie in the runner's volume"),
    ([{"containerPath": "/", "size": 1}], "would hide or lie in the runner's volume"),
])
def test_bad_tmpfs_is_refused_naming_the_mount(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(tmpfs=value)


def test_ulimits_take_aws_ulimits_with_minus_one_as_unlimited() -> None:
    limits = parse(ulimits=[{"name": "nofile", "softLimit": "4096", "hardLimit": 8192},
                            {"name": "memlock", "softLimit": -1, "hardLimit": -1},
                            {"name": "core", "softLimit": 0, "hardLimit": 0},
                            {"name": "stack", "softLimit": 8192, "hardLimit": -1}]).ulimits
    assert [(u["name"], u["softLimit"], u["hardLimit"]) for u in limits] == [
        ("nofile", 4096, 8192), ("memlock", -1, -1), ("core", 0, 0), ("stack", 8192, -1)]


@pytest.mark.parametrize("value, message", [
    ({"name": "nofile", "softLimit": 1, "hardLimit": 1}, "ulimits must be a list"),
    ([{"name": "nofile", "softLimit": 1}], "ulimits must be a list"),
    ([{"name": "files", "softLimit": 1, "hardLimit": 1}], r"ulimits\[0\].name must be one of core, cpu"),
    ([{"name": "nofile", "softLimit": -2, "hardLimit": 1}], r"ulimits\[0\].softLimit must be a whole number"),
    ([{"name": "nofile", "softLimit": 1, "hardLimit": -2}], r"ulimits\[0\].hardLimit must be a whole number"),
    ([{"name": "nofile", "softLimit": 1.5, "hardLimit": 2}], r"ulimits\[0\].softLimit must be a whole number"),
    ([{"name": "nofile", "softLimit": 1025, "hardLimit": 1024}], "softLimit 1025 is above hardLimit 1024"),
    ([{"name": "nofile", "softLimit": -1, "hardLimit": 1024}], "softLimit -1 is above hardLimit 1024"),
    ([{"name": "nproc", "softLimit": 1, "hardLimit": 1}, {"name": "nproc", "softLimit": 2, "hardLimit": 2}],
     r"ulimits\[1\]: the ulimit 'nproc' is given twice"),
])
def test_bad_ulimits_are_refused_naming_the_entry(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(ulimits=value)


@pytest.mark.parametrize("argument, value", [("ephemeral_storage", 21), ("cpu_architecture", "ARM64")])
def test_fargate_only_arguments_are_refused_on_ec2_with_the_fix(argument: str, value: Any) -> None:
    settings = parse(**{argument: value})
    check_platform(settings, "FARGATE", CE)
    with pytest.raises(ValueError, match=rf"^{argument}: only for Fargate .* is an EC2 compute environment.*"
                                         "use a Fargate compute environment"):
        check_platform(settings, "EC2", CE)


@pytest.mark.parametrize("argument, value", [("shared_memory", 64),
                                             ("tmpfs", [{"containerPath": "/scratch", "size": 1}])])
def test_ec2_only_arguments_are_refused_on_fargate_with_the_fix(argument: str, value: Any) -> None:
    settings = parse(**{argument: value})
    check_platform(settings, "EC2", CE)
    with pytest.raises(ValueError, match=rf"^{argument}: not available on Fargate .*Use an EC2 compute environment"):
        check_platform(settings, "FARGATE", CE)


@pytest.mark.parametrize("platform", ["EC2", "FARGATE"])
def test_init_process_and_ulimits_are_fine_on_both_platforms(platform: Any) -> None:
    check_platform(parse(init_process=True, ulimits=[{"name": "nofile", "softLimit": 1, "hardLimit": 2}]),
                   platform, CE)


FARGATE = ContainerSettings(ephemeral_storage=50, cpu_architecture="ARM64", init_process=True,
                            ulimits=({"name": "nofile", "softLimit": 4096, "hardLimit": 8192},))
EC2 = ContainerSettings(shared_memory=512, init_process=False,
                        tmpfs=({"containerPath": "/scratch", "size": 64, "mountOptions": ["noexec"]},),
                        ulimits=({"name": "memlock", "softLimit": -1, "hardLimit": -1},))


def test_fargate_settings_land_in_the_task_and_the_main_container_of_the_definition() -> None:
    spec = make_spec("inputs_main_outputs", platform="FARGATE", settings=FARGATE)
    definition = build_job_definition(spec)
    assert_valid_for_botocore("RegisterJobDefinition", definition)
    task = definition["ecsProperties"]["taskProperties"][0]
    assert task["ephemeralStorage"] == {"sizeInGiB": 50}
    assert task["runtimePlatform"] == {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"}
    containers = {c["name"]: c for c in task["containers"]}
    assert containers["main"]["linuxParameters"] == {"initProcessEnabled": True}
    assert containers["main"]["ulimits"] == [{"name": "nofile", "softLimit": 4096, "hardLimit": 8192}]
    for sidecar in ("inputs", "outputs"):
        assert "linuxParameters" not in containers[sidecar] and "ulimits" not in containers[sidecar]


def test_ec2_settings_land_in_the_main_containers_linux_parameters() -> None:
    definition = build_job_definition(make_spec("inputs_main_outputs", platform="EC2", settings=EC2))
    assert_valid_for_botocore("RegisterJobDefinition", definition)
    task = definition["ecsProperties"]["taskProperties"][0]
    assert "ephemeralStorage" not in task and "runtimePlatform" not in task
    main = next(c for c in task["containers"] if c["name"] == "main")
    assert main["linuxParameters"] == {
        "sharedMemorySize": 512, "initProcessEnabled": False,
        "tmpfs": [{"containerPath": "/scratch", "size": 64, "mountOptions": ["noexec"]}]}
    assert main["ulimits"] == [{"name": "memlock", "softLimit": -1, "hardLimit": -1}]


def test_each_combination_is_its_own_content_addressed_definition_and_nothing_goes_in_the_overrides() -> None:
    plain = make_spec("inputs_main_outputs", platform="FARGATE")
    names = {definition_name(plain)}
    for settings in (FARGATE, replace(FARGATE, ephemeral_storage=51), replace(FARGATE, cpu_architecture="X86_64"),
                     ContainerSettings(init_process=True), ContainerSettings(init_process=False)):
        name = definition_name(replace(plain, settings=settings))
        assert name not in names
        names.add(name)
        assert definition_name(replace(plain, settings=settings)) == name  # the same one, reused
    identity = TaskIdentity("d", "t", "r", -1, 1)
    request = build_submit_request(replace(plain, settings=FARGATE), identity, "q", 600)
    assert_valid_for_botocore("SubmitJob", request)
    assert request["ecsPropertiesOverride"] == build_submit_request(plain, identity, "q", 600)["ecsPropertiesOverride"]


def test_without_settings_the_definition_is_the_one_it_always_was() -> None:
    spec = make_spec("inputs_main_outputs", platform="FARGATE")
    assert definition_name(spec) == definition_name(replace(spec, settings=container_settings.parse()))
    task = build_job_definition(spec)["ecsProperties"]["taskProperties"][0]
    assert not {"ephemeralStorage", "runtimePlatform"} & set(task)
    assert all(not {"linuxParameters", "ulimits"} & set(c) for c in task["containers"])


def test_an_array_gives_the_settings_to_its_main_container_and_task_only() -> None:
    array = array_spec.resolve(3, None, 0)
    assert array is not None
    spec = make_spec("inputs_main_outputs", platform="FARGATE", settings=FARGATE)
    definition = array_spec.build_job_definition(spec, array)
    assert_valid_for_botocore("RegisterJobDefinition", definition)
    task = definition["ecsProperties"]["taskProperties"][0]
    assert task["ephemeralStorage"] == {"sizeInGiB": 50}
    assert task["runtimePlatform"]["cpuArchitecture"] == "ARM64"
    with_settings = [c["name"] for c in task["containers"] if "linuxParameters" in c or "ulimits" in c]
    assert with_settings == ["main"]


def test_a_literal_out_of_bounds_fails_when_the_dag_is_parsed_a_template_when_it_runs() -> None:
    from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

    required: dict[str, Any] = {"task_id": "shell", "compute_environment_arn": CE, "commands": ["true"]}
    with pytest.raises(ValueError, match="ephemeral_storage must be a whole number of GiB from 21 to 200"):
        BatchRunnerOperator(**required, ephemeral_storage=201)
    with pytest.raises(ValueError, match=r"ulimits\[0\].name must be one of"):
        BatchRunnerOperator(**required, ulimits=[{"name": "files", "softLimit": 1, "hardLimit": 1}])
    literal = BatchRunnerOperator(**required, ephemeral_storage=21, init_process=True)
    assert literal._settings == ContainerSettings(ephemeral_storage=21, init_process=True)
    templated = BatchRunnerOperator(**required, ephemeral_storage="{{ params.gib }}", shared_memory=64)
    assert templated._settings == ContainerSettings()  # resolved in execute, once rendered
    with pytest.raises(ValueError, match="shared_memory must be at least 1 MiB"):  # the literal beside it: now
        BatchRunnerOperator(**required, ephemeral_storage="{{ params.gib }}", shared_memory=0)


@pytest.mark.parametrize("value, expected", [(1, 1), (2, 2), ("1", 1), (" 8 ", 8), (4.0, 4), (None, None), ("", None)])
def test_gpus_is_a_whole_number_of_at_least_one(value: Any, expected: Any) -> None:
    assert parse(gpus=value).gpus == expected


@pytest.mark.parametrize("value", [0, -1, "0", 1.5, "two", True, [1]])
def test_gpus_below_one_or_not_whole_is_refused_naming_it(value: Any) -> None:
    with pytest.raises(ValueError, match=r"^gpus must be a whole number of GPUs, at least 1"):
        parse(gpus=value)


def test_gpus_are_refused_on_fargate_with_the_fix_and_taken_on_ec2() -> None:
    settings = parse(gpus=1)
    check_platform(settings, "EC2", CE)
    with pytest.raises(ValueError, match=r"^gpus: GPUs aren't available for jobs that are running on Fargate "
                                         r"resources .* is a Fargate compute environment\. Use an EC2 compute "
                                         "environment whose instance types have GPUs"):
        check_platform(settings, "FARGATE", CE)


def test_gpus_travel_in_the_main_containers_override_and_leave_the_definition_alone() -> None:
    plain = make_spec("inputs_main_outputs", platform="EC2")
    spec = replace(plain, settings=ContainerSettings(gpus=2))
    assert definition_name(spec) == definition_name(plain)  # no new definition per GPU count
    assert build_job_definition(spec) == build_job_definition(plain)
    request = build_submit_request(spec, TaskIdentity("d", "t", "r", -1, 1), "q", 600)
    assert_valid_for_botocore("SubmitJob", request)
    containers = {c["name"]: c for c in request["ecsPropertiesOverride"]["taskProperties"][0]["containers"]}
    assert {"type": "GPU", "value": "2"} in containers["main"]["resourceRequirements"]
    for sidecar in ("inputs", "outputs"):
        assert all(r["type"] != "GPU" for r in containers[sidecar]["resourceRequirements"])


def test_an_arrays_main_container_asks_for_the_gpus_in_every_child() -> None:
    array = array_spec.resolve(3, None, 0)
    assert array is not None
    spec = make_spec("inputs_main_outputs", platform="EC2", settings=ContainerSettings(gpus=1))
    request = array_spec.build_submit_request(spec, array, TaskIdentity("d", "t", "r", -1, 1), "q", 600)
    assert_valid_for_botocore("SubmitJob", request)
    with_gpu = [c["name"] for c in request["ecsPropertiesOverride"]["taskProperties"][0]["containers"]
                if any(r["type"] == "GPU" for r in c["resourceRequirements"])]
    assert with_gpu == ["main"]
    assert array_spec.definition_name(spec, array) == array_spec.definition_name(
        replace(spec, settings=ContainerSettings()), array)


def test_a_literal_gpus_out_of_bounds_fails_when_the_dag_is_parsed() -> None:
    from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

    with pytest.raises(ValueError, match="gpus must be a whole number of GPUs, at least 1"):
        BatchRunnerOperator(task_id="shell", compute_environment_arn=CE, commands=["true"], gpus=0)
    assert BatchRunnerOperator(task_id="shell", compute_environment_arn=CE, commands=["true"],
                               gpus=1)._settings == ContainerSettings(gpus=1)


SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:registry/dockerhub-AbCdEf"


@pytest.mark.parametrize("value", [
    SECRET, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:r",
    "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:a_b+c=d.e@f-g",
    "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:x",
    f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{'n' * 512}", f" {SECRET} ",
])
def test_repository_credentials_is_a_secrets_manager_arn(value: str) -> None:
    assert parse(repository_credentials=value).repository_credentials == value.strip()


@pytest.mark.parametrize("value", [
    "registry/dockerhub",  # a name: AWS Batch asks for the ARN
    "arn:aws:ssm:us-east-1:123456789012:parameter/registry",
    "arn:aws:secretsmanager:us-east-1:12345678901:secret:r",  # an 11-digit account
    "arn:aws:secretsmanager:us-east-1:1234567890123:secret:r",  # a 13-digit account
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:",  # no name
    f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{'n' * 513}",
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:my secret",
    "arn:aws:secretsmanager:useast1:123456789012:secret:r",
    "arn:aws:secretsmanager:us-east-1:123456789012:key:r",
    42, ["arn"],
])
def test_anything_else_as_repository_credentials_is_refused_with_the_shape_it_must_have(value: Any) -> None:
    with pytest.raises(ValueError, match=r"^repository_credentials must be the ARN of a Secrets Manager secret .*"
                                         r"arn:aws:secretsmanager:<region>:<12-digit account>:secret:<name>"):
        parse(repository_credentials=value)


@pytest.mark.parametrize("platform", ["EC2", "FARGATE"])
def test_repository_credentials_need_the_execution_role_on_both_platforms(platform: Any) -> None:
    settings = parse(repository_credentials=SECRET)
    check_platform(settings, platform, CE)
    container_settings.check_execution_role(settings, "arn:aws:iam::123456789012:role/exec")
    container_settings.check_execution_role(ContainerSettings(), None)
    with pytest.raises(ValueError, match=r"^repository_credentials needs execution_role_arn: .*"
                                         "secretsmanager:GetSecretValue on arn:aws:secretsmanager"):
        container_settings.check_execution_role(settings, None)


def test_repository_credentials_land_on_the_main_container_of_a_definition_of_their_own() -> None:
    plain = make_spec("inputs_main_outputs", platform="EC2", execution_role_arn="arn:aws:iam::123456789012:role/x")
    spec = replace(plain, settings=ContainerSettings(repository_credentials=SECRET))
    definition = build_job_definition(spec)
    assert_valid_for_botocore("RegisterJobDefinition", definition)
    containers = {c["name"]: c for c in definition["ecsProperties"]["taskProperties"][0]["containers"]}
    assert containers["main"]["repositoryCredentials"] == {"credentialsParameter": SECRET}
    assert all("repositoryCredentials" not in containers[name] for name in ("inputs", "outputs"))  # the AWS CLI's
    array_containers = a_definition_of_its_own(plain, spec, replace(plain, settings=ContainerSettings(
        repository_credentials=SECRET)))
    # prep runs the main image too, so it pulls it with the same credentials
    assert [c["name"] for c in array_containers if "repositoryCredentials" in c] == ["prep", "main"]


def a_definition_of_its_own(plain: Any, spec: Any, again: Any) -> list[dict[str, Any]]:
    """``spec`` has a definition of its own, the one an equal ``again`` has, and ``plain``'s overrides; returns the
    containers of its array's definition."""
    assert definition_name(spec) != definition_name(plain)
    assert definition_name(spec) == definition_name(again)
    identity = TaskIdentity("d", "t", "r", -1, 1)
    assert build_submit_request(spec, identity, "q", 600)["ecsPropertiesOverride"] == \
        build_submit_request(plain, identity, "q", 600)["ecsPropertiesOverride"]
    array = array_spec.resolve(2, None, 0)
    assert array is not None
    return list(array_spec.build_job_definition(spec, array)["ecsProperties"]["taskProperties"][0]["containers"])


def test_a_literal_repository_credentials_of_another_shape_fails_when_the_dag_is_parsed() -> None:
    from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

    required: dict[str, Any] = {"task_id": "shell", "compute_environment_arn": CE, "commands": ["true"]}
    with pytest.raises(ValueError, match="repository_credentials must be the ARN of a Secrets Manager secret"):
        BatchRunnerOperator(**required, repository_credentials="dockerhub")
    operator = BatchRunnerOperator(**required, repository_credentials=SECRET)
    assert operator._settings == ContainerSettings(repository_credentials=SECRET)


CR_ARN = "arn:aws:batch:us-east-1:123456789012:consumable-resource/licence-y"


@pytest.mark.parametrize("value, expected", [
    ({"licence-x": 1}, (("licence-x", 1),)),
    ({"a": "2", CR_ARN: 3.0}, (("a", 2), (CR_ARN, 3))),
    ({f"r{i}": 1 for i in range(5)}, tuple((f"r{i}", 1) for i in range(5))),  # 5: AWS's most
    ({"n" * 128: 1}, (("n" * 128, 1),)),
    (None, ()), ("", ()), ({}, ()),
])
def test_consumable_resources_map_up_to_five_resources_to_quantities(value: Any, expected: Any) -> None:
    assert parse(consumable_resources=value).consumable_resources == expected


@pytest.mark.parametrize("value, message", [
    ({f"r{i}": 1 for i in range(6)}, "at most 5 consumable resources; got 6"),
    ({"licence-x": 0}, r"consumable_resources\['licence-x'\] must be a whole number of at least 1 .*got 0"),
    ({"licence-x": -1}, r"consumable_resources\['licence-x'\] must be a whole number of at least 1"),
    ({"licence-x": 1.5}, r"consumable_resources\['licence-x'\] must be a whole number of at least 1"),
    ({"licence-x": True}, r"consumable_resources\['licence-x'\] must be a whole number"),
    ({"n" * 129: 1}, "is neither a consumable resource name"),
    ({"licence x": 1}, "is neither a consumable resource name"),
    ({"arn:aws:batch:us-east-1:123456789012:job-queue/q": 1}, "is neither a consumable resource name"),
    ({"licence-y": 1, CR_ARN: 2}, "'licence-y' is given twice"),
    ([("licence-x", 1)], "consumable_resources must be a mapping of consumable resource"),
    ("licence-x", "consumable_resources must be a mapping of consumable resource"),
])
def test_bad_consumable_resources_are_refused_naming_the_entry(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(consumable_resources=value)


@pytest.mark.parametrize("platform", ["EC2", "FARGATE"])
def test_consumable_resources_travel_in_submit_jobs_override_on_both_platforms(platform: Any) -> None:
    plain = make_spec("inputs_main_outputs", platform=platform)
    spec = replace(plain, settings=parse(consumable_resources={"licence-x": 2, CR_ARN: 1}))
    check_platform(spec.settings, platform, CE)
    assert build_job_definition(spec) == build_job_definition(plain)  # the same definition
    identity = TaskIdentity("d", "t", "r", -1, 1)
    request = build_submit_request(spec, identity, "q", 600)
    assert_valid_for_botocore("SubmitJob", request)
    assert request["consumableResourcePropertiesOverride"] == {"consumableResourceList": [
        {"consumableResource": "licence-x", "quantity": 2}, {"consumableResource": CR_ARN, "quantity": 1}]}
    assert "consumableResourcePropertiesOverride" not in build_submit_request(plain, identity, "q", 600)
    array = array_spec.resolve(3, None, 0)
    assert array is not None
    array_request = array_spec.build_submit_request(spec, array, identity, "q", 600)
    assert array_request["consumableResourcePropertiesOverride"] == request["consumableResourcePropertiesOverride"]


def test_a_literal_consumable_resources_beyond_aws_bounds_fails_when_the_dag_is_parsed() -> None:
    from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

    required: dict[str, Any] = {"task_id": "shell", "compute_environment_arn": CE, "commands": ["true"]}
    with pytest.raises(ValueError, match="at most 5 consumable resources; got 6"):
        BatchRunnerOperator(**required, consumable_resources={f"r{i}": 1 for i in range(6)})
    operator = BatchRunnerOperator(**required, consumable_resources={"licence-x": 1})
    assert operator._settings == ContainerSettings(consumable_resources=(("licence-x", 1),))
