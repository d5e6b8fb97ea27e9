"""The sidecars under the user's control: their image and their share of the job's resources."""

from __future__ import annotations

import pytest

from airflow_batch_runner.job_spec import (
    AWS_CLI_IMAGE,
    Resources,
    build_job_definition,
    build_submit_request,
    definition_name,
)
from airflow_batch_runner.validation import check_sidecar_resources, parse_resources
from tests.unit.test_job_spec import (
    IDENTITY,
    QUEUE,
    by_name,
    definition_containers,
    make_spec,
    override_containers,
    requirement,
    totals,
)

CACHE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ecr-public/aws-cli/aws-cli:2.22.0"


def test_the_sidecars_run_the_image_given_and_main_keeps_its_own() -> None:
    spec = make_spec("inputs_main_outputs", sidecar_image=CACHE)
    images = {c["name"]: c["image"] for c in definition_containers(build_job_definition(spec))}
    assert images == {"inputs": CACHE, "main": "ubuntu:24.04", "outputs": CACHE}
    # Another sidecar image is another job definition.
    assert definition_name(spec) != definition_name(make_spec("inputs_main_outputs"))
    assert make_spec("inputs_main_outputs").sidecar_image == AWS_CLI_IMAGE


@pytest.mark.parametrize("platform", ["FARGATE", "EC2"])
def test_each_sidecar_takes_the_share_given_and_the_job_still_asks_for_resources(platform: str) -> None:
    spec = make_spec("inputs_main_outputs", platform=platform, resources=Resources(2, 4096),
                     sidecar_resources=Resources(0.25, 512))
    containers = by_name(override_containers(build_submit_request(spec, IDENTITY, QUEUE, None)))
    for name in ("inputs", "outputs"):
        assert (requirement(containers[name], "VCPU"), requirement(containers[name], "MEMORY")) == ("0.25", "512")
    assert (requirement(containers["main"], "VCPU"), requirement(containers["main"], "MEMORY")) == ("1.5", "3072")
    assert totals(list(containers.values())) == (2, 4096)  # the Fargate pair resources gave


@pytest.mark.parametrize(
    ("sidecar", "sidecars"),
    [(Resources(0.5, 512), 2), (Resources(0.125, 2048), 1), (Resources(0.125, 3), 2)],
    ids=["no vCPU left", "no memory left", "below AWS's 4 MiB"],
)
def test_sidecars_that_leave_main_nothing_are_refused_naming_the_argument(sidecar: Resources, sidecars: int) -> None:
    with pytest.raises(ValueError, match=r"sidecar_resources: .* leave the main container"):
        check_sidecar_resources(Resources(1, 2048), sidecar, sidecars)


def test_sidecar_resources_without_sidecars_need_no_room() -> None:
    check_sidecar_resources(Resources(0.25, 512), Resources(1, 4096), 0)


def test_a_malformed_sidecar_resources_names_its_argument() -> None:
    with pytest.raises(ValueError, match=r"^sidecar_resources must look like"):
        parse_resources({"cpu": "1"}, "sidecar_resources")
    with pytest.raises(ValueError, match=r"^sidecar_resources: cpu and memory must be positive"):
        parse_resources({"request": {"cpu": "0", "memory": "128"}}, "sidecar_resources")
