"""The values a user might compute (``resources``, ``sidecar_resources``, ``retry_strategy``, ``spot_retries``,
``scheduling_priority``, ``allowed_failures`` and the durations) come
from params or from an upstream task like every other argument: rendered strings of numbers count as the numbers,
and a bad rendered value fails the task naming the argument before anything is created in AWS (a real Airflow,
the emulator)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.conftest import AwsWorld, load_dag, run_dag
from tests.e2e.test_array import array_dag
from tests.e2e.test_failures import mutations, task_dag
from tests.e2e.test_options import fair_share_queue

# Params render to strings: "2", "4096", "3", "600", "0.2".
PARAMS = {"cpu": 2, "memory": 4096, "sidecar_cpu": 0.25, "sidecar_memory": 256, "attempts": 3, "wait": 600,
          "stuck": 300, "interval": 0.2, "session": 1800}
FROM_PARAMS: dict[str, Any] = {
    "resources": {"request": {"cpu": "{{ params.cpu }}", "memory": "{{ params.memory }}"}},
    "sidecar_resources": {"request": {"cpu": "{{ params.sidecar_cpu }}", "memory": "{{ params.sidecar_memory }}"}},
    "retry_strategy": {"attempts": "{{ params.attempts }}"},
    "wait_until_completion": "{{ params.wait }}",
    "max_runnable_time": "{{ params.stuck }}",
    "completion_check_interval": "{{ params.interval }}",
    "sts_role_session_duration": "{{ params.session }}",
}


def assert_the_job_took_the_values(aws: AwsWorld, result: Any) -> None:
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    assert aws.read(result.xcom["output_files"]["out.txt"]) == "staged\n"
    job = aws.client("batch").describe_jobs(jobs=[result.xcom["job_id"]])["jobs"][0]
    containers = job["ecsProperties"]["taskProperties"][0]["containers"]
    shares = {c["name"]: {r["type"]: r["value"] for r in c["resourceRequirements"]} for c in containers}
    assert shares == {"inputs": {"VCPU": "0.25", "MEMORY": "256"}, "main": {"VCPU": "1.5", "MEMORY": "3584"},
                      "outputs": {"VCPU": "0.25", "MEMORY": "256"}}
    assert job["retryStrategy"]["attempts"] == 3
    assert job["timeout"]["attemptDurationSeconds"] == 600


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_each_computed_argument_can_come_from_params(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], deferrable: bool
) -> None:
    dag = task_dag(f"computed_from_params_{deferrable}", params=PARAMS, deferrable=deferrable,
                   input_files={"in.txt": "staged\n"}, output_files=["out.txt"], commands=["cp in.txt out.txt"],
                   **FROM_PARAMS)
    assert_the_job_took_the_values(aws, run_dag(dag, capsys))


FROM_XCOM = """
    import datetime
    from airflow.sdk import DAG, task
    from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

    with DAG("computed_from_xcom", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:

        @task(multiple_outputs=True)
        def sizes():
            return {
                "resources": {"request": {"cpu": 2, "memory": 4096}},
                "sidecar_resources": {"request": {"cpu": "0.25", "memory": "256"}},
                "retry_strategy": {"attempts": 3},
                "wait_until_completion": datetime.timedelta(minutes=10),
                "max_runnable_time": 300,
                "completion_check_interval": "0.2",
                "sts_role_session_duration": 1800,
            }

        computed = sizes()
        BatchRunnerOperator(
            task_id="shell",
            compute_environment_arn="{{ var.value.compute_environment_arn }}",
            execution_role_arn="{{ var.value.execution_role_arn }}",
            bucket="{{ var.value.bucket }}",
            input_files={"in.txt": "staged\\n"},
            output_files=["out.txt"],
            commands=["cp in.txt out.txt"],
            resources=computed["resources"],
            sidecar_resources=computed["sidecar_resources"],
            retry_strategy=computed["retry_strategy"],
            wait_until_completion=computed["wait_until_completion"],
            max_runnable_time=computed["max_runnable_time"],
            completion_check_interval=computed["completion_check_interval"],
            sts_role_session_duration=computed["sts_role_session_duration"],
        )
"""


def test_each_computed_argument_can_come_from_an_upstream_task(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_the_job_took_the_values(aws, run_dag(load_dag("computed_from_xcom", FROM_XCOM), capsys))


@pytest.mark.parametrize(
    ("argument", "value", "message"),
    [
        ("resources", {"request": {"cpu": "{{ params.bad }}", "memory": "2048"}},
         "resources must look like .* cpu must be a number and memory a whole number of MiB"),
        ("sidecar_resources", {"request": {"cpu": "0.25", "memory": "{{ params.bad }}"}},
         "sidecar_resources must look like .* cpu must be a number and memory a whole number of MiB"),
        ("retry_strategy", {"attempts": "{{ params.eleven }}"},
         "retry_strategy: attempts must be a whole number from 1 to 10"),
        ("wait_until_completion", "{{ params.bad }}",
         "wait_until_completion must be a number of seconds or a timedelta; got str 'lots'"),
        ("max_runnable_time", "{{ params.zero }}", "max_runnable_time must be positive; got '0'"),
        ("completion_check_interval", "{{ params.zero }}", "completion_check_interval must be positive; got '0'"),
        ("sts_role_session_duration", "{{ params.bad }}",
         "sts_role_session_duration must be a number of seconds or a timedelta; got str 'lots'"),
        ("spot_retries", "{{ params.bad }}", "spot_retries must be a whole number from 0 to 9; got 'lots'"),
        ("spot_retries", "{{ params.ten }}", "spot_retries must be a whole number from 0 to 9; got 10"),
        ("scheduling_priority", "{{ params.bad }}",
         "scheduling_priority must be a whole number from 0 to 9999; got 'lots'"),
        ("scheduling_priority", "{{ params.big }}",
         "scheduling_priority must be a whole number from 0 to 9999; got 10000"),
        ("allowed_failures", "{{ params.bad }}", "allowed_failures must be a count .* got 'lots'"),
        ("allowed_failures", "{{ params.much }}", "allowed_failures as a fraction must be from 0.0 to 1.0; got 1.5"),
    ],
)
def test_a_bad_rendered_value_fails_naming_its_argument_before_anything_is_created(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], argument: str, value: Any, message: str
) -> None:
    dag = task_dag(f"computed_bad_{argument}", params={"bad": "lots", "eleven": 11, "zero": 0, "ten": 10, "big": 10000,
                                                              "much": 1.5},
                   input_files={"in.txt": "x"}, commands=["true"], **{argument: value})  # parses: known only rendered
    before, batch_before = mutations(aws), aws.calls()
    result = run_dag(dag, capsys)
    assert result.state == "failed"
    assert re.search(message, result.output), result.output[-3000:]
    assert mutations(aws) == before
    batch = aws.calls()
    for operation in ("SubmitJob", "RegisterJobDefinition"):
        assert batch.get(operation, 0) == batch_before.get(operation, 0)


def test_a_bad_value_from_an_upstream_task_fails_naming_its_argument_before_anything_is_created(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    source = FROM_XCOM.replace('"computed_from_xcom"', '"computed_bad_xcom"').replace(
        '"resources": {"request": {"cpu": 2, "memory": 4096}}', '"resources": {"request": {"cpu": 0, "memory": 4096}}')
    before, batch_before = mutations(aws), aws.calls()
    result = run_dag(load_dag("computed_bad_xcom", source), capsys)
    assert result.state == "failed"
    assert "resources: cpu and memory must be positive; got cpu=0 memory=4096" in result.output, result.output[-3000:]
    assert mutations(aws) == before
    batch = aws.calls()
    assert (batch.get("SubmitJob", 0), batch.get("RegisterJobDefinition", 0)) == (
        batch_before.get("SubmitJob", 0), batch_before.get("RegisterJobDefinition", 0))


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_spot_retries_scheduling_priority_and_allowed_failures_come_from_params(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], deferrable: bool
) -> None:
    queue = fair_share_queue(aws, f"computed-fair-{deferrable}")
    dag = array_dag(f"computed_ints_{deferrable}", 2, deferrable=deferrable, job_queue_arn=queue,
                    share_identifier="blue", params={"spot": 2, "priority": 7, "allowed": 1},
                    spot_retries="{{ params.spot }}", scheduling_priority="{{ params.priority }}",
                    allowed_failures="{{ params.allowed }}",
                    commands=['[ "$AWS_BATCH_JOB_ARRAY_INDEX" != 1 ] || exit 7', "cp shared.txt out.txt"])
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]  # one failed child, one allowed
    assert result.xcom is not None
    assert (result.xcom["failed"], result.xcom["allowed_failures"]) == (1, 1)
    job = aws.client("batch").describe_jobs(jobs=[result.xcom["job_id"]])["jobs"][0]
    assert job["retryStrategy"]["attempts"] == 3 and job["retryStrategy"]["evaluateOnExit"]
    assert job["schedulingPriority"] == 7
