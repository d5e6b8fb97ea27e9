"""One array job of N children, each an ECS job shaped like the operator's: an AWS CLI sidecar copying
the inputs in, the main container, an AWS CLI sidecar copying the outputs out, on a shared volume.

Prints how long until every child SUCCEEDED, the emulator's CPU and its children's (the containers').
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import boto3
import psutil

from airflow_batch_runner.emulator.testing import running_emulator
from bench.emulator_capacity import until_valid

CLI = "public.ecr.aws/aws-cli/aws-cli:latest"


def _client(url: str, service: str) -> Any:
    make: Any = boto3.client
    return make(service, endpoint_url=url, region_name="us-east-1",
                aws_access_key_id="testing", aws_secret_access_key="testing")


def _container(name: str, image: str, command: list[str], essential: bool, after: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": name, "image": image, "command": command, "essential": essential,
        "mountPoints": [{"sourceVolume": "work", "containerPath": "/work"}],
        "resourceRequirements": [{"type": "VCPU", "value": "0.125"}, {"type": "MEMORY", "value": "128"}],
        "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/aws/batch/job",
                                                                  "awslogs-stream-prefix": "fanout"}},
    }
    if after:
        spec["dependsOn"] = [{"containerName": after, "condition": "SUCCESS"}]
    return spec


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--step-delay", type=float, default=0.2)
    parser.add_argument("--no-sidecars", action="store_true", help="main container only")
    parser.add_argument("--inputs", type=int, default=10, help="staged input files; child i reads file i %% n")
    parser.add_argument("--aws-cli-processes", action="store_true", help="run the CLI as processes, not in-process")
    args = parser.parse_args()
    extra = ["--no-quotas", *(["--aws-cli-processes"] if args.aws_cli_processes else [])]
    with running_emulator(step_delay=args.step_delay, extra_args=extra) as url:
        emulator = next(p for p in psutil.Process().children() if "airflow_batch_runner.emulator" in p.cmdline())
        batch, s3 = _client(url, "batch"), _client(url, "s3")
        s3.create_bucket(Bucket="fanout")
        for i in range(args.inputs):
            s3.put_object(Bucket="fanout", Key=f"in/{i}.txt", Body=f"input {i}\n".encode())
        ce = batch.create_compute_environment(
            computeEnvironmentName="ce", type="MANAGED",
            computeResources={"type": "EC2", "maxvCpus": 256, "minvCpus": 0, "instanceTypes": ["optimal"],
                              "subnets": ["subnet-1"], "instanceRole": "ecsInstanceRole"})["computeEnvironmentArn"]
        until_valid(batch, compute_environment=ce)
        queue = batch.create_job_queue(jobQueueName="q", priority=1, state="ENABLED",
                                       computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}])["jobQueueArn"]
        until_valid(batch, queue=queue)
        # As the operator's job: the inputs sidecar copies the staged prefix in (the same for every child:
        # the AWS CLI image has no shell to read the index), main picks a file by its array index, the
        # outputs sidecar copies back what main wrote (one key per child).
        pick = (f'i=$AWS_BATCH_JOB_ARRAY_INDEX; mkdir -p /work/out; '
                f'tr a-z A-Z < "/work/in/$((i % {args.inputs})).txt" > "/work/out/$i.txt"')
        main = _container("main", "busybox", ["sh", "-c", pick], args.no_sidecars,
                          None if args.no_sidecars else "inputs")
        copy = ["s3", "cp", "--recursive", "--only-show-errors"]
        containers = [main] if args.no_sidecars else [
            _container("inputs", CLI, [*copy, "s3://fanout/in/", "/work/in/"], False, None),
            main,
            _container("outputs", CLI, [*copy, "/work/out/", "s3://fanout/out/"], True, "main"),
        ]
        if args.no_sidecars:
            main["command"] = ["sh", "-c", "echo $AWS_BATCH_JOB_ARRAY_INDEX"]
        definition = batch.register_job_definition(
            jobDefinitionName="fanout", type="container", platformCapabilities=["EC2"],
            ecsProperties={"taskProperties": [{"containers": containers, "volumes": [{"name": "work"}]}]},
        )["jobDefinitionArn"]
        cpu0 = emulator.cpu_times()
        start = time.monotonic()
        parent = batch.submit_job(jobName="fanout", jobQueue=queue, jobDefinition=definition,
                                  arrayProperties={"size": args.size})["jobId"]
        while True:
            job = batch.describe_jobs(jobs=[parent])["jobs"][0]
            if job["status"] in ("SUCCEEDED", "FAILED"):
                break
            time.sleep(1)
        elapsed = time.monotonic() - start
        cpu1 = emulator.cpu_times()
        own = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
        children = (cpu1.children_user + cpu1.children_system) - (cpu0.children_user + cpu0.children_system)
        print(f"array of {args.size}: parent {job['status']} {job['arrayProperties']['statusSummary']}")
        print(f"wall {elapsed:.1f} s; emulator CPU {own:.1f} s; container processes' CPU {children:.1f} s "
              f"({children / args.size:.2f} s per child)")
        if not args.no_sidecars:
            outputs = sum(1 for page in s3.get_paginator("list_objects_v2").paginate(Bucket="fanout", Prefix="out/")
                          for _ in page.get("Contents", []))
            print(f"output objects: {outputs}")
        return 0 if job["status"] == "SUCCEEDED" else 1


if __name__ == "__main__":
    raise SystemExit(main())
