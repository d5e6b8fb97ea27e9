"""The reference page's examples and the chain, run by a real Airflow against the emulator."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import AwsWorld, link_data, load_dag, run_dag


def test_run_container_echoes_hello_world_into_the_task_log(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    dag = load_dag("run_container")
    result = run_dag(dag, capsys)
    assert result.state == "success", result.output[-3000:]
    assert "[main] Hello World" in result.output
    assert result.xcom is not None
    assert result.xcom["status"] == "SUCCEEDED"
    assert result.xcom["exit_code"] == 0
    assert result.xcom["container_exit_code"] == 0
    assert result.xcom["output_files"] == {}
    assert result.xcom["bucket_path"] is None
    # The extra links' data, persisted while the job ran.
    links = link_data(dag.dag_id, result.run_id)
    assert links["batch_job_details"]["job_id"] == result.xcom["job_id"]
    assert links["batch_job_details"]["region_name"] == "us-east-1"
    assert links["cloudwatch_events"]["awslogs_group"] == "/aws/batch/job"
    assert links["cloudwatch_events"]["awslogs_stream_name"].endswith(aws.main_log_stream(result.xcom["job_id"]))


def test_container_with_input_files_returns_the_output_file(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    content = "line one\nline two with {{ braces }}\n"
    result = run_dag(load_dag("container_with_input_files"), capsys, conf={"file": content})
    assert result.state == "success", result.output[-3000:]
    xcom = result.xcom
    assert xcom is not None
    assert set(xcom) == {"job_id", "job_name", "status", "exit_code", "container_exit_code", "bucket_path",
                         "working_dir", "output_dir", "output_files", "queued_seconds", "running_seconds",
                         "attempts", "attempt_details", "vcpus", "memory_mib", "vcpu_seconds", "gib_seconds",
                         "outputs", "metrics"}
    assert xcom["bucket_path"].startswith(f"s3://{aws.bucket}/airflow-batch-runner/container_with_input_files/")
    assert list(xcom["output_files"]) == ["out.txt"]
    assert xcom["output_files"]["out.txt"].startswith(xcom["bucket_path"])
    assert aws.read(xcom["output_files"]["out.txt"]) == content
    jobs = aws.client("batch").describe_jobs(jobs=[xcom["job_id"]])["jobs"]
    assert jobs[0]["status"] == "SUCCEEDED"
    assert jobs[0]["jobName"] == xcom["job_name"]


def test_an_output_file_passes_on_as_the_next_tasks_input(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    dag = load_dag("chain_output_to_input")
    before = aws.calls("s3")
    result = run_dag(dag, capsys, conf={"words": "pear fig apple"}, task_id="consume")
    after = aws.calls("s3")
    assert result.state == "success", result.output[-3000:]
    assert result.xcom is not None
    # The stats count calls by operation, not by caller: the tasks' calls and their jobs' sidecars' are one count.
    # consume staged words.txt with a server-side copy; the one download is its inputs sidecar bringing the staged
    # copy into the container, so the task itself downloaded nothing.
    assert after.get("CopyObject", 0) - before.get("CopyObject", 0) == 1
    assert after.get("GetObject", 0) - before.get("GetObject", 0) == 1
    assert aws.read(result.xcom["output_files"]["sorted.txt"]) == "apple\nfig\npear\n"
    assert "[main] apple" in result.output


def test_fan_out_maps_one_job_per_item_with_its_own_xcom(aws: AwsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    dag = load_dag("fan_out")
    capsys.readouterr()
    dagrun = dag.test(run_conf={"names": ["ann", "bob"]})
    output = capsys.readouterr().out
    assert str(dagrun.state) == "success", output[-3000:]
    with create_session() as session:
        rows = (
            session.query(XComModel)
            .filter(XComModel.dag_id == "fan_out", XComModel.run_id == dagrun.run_id, XComModel.task_id == "greet",
                    XComModel.key == "return_value")
            .order_by(XComModel.map_index)
            .all()
        )
        values = [(row.map_index, row.value) for row in rows]
    assert [index for index, _ in values] == [0, 1]
    contents = [aws.read(value["output_files"]["greeting.txt"]) for _, value in values]
    assert contents == ["hello ann\n", "hello bob\n"]
    assert len({value["bucket_path"] for _, value in values}) == 2
    assert len({value["job_id"] for _, value in values}) == 2
