"""Options beyond Kestra's: the sidecars' image and resources."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import AwsWorld, run_dag
from tests.e2e.test_failures import mutations, task_dag

CACHE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ecr-public/aws-cli/aws-cli:2.22.0"


def test_sidecars_run_from_the_image_and_with_the_share_given(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = task_dag("sidecars", sidecar_image=CACHE, sidecar_resources={"request": {"cpu": "0.25", "memory": "256"}},
                   resources={"request": {"cpu": "2", "memory": "4096"}}, input_files={"in.txt": "staged\n"},
                   output_files=["out.txt"], commands=["cp in.txt out.txt"])
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-2000:]
    assert result.xcom is not None
    assert aws.read(result.xcom["output_files"]["out.txt"]) == "staged\n"  # both sidecars did their copy
    job = aws.client("batch").describe_jobs(jobs=[result.xcom["job_id"]])["jobs"][0]
    containers = {c["name"]: c for c in job["ecsProperties"]["taskProperties"][0]["containers"]}
    assert {name: c["image"] for name, c in containers.items()} == {
        "inputs": CACHE, "main": "ubuntu:24.04", "outputs": CACHE}
    shares = {name: {r["type"]: r["value"] for r in c["resourceRequirements"]} for name, c in containers.items()}
    assert shares == {"inputs": {"VCPU": "0.25", "MEMORY": "256"}, "main": {"VCPU": "1.5", "MEMORY": "3584"},
                      "outputs": {"VCPU": "0.25", "MEMORY": "256"}}


def test_sidecars_that_leave_main_nothing_fail_before_anything_is_created(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = task_dag("greedy_sidecars", sidecar_resources={"request": {"cpu": "0.5", "memory": "1024"}},
                   input_files={"in.txt": "x"}, commands=["true"])
    before = mutations(aws)
    result = run_dag(dag, capsys)
    assert result.state == "failed"
    assert "sidecar_resources: 2 sidecar(s) of 0.5 vCPU and 1024 MiB leave the main container 0 vCPU" in result.output
    assert mutations(aws) == before


def test_the_users_tags_are_on_the_job_beside_ours_which_win(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = task_dag("tagged", bucket=None, commands=["true"], propagate_tags=False,
                   tags={"team": "data", "run": "{{ run_id }}", "airflow:dag_id": "spoofed"})
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-2000:]
    assert result.xcom is not None
    batch = aws.client("batch")
    job = batch.describe_jobs(jobs=[result.xcom["job_id"]])["jobs"][0]
    assert job["tags"]["team"] == "data"
    assert job["tags"]["run"] == result.run_id  # templated
    assert job["tags"]["airflow:dag_id"] == "tagged"
    assert job["propagateTags"] is False
    assert batch.list_tags_for_resource(resourceArn=job["jobArn"])["tags"] == job["tags"]


def test_a_share_identifier_without_a_fair_share_queue_fails_before_anything_is_created(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = aws.queue_where_jobs_never_start("no-policy")
    before = mutations(aws)
    result = run_dag(task_dag("share_without_policy", bucket=None, commands=["true"], job_queue_arn=queue,
                              share_identifier="blue"), capsys)
    assert result.state == "failed"
    assert "share_identifier and scheduling_priority need a fair-share queue" in result.output
    assert mutations(aws) == before


def fair_share_queue(aws: AwsWorld, name: str) -> str:
    batch = aws.client("batch")
    policy = batch.create_scheduling_policy(
        name=f"{name}-policy", fairsharePolicy={"shareDecaySeconds": 3600,
                                                "shareDistribution": [{"shareIdentifier": "blue", "weightFactor": 1}]},
    )["arn"]
    return aws.job_queue(name, aws.fargate_ce, schedulingPolicyArn=policy)


def test_a_fair_share_job_carries_its_share_and_priority(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    queue = fair_share_queue(aws, "fair")
    dag = task_dag("fair_share", bucket=None, commands=["true"], job_queue_arn=queue, share_identifier="blue",
                   scheduling_priority=7)
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-2000:]
    assert result.xcom is not None
    job = aws.client("batch").describe_jobs(jobs=[result.xcom["job_id"]])["jobs"][0]
    assert (job["shareIdentifier"], job["schedulingPriority"]) == ("blue", 7)


def test_a_fair_share_queue_without_a_share_identifier_fails_before_anything_is_created(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = fair_share_queue(aws, "fair-unnamed")
    before = mutations(aws)
    result = run_dag(task_dag("fair_share_unnamed", bucket=None, commands=["true"], job_queue_arn=queue), capsys)
    assert result.state == "failed"
    assert "has the fair-share scheduling policy" in result.output and "requires a share_identifier" in result.output
    assert mutations(aws) == before
