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
