"""The other services behind the same endpoint (S3, CloudWatch Logs, STS, IAM, EC2, ECS) and the AWS CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from airflow_batch_runner.emulator.testing import control
from tests.emulator import helpers

ACCOUNT = "123456789012"


def test_s3_objects(s3: Any) -> None:
    s3.create_bucket(Bucket="data")
    s3.put_object(Bucket="data", Key="in/a.txt", Body=b"alpha")
    s3.put_object(Bucket="data", Key="in/b.txt", Body=b"beta")
    assert s3.get_object(Bucket="data", Key="in/a.txt")["Body"].read() == b"alpha"
    listed = s3.list_objects_v2(Bucket="data", Prefix="in/")
    assert [o["Key"] for o in listed["Contents"]] == ["in/a.txt", "in/b.txt"]
    s3.delete_object(Bucket="data", Key="in/a.txt")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="data")["Contents"]] == ["in/b.txt"]
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket="data", Key="in/a.txt")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["data"]


def test_s3_upload_and_download_files(s3: Any, tmp_path: Path) -> None:
    s3.create_bucket(Bucket="files")
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(9 * 1024 * 1024))  # multipart with the default 8 MiB threshold
    s3.upload_file(str(source), "files", "big.bin")
    target = tmp_path / "copy.bin"
    s3.download_file("files", "big.bin", str(target))
    assert target.read_bytes() == source.read_bytes()


def test_cloudwatch_logs(logs: Any) -> None:
    logs.create_log_group(logGroupName="/test/group")
    logs.create_log_stream(logGroupName="/test/group", logStreamName="stream-1")
    now = int(time.time() * 1000)  # CloudWatch Logs refuses events older than 14 days
    logs.put_log_events(
        logGroupName="/test/group",
        logStreamName="stream-1",
        logEvents=[{"timestamp": now + i, "message": f"line {i}"} for i in range(3)],
    )
    events = logs.get_log_events(logGroupName="/test/group", logStreamName="stream-1", startFromHead=True)
    assert [e["message"] for e in events["events"]] == ["line 0", "line 1", "line 2"]
    streams = logs.describe_log_streams(logGroupName="/test/group")["logStreams"]
    assert [s["logStreamName"] for s in streams] == ["stream-1"]
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.get_log_events(logGroupName="/test/group", logStreamName="missing")


def test_job_logs_are_found_with_filter_log_events(batch: Any, logs: Any, ec2_queue: str) -> None:
    definition = helpers.register_container(batch, ["sh", "-c", "echo needle-42"], name="searched")
    job = helpers.wait_for_status(batch, helpers.submit(batch, ec2_queue, definition["jobDefinitionArn"]))
    helpers.wait_ingested(logs)
    found = logs.filter_log_events(logGroupName=helpers.LOG_GROUP, logStreamNamePrefix="searched/")["events"]
    assert [(e["logStreamName"], e["message"]) for e in found] == [(job["container"]["logStreamName"], "needle-42")]


def test_sts_caller_identity_and_assume_role(emulator_url: str) -> None:
    sts = helpers.client(emulator_url, "sts")
    assert sts.get_caller_identity()["Account"] == ACCOUNT
    role = f"arn:aws:iam::{ACCOUNT}:role/batch-runner"
    assumed = sts.assume_role(RoleArn=role, RoleSessionName="airflow", ExternalId="ext", DurationSeconds=900)
    credentials = assumed["Credentials"]
    assert credentials["AccessKeyId"] and credentials["SecretAccessKey"] and credentials["SessionToken"]
    assert assumed["AssumedRoleUser"]["Arn"].endswith(":assumed-role/batch-runner/airflow")
    # The temporary credentials work against the same endpoint.
    session = boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=helpers.REGION,
    )
    s3 = session.client("s3", endpoint_url=emulator_url)
    s3.create_bucket(Bucket="assumed")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["assumed"]
    batch = session.client("batch", endpoint_url=emulator_url)
    assert batch.describe_job_queues()["jobQueues"] == []


def test_iam_ec2_and_ecs(emulator_url: str) -> None:
    iam = helpers.client(emulator_url, "iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(RoleName="execution", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/execution"
    ec2 = helpers.client(emulator_url, "ec2")
    assert ec2.describe_vpcs()["Vpcs"], "moto has a default VPC"
    ecs = helpers.client(emulator_url, "ecs")
    ecs.create_cluster(clusterName="c")
    assert ecs.list_clusters()["clusterArns"] == [f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/c"]
    stats = control(emulator_url, "stats")["calls"]
    assert stats["iam"] == {"CreateRole": 1}
    assert stats["ec2"] == {"DescribeVpcs": 1}
    assert stats["ecs"] == {"CreateCluster": 1, "ListClusters": 1}


def test_each_region_has_its_own_batch(emulator_url: str, batch: Any) -> None:
    helpers.create_compute_environment(batch, name="east")
    west = helpers.client(emulator_url, "batch", region="eu-west-1")
    assert west.describe_compute_environments()["computeEnvironments"] == []
    arn = west.create_compute_environment(
        computeEnvironmentName="east",
        type="MANAGED",
        computeResources={"type": "FARGATE", "maxvCpus": 4, "subnets": ["subnet-1"], "securityGroupIds": ["sg-1"]},
    )["computeEnvironmentArn"]
    assert arn == f"arn:aws:batch:eu-west-1:{ACCOUNT}:compute-environment/east"


def test_reset_clears_every_service(emulator_url: str, batch: Any, s3: Any) -> None:
    s3.create_bucket(Bucket="gone")
    helpers.create_compute_environment(batch, name="gone", wait=False)
    control(emulator_url, "reset", {})
    assert s3.list_buckets()["Buckets"] == []
    assert batch.describe_compute_environments()["computeEnvironments"] == []


def test_motos_own_reset_endpoint_resets_our_batch_too(emulator_url: str, batch: Any) -> None:
    """moto's test suites call POST /moto-api/reset between tests: nothing of one test may reach the next."""
    import urllib.request

    policy = batch.create_scheduling_policy(name="left-over")["arn"]
    helpers.create_compute_environment(batch, name="left-over", wait=False)
    request = urllib.request.Request(f"{emulator_url}/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 200
    assert batch.describe_compute_environments()["computeEnvironments"] == []
    assert batch.describe_scheduling_policies(arns=[policy])["schedulingPolicies"] == []
    assert batch.create_scheduling_policy(name="left-over")["arn"] == policy


# The AWS CLI


def _aws(url: str, *args: str) -> str:
    aws = shutil.which("aws", path=str(Path(sys.executable).parent))
    assert aws, "the emulator extra installs the AWS CLI next to the interpreter"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": helpers.REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    env.pop("AWS_PROFILE", None)
    done = subprocess.run(
        [aws, "--endpoint-url", url, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


BATCH_STACK = {
    "Resources": {
        "Bucket": {"Type": "AWS::S3::Bucket"},
        "Definition": {
            "Type": "AWS::Batch::JobDefinition",
            "Properties": {"Type": "container", "ContainerProperties": {"Image": "busybox"}},
        },
    }
}
BATCH_STACK_YAML = """Resources:
  Queue:
    Type: 'AWS::Batch::JobQueue'
    Properties:
      Priority: 1
      ComputeEnvironmentOrder: []
"""


def test_cloudformation_batch_resources_are_refused_by_name(emulator_url: str, s3: Any) -> None:
    """moto's CloudFormation would create AWS::Batch::* resources in moto's own Batch, which this emulator's Batch
    cannot see. The emulator refuses such a template as CloudFormation refuses resource types it does not know
    (ValidationError "Template format error: Unrecognized resource types: [...]"), naming the limitation; nothing
    is created. Templates without Batch resources still go to moto."""
    cfn = helpers.client(emulator_url, "cloudformation")
    s3.create_bucket(Bucket="templates")
    s3.put_object(Bucket="templates", Key="batch.yaml", Body=BATCH_STACK_YAML.encode())
    url = f"{emulator_url}/templates/batch.yaml".replace("127.0.0.1", "localhost")
    attempts: list[tuple[Any, dict[str, Any], str]] = [
        (cfn.create_stack, {"StackName": "batch", "TemplateBody": json.dumps(BATCH_STACK)}, "JobDefinition"),
        (cfn.create_stack, {"StackName": "batch", "TemplateBody": BATCH_STACK_YAML}, "JobQueue"),
        (cfn.create_stack, {"StackName": "batch", "TemplateURL": url}, "JobQueue"),
        (cfn.create_change_set, {
            "StackName": "batch", "ChangeSetName": "c1", "ChangeSetType": "CREATE", "TemplateBody": BATCH_STACK_YAML,
        }, "JobQueue"),
    ]
    for call, params, kind in attempts:
        with pytest.raises(cfn.exceptions.ClientError) as excinfo:
            call(**params)
        code, message, status = helpers.client_error(excinfo)
        assert (code, status) == ("ValidationError", 400), message
        assert f"AWS::Batch::{kind}" in message and "emulator" in message, message
    assert [s["StackName"] for s in cfn.list_stacks()["StackSummaries"]] == []
    plain = {"Resources": {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "from-stack"}}}}
    cfn.create_stack(StackName="plain", TemplateBody=json.dumps(plain))
    with pytest.raises(cfn.exceptions.ClientError) as excinfo:
        cfn.update_stack(StackName="plain", TemplateBody=json.dumps(BATCH_STACK))
    assert "AWS::Batch::JobDefinition" in helpers.client_error(excinfo)[1]
    assert "from-stack" in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_aws_cli_s3(emulator_url: str, s3: Any, tmp_path: Path) -> None:
    _aws(emulator_url, "s3", "mb", "s3://cli-bucket")
    source = tmp_path / "hello.txt"
    source.write_text("hello from the cli\n")
    _aws(emulator_url, "s3", "cp", str(source), "s3://cli-bucket/dir/hello.txt")
    assert "cli-bucket" in _aws(emulator_url, "s3", "ls")
    assert "hello.txt" in _aws(emulator_url, "s3", "ls", "s3://cli-bucket/dir/")
    assert s3.get_object(Bucket="cli-bucket", Key="dir/hello.txt")["Body"].read() == b"hello from the cli\n"


def test_aws_cli_batch(emulator_url: str, batch: Any, ec2_queue: str) -> None:
    definition = helpers.register_container(batch, ["sh", "-c", "exit 2"], name="cli-def")
    job_id = helpers.submit(batch, ec2_queue, definition["jobDefinitionArn"], name="cli-job")
    helpers.wait_for_status(batch, job_id)
    described = json.loads(_aws(emulator_url, "batch", "describe-jobs", "--jobs", job_id, "--output", "json"))
    (job,) = described["jobs"]
    assert (job["jobId"], job["jobName"], job["status"]) == (job_id, "cli-job", "FAILED")
    assert job["container"]["exitCode"] == 2

    submitted = json.loads(
        _aws(
            emulator_url,
            "batch", "submit-job",
            "--job-name", "from-cli",
            "--job-queue", ec2_queue,
            "--job-definition", "cli-def",
            "--container-overrides", json.dumps({"command": ["true"]}),
            "--output", "json",
        )
    )
    assert helpers.wait_for_status(batch, submitted["jobId"])["status"] == "SUCCEEDED"
    listed = json.loads(
        _aws(
            emulator_url,
            "batch", "list-jobs",
            "--job-queue", ec2_queue,
            "--filters", "name=JOB_NAME,values=from-cli",
            "--output", "json",
        )
    )
    assert [s["jobId"] for s in listed["jobSummaryList"]] == [submitted["jobId"]]
    query = _aws(
        emulator_url,
        "batch", "describe-jobs",
        "--jobs", submitted["jobId"],
        "--query", "jobs[0].status",
        "--output", "text",
    )
    assert query.strip() == "SUCCEEDED"


def test_s3_multipart_upload_is_counted_by_operation(emulator_url: str, s3: Any) -> None:
    """``?uploads`` and ``?delete`` have no value: they must still name the operation in stats and faults."""
    s3.create_bucket(Bucket="parts")
    upload = s3.create_multipart_upload(Bucket="parts", Key="k")
    part = s3.upload_part(Bucket="parts", Key="k", UploadId=upload["UploadId"], PartNumber=1, Body=b"x")
    s3.complete_multipart_upload(
        Bucket="parts",
        Key="k",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    s3.delete_objects(Bucket="parts", Delete={"Objects": [{"Key": "k"}]})
    calls = control(emulator_url, "stats")["calls"]["s3"]
    assert calls == {
        "CreateBucket": 1,
        "CreateMultipartUpload": 1,
        "UploadPart": 1,
        "CompleteMultipartUpload": 1,
        "DeleteObjects": 1,
    }
