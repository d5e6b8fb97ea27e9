"""The AWS CLI image's ``s3 cp`` commands, which the emulator runs itself instead of as processes, do
what the AWS CLI does: the same command on an emulator that starts real AWS CLI processes
(``--aws-cli-processes``) gives the same objects, files, exit codes and none of the cost.

Semantics from the AWS CLI reference (``aws s3 cp``, "Use of Exclude and Include Filters"): every file
is included by default, filters apply in order and the last one that matches wins, ``*`` matches
any characters (``/`` too); ``--recursive`` copies a directory or a prefix; an alias from
``~/.aws/cli/alias``'s ``[toplevel]`` expands to its command; a failed copy exits with 1.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_batch_runner.emulator.testing import control, running_emulator
from airflow_batch_runner.job_spec import AWS_CLI_IMAGE
from tests.emulator import helpers
from tests.emulator.helpers import container

pytestmark = pytest.mark.timeout(180)

PREP = """
mkdir -p /vol/src/sub/deep /vol/home/.aws/cli /vol/dl
echo a > /vol/src/a.txt; echo b > /vol/src/sub/b.csv; echo c > /vol/src/sub/deep/c.csv
echo skip > /vol/src/skip.log; echo h > /vol/src/.hidden.csv
printf '%s\\n' '[toplevel]' "up = s3 cp --recursive --only-show-errors /vol/src/ s3://BUCKET/up/ --exclude '*' \
--include '*.csv' --include a.txt --exclude '.hidden*'" > /vol/home/.aws/cli/alias
"""
LIST = "cd /vol/dl && find . -type f | sort && cat a.txt sub/b.csv"


def run_copies(url: str) -> dict[str, Any]:
    """One job whose containers upload through an alias, download with a filter, list what arrived, then
    try a bucket that does not exist; what S3, the log and the exit codes show."""
    batch, s3, logs = (helpers.client(url, service) for service in ("batch", "s3", "logs"))
    bucket = helpers.unique("cli")
    s3.create_bucket(Bucket=bucket)
    queue = helpers.create_queue_for(batch, "EC2")
    mounts = [("vol", "/vol")]
    home = [{"name": "HOME", "value": "/vol/home"}]
    containers = [
        container("prep", ["sh", "-c", PREP.replace("BUCKET", bucket)], essential=False, mounts=mounts),
        container("upload", ["up"], essential=False, image=AWS_CLI_IMAGE, mounts=mounts, environment=home,
                  depends_on=[("prep", "SUCCESS")]),
        container("download", ["s3", "cp", "--recursive", f"s3://{bucket}/up/", "/vol/dl/", "--exclude",
                               "sub/deep/*"], essential=False, image=AWS_CLI_IMAGE, mounts=mounts,
                  depends_on=[("upload", "SUCCESS")]),
        container("list", ["sh", "-c", LIST], essential=False, mounts=mounts, log_prefix="list",
                  depends_on=[("download", "SUCCESS")]),
        container("missing", ["s3", "cp", "--recursive", "/vol/src/", "s3://no-such-bucket-h12/x/"],
                  image=AWS_CLI_IMAGE, mounts=mounts, depends_on=[("list", "SUCCESS")]),
    ]
    definition = helpers.register_ecs(batch, containers, volumes=["vol"])["jobDefinitionArn"]
    job = helpers.wait_for_status(batch, helpers.submit(batch, queue, definition), timeout=120)
    results = helpers.container_results(job)
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    return {
        "status": job["status"],
        "exit_codes": {name: c.get("exitCode") for name, c in results.items()},
        "keys": keys,
        "listed": helpers.log_messages(logs, results["list"]["logStreamName"]),
        "missing": helpers.log_messages(logs, results["missing"]["logStreamName"]),
        "aws_cli": control(url, "stats")["aws_cli"],
    }


@pytest.fixture(scope="module")
def in_process(emulator_session_url: str) -> dict[str, Any]:
    return run_copies(emulator_session_url)


@pytest.fixture(scope="module")
def as_processes() -> dict[str, Any]:
    with running_emulator(extra_args=["--aws-cli-processes"]) as url:
        return run_copies(url)


def test_copies_follow_the_cli_filters_and_aliases(in_process: dict[str, Any]) -> None:
    assert in_process["keys"] == ["up/a.txt", "up/sub/b.csv", "up/sub/deep/c.csv"]
    assert in_process["listed"] == ["./a.txt", "./sub/b.csv", "a", "b"]
    assert in_process["exit_codes"] == {"prep": 0, "upload": 0, "download": 0, "list": 0, "missing": 1}
    assert in_process["status"] == "FAILED"
    assert any("NoSuchBucket" in line for line in in_process["missing"]), in_process["missing"]


def test_the_emulator_ran_them_itself(in_process: dict[str, Any]) -> None:
    assert in_process["aws_cli"]["in_process"] >= 3


def test_real_aws_cli_processes_do_the_same(in_process: dict[str, Any], as_processes: dict[str, Any]) -> None:
    assert as_processes["aws_cli"] == {"in_process": 0, "processes": 3}
    for key in ("status", "exit_codes", "keys", "listed"):
        assert as_processes[key] == in_process[key], key
    assert any("NoSuchBucket" in line for line in as_processes["missing"]), as_processes["missing"]
