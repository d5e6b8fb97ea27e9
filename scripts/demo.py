"""`make demo`: the emulator, a real Airflow, and `container_with_input_files` end to end.

Starts the local AWS emulator, creates a Fargate compute environment and a bucket in it, points
Airflow's ``aws_default`` connection at it, runs the example DAG with ``airflow dags test``, then
prints the task's XCom and the content of its output file, and stops the emulator.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "container_with_input_files"
INPUT = "Hello from the airflow-batch-runner demo\n"


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="abr-demo-"))
    dags = home / "dags"
    shutil.copytree(ROOT / "dags_examples", dags, ignore=shutil.ignore_patterns("__pycache__"))
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    os.environ.update(env)
    import boto3

    from airflow_batch_runner.emulator.testing import running_emulator

    print(f"Airflow home: {home}")
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, env=env, capture_output=True)
    # --8<-- [start:emulator]
    with running_emulator(step_delay=0.2) as url:
        print(f"Emulator: {url}")
        batch = boto3.client("batch", endpoint_url=url)
        ce = batch.create_compute_environment(
            computeEnvironmentName="demo-fargate",
            type="MANAGED",
            computeResources={"type": "FARGATE", "maxvCpus": 16, "subnets": ["subnet-demo"],
                              "securityGroupIds": ["sg-demo"]},
        )["computeEnvironmentArn"]
        boto3.client("s3", endpoint_url=url).create_bucket(Bucket="demo-bucket")
        time.sleep(0.5)
        env.update(
            {
                "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
                    {"conn_type": "aws", "login": "testing", "password": "testing",
                     "extra": {"endpoint_url": url, "region_name": "us-east-1"}}
                ),
                "AIRFLOW_VAR_COMPUTE_ENVIRONMENT_ARN": ce,
                "AIRFLOW_VAR_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
                "AIRFLOW_VAR_BUCKET": "demo-bucket",
                "AIRFLOW_VAR_REGION": "us-east-1",
            }
        )
        # --8<-- [end:emulator]
        print(f"Running `airflow dags test {DAG_ID}` with file = {INPUT!r}")
        run = subprocess.run(
            [sys.executable, "-m", "airflow", "dags", "test", DAG_ID, "-c", json.dumps({"file": INPUT})],
            env=env, capture_output=True, text=True,
        )
        log = home / "dags_test.log"
        log.write_text(run.stdout + run.stderr)
        for line in (run.stdout + run.stderr).splitlines():
            if "[main]" in line or "Submitted AWS Batch job" in line:
                print("  " + line.strip())
        if run.returncode != 0:
            print(f"airflow dags test failed ({run.returncode}); full log in {log}")
            return run.returncode
        os.environ.update(env)
        xcom = _read_xcom()
        print("XCom return_value of task 'shell':")
        print(json.dumps(xcom, indent=2))
        bucket, key = xcom["output_files"]["out.txt"][5:].split("/", 1)
        content = boto3.client("s3", endpoint_url=url).get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        print(f"Content of out.txt: {content!r}")
        if content != INPUT:
            print("out.txt differs from the input file")
            return 1
    print("Demo finished: the emulator is stopped.")
    return 0


def _read_xcom() -> dict:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter(XComModel.dag_id == DAG_ID, XComModel.task_id == "shell", XComModel.key == "return_value")
            .order_by(XComModel.timestamp.desc())
            .first()
        )
        assert row is not None, "no XCom return_value recorded"
        value = row.value
        return json.loads(value) if isinstance(value, str) else value


if __name__ == "__main__":
    sys.exit(main())
