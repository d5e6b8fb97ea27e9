"""container_properties, the escape hatch: the members the runner passes on, each as AWS takes it (every bound and
its neighbour), the members it owns refused naming the argument to use, Fargate's refusals, and the main container
of a content-addressed definition as their place. Pure: no AWS."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from airflow_batch_runner import container_properties
from airflow_batch_runner.container_settings import ContainerSettings, check_platform, parse
from airflow_batch_runner.job_spec import build_job_definition
from tests.unit.test_container_settings import a_definition_of_its_own
from tests.unit.test_job_spec import assert_valid_for_botocore, make_spec

CE = "arn:aws:batch:us-east-1:123456789012:compute-environment/ce"
SECRET = {"name": "TOKEN", "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:token-AbCdEf"}
EVERYTHING = {"secrets": [SECRET], "user": "1000:1000", "privileged": False, "readonlyRootFilesystem": True,
              "startTimeout": 2, "stopTimeout": 120}


def test_the_members_left_pass_as_given() -> None:
    assert dict(parse(container_properties=EVERYTHING).container_properties) == EVERYTHING
    assert parse(container_properties=None).container_properties == ()
    assert parse(container_properties={}).container_properties == ()


@pytest.mark.parametrize("key, fix", [
    ("image", "use container_image"), ("command", "use commands"), ("environment", "use env"),
    ("resourceRequirements", "use resources"), ("linuxParameters", "use shared_memory, init_process and tmpfs"),
    ("ulimits", "use ulimits"), ("repositoryCredentials", "use repository_credentials"),
    ("mountPoints", "use volumes"), ("logConfiguration", "CloudWatch Logs"),
    ("firelensConfiguration", "CloudWatch Logs"), ("name", "names its containers"), ("essential", "ends the task"),
    ("dependsOn", "orders its containers"),
])
def test_what_the_runner_owns_is_refused_naming_the_argument_to_use(key: str, fix: str) -> None:
    with pytest.raises(ValueError, match=rf"^container_properties\['{key}'\] is the runner's: .*{fix}"):
        parse(container_properties={key: "x"})


@pytest.mark.parametrize("value, message", [
    ({"portMappings": []}, r"container_properties\['portMappings'\] is not a container property the runner passes"),
    ([("user", "1000")], "container_properties must be a mapping of AWS Batch container properties"),
    ({"privileged": "true"}, r"\['privileged'\] must be True or False"),
    ({"readonlyRootFilesystem": 1}, r"\['readonlyRootFilesystem'\] must be True or False"),
    ({"user": ""}, r"\['user'\] must be a user as Docker takes it"),
    ({"user": "a b"}, r"\['user'\] must be a user as Docker takes it"),
    ({"startTimeout": 1}, r"\['startTimeout'\] must be a whole number of seconds, at least 2; got 1"),
    ({"stopTimeout": 1}, r"\['stopTimeout'\] must be a whole number of seconds, at least 2; got 1"),
    ({"stopTimeout": 2.5}, r"\['stopTimeout'\] must be a whole number of seconds"),
    ({"secrets": SECRET}, r"\['secrets'\] must be a list"),
    ({"secrets": [{"name": "TOKEN"}]}, r"\['secrets'\]\[0\] must be"),
    ({"secrets": [{**SECRET, "name": "1TOKEN"}]}, r"\['secrets'\]\[0\].name '1TOKEN' must be an environment"),
    ({"secrets": [{**SECRET, "name": "AWS_BATCH_X"}]}, r"must be an environment variable name"),
    ({"secrets": [{**SECRET, "name": "WORKING_DIR"}]}, r"'WORKING_DIR' is set by the runner"),
    ({"secrets": [SECRET, SECRET]}, r"\['secrets'\]\[1\].name 'TOKEN' is given twice"),
    ({"secrets": [{**SECRET, "valueFrom": ""}]}, r"valueFrom must be a Secrets Manager secret ARN or an SSM"),
])
def test_bad_members_are_refused_naming_them(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(container_properties=value)


@pytest.mark.parametrize("value, message", [
    ({"privileged": True}, r"\['privileged'\] is not supported for jobs on Fargate"),
    ({"startTimeout": 121}, r"\['startTimeout'\] is at most 120 s on Fargate .*got 121"),
    ({"stopTimeout": 121}, r"\['stopTimeout'\] is at most 120 s on Fargate"),
])
def test_fargate_refuses_privileged_and_timeouts_above_120_s(value: Any, message: str) -> None:
    settings = parse(container_properties=value)
    check_platform(settings, "EC2", CE)
    with pytest.raises(ValueError, match=message):
        check_platform(settings, "FARGATE", CE)
    check_platform(parse(container_properties={"privileged": False, "stopTimeout": 120}), "FARGATE", CE)


def test_a_secret_and_an_env_variable_of_the_same_name_are_refused() -> None:
    settings = parse(container_properties={"secrets": [SECRET]})
    container_properties.check_env(settings.container_properties, {"OTHER": "1"})
    with pytest.raises(ValueError, match="container_properties\\['secrets'\\] and env both set TOKEN; keep one"):
        container_properties.check_env(settings.container_properties, {"TOKEN": "1"})


def test_the_members_land_on_the_main_container_of_a_definition_of_their_own() -> None:
    plain = make_spec("inputs_main_outputs", platform="EC2")
    spec = replace(plain, settings=parse(container_properties=EVERYTHING, init_process=True))
    definition = build_job_definition(spec)
    assert_valid_for_botocore("RegisterJobDefinition", definition)
    containers = {c["name"]: c for c in definition["ecsProperties"]["taskProperties"][0]["containers"]}
    assert {k: containers["main"][k] for k in EVERYTHING} == EVERYTHING
    assert containers["main"]["linuxParameters"] == {"initProcessEnabled": True}  # beside the other arguments
    assert all(not set(EVERYTHING) & set(containers[name]) for name in ("inputs", "outputs"))
    array_containers = a_definition_of_its_own(plain, spec, replace(plain, settings=parse(
        container_properties=dict(EVERYTHING), init_process=True)))
    assert [c["name"] for c in array_containers if "secrets" in c] == ["main"]


def test_a_literal_member_the_runner_owns_fails_when_the_dag_is_parsed() -> None:
    from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

    required: dict[str, Any] = {"task_id": "shell", "compute_environment_arn": CE, "commands": ["true"]}
    with pytest.raises(ValueError, match=r"container_properties\['command'\] is the runner's: use commands"):
        BatchRunnerOperator(**required, container_properties={"command": ["echo"]})
    operator = BatchRunnerOperator(**required, container_properties={"user": "1000"})
    assert operator._settings == ContainerSettings(container_properties=(("user", "1000"),))
