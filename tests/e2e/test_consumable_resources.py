"""consumable_resources end to end (a real Airflow, the emulator's resource-aware scheduling): the job holds the
licence while it runs and waits RUNNABLE while another job holds it (on the worker and deferred); an array's
children take turns with one licence; @task.batch_runner takes it; a resource that does not exist fails the task
naming it. Bad values fail before anything is created (test_container_settings' refusal tables)."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import AwsWorld, run_dag
from tests.e2e.test_failures import task_dag, the_job
from tests.e2e.test_gpus import decorated_dag
from tests.emulator.helpers import wait_until


def licence(aws: AwsWorld, total: int = 1) -> str:
    name = f"licence-{uuid.uuid4().hex[:8]}"
    aws.client("batch").create_consumable_resource(consumableResourceName=name, totalQuantity=total)
    return name


def hold(aws: AwsWorld, name: str) -> str:
    """A job of our own holding the licence until terminated; returns its id once RUNNING."""
    batch = aws.client("batch")
    queue = aws.job_queue(f"holder-{uuid.uuid4().hex[:6]}", aws.ec2_ce)
    definition = batch.register_job_definition(
        jobDefinitionName=f"holder-{uuid.uuid4().hex[:6]}", type="container", platformCapabilities=["EC2"],
        containerProperties={"image": "busybox", "command": ["sleep", "600"],
                             "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                      {"type": "MEMORY", "value": "512"}]},
        consumableResourceProperties={"consumableResourceList": [{"consumableResource": name, "quantity": 1}]},
    )["jobDefinitionArn"]
    job_id = str(batch.submit_job(jobName="holder", jobQueue=queue, jobDefinition=definition)["jobId"])
    wait_until(lambda: batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"] == "RUNNING", timeout=30)
    return job_id


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_a_job_holds_its_licence_and_waits_runnable_while_another_job_holds_it(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], deferrable: bool
) -> None:
    name = licence(aws)
    free = run_dag(task_dag(f"licensed_{deferrable}", compute_environment_arn=aws.ec2_ce, deferrable=deferrable,
                            params={"n": 1}, consumable_resources={name: "{{ params.n }}"}, commands=["true"]), capsys)
    assert free.state == "success", free.output[-3000:]
    assert free.xcom is not None
    job = aws.client("batch").describe_jobs(jobs=[free.xcom["job_id"]])["jobs"][0]
    assert job["consumableResourceProperties"] == {"consumableResourceList": [
        {"consumableResource": name, "quantity": 1}]}
    holder = hold(aws, name)
    dag_id = f"licence_taken_{deferrable}"
    waited = run_dag(task_dag(dag_id, compute_environment_arn=aws.ec2_ce, deferrable=deferrable, commands=["true"],
                              consumable_resources={name: 1}, max_runnable_time=2, wait_until_completion=600), capsys)
    aws.client("batch").terminate_job(jobId=holder, reason="done")
    assert waited.state == "failed"
    assert "stayed RUNNABLE longer than 2 s (max_runnable_time)" in waited.output, waited.output[-3000:]
    assert the_job(aws, dag_id)["status"] == "FAILED"


def test_an_arrays_children_take_turns_with_one_licence(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    name = licence(aws)
    dag = task_dag("licensed_array", compute_environment_arn=aws.ec2_ce, array_size=3, commands=["true"],
                   consumable_resources={name: 1})
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    batch = aws.client("batch")
    children = batch.describe_jobs(jobs=[f"{result.xcom['job_id']}:{i}" for i in range(3)])["jobs"]
    spans = sorted((c["startedAt"], c["stoppedAt"]) for c in children)
    assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(spans))  # one at a time
    assert batch.describe_consumable_resource(consumableResource=name)["availableQuantity"] == 1


def test_the_decorator_takes_consumable_resources_as_the_operator_does(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    name = licence(aws, 2)
    dag = decorated_dag("decorated_licensed", ["true"], compute_environment_arn=aws.ec2_ce,
                        consumable_resources={name: 2})
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    jobs = aws.client("batch").list_jobs_by_consumable_resource(consumableResource=name)["jobs"]
    assert [(j["jobArn"].rsplit("/", 1)[-1], j["quantity"]) for j in jobs] == [(result.xcom["job_id"], 2)]


def test_a_consumable_resource_that_does_not_exist_fails_the_task_naming_it(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    kwargs: dict[str, Any] = {"consumable_resources": {"no-such-licence": 1}}
    result = run_dag(task_dag("unlicensed", compute_environment_arn=aws.ec2_ce, commands=["true"], **kwargs), capsys)
    assert result.state == "failed"
    assert "no-such-licence" in result.output and "does not exist" in result.output, result.output[-3000:]
