"""The pure array builder and judge: arguments, the SubmitJob request, the prep script, the success rule,
the manifest and the XCom. No AWS; the prep script runs in a real /bin/sh."""

from __future__ import annotations

import configparser
import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from airflow_batch_runner import array_outcome, array_spec, job_spec, layout
from airflow_batch_runner.array_outcome import Child
from airflow_batch_runner.array_spec import ArraySpec
from airflow_batch_runner.job_spec import JobSpec, Resources
from airflow_batch_runner.layout import TaskIdentity
from tests.unit.test_job_spec import assert_valid_for_botocore, totals

BUCKET_PATH = "s3://b/runs/d/r/t/-1/sub/"


def spec(**kwargs: Any) -> JobSpec:
    args: dict[str, Any] = {
        "image": "ubuntu:24.04", "commands": ("true",), "platform": "FARGATE", "resources": Resources(1, 2048),
        "bucket_path": BUCKET_PATH, "has_inputs": True, "output_patterns": ("out.txt", "a b*.csv"),
        "execution_role_arn": "arn:aws:iam::123456789012:role/x", **kwargs,
    }
    return JobSpec(**args)


ARRAY = ArraySpec(size=3, child_inputs=({"own.txt": "a"}, {}, {"own.txt": "c"}))


@pytest.mark.parametrize(
    ("size", "files", "allowed", "message"),
    [
        (1, None, 0, "2 to 10000 children"),
        (10_001, None, 0, "2 to 10000 children"),
        ("many", None, 0, "array_size must be a whole number"),
        (3, [{"a": "x"}, {"b": "y"}], 0, r"array_size \(3\) and the length of array_input_files \(2\) differ"),
        (None, "not a list", 0, "array_input_files must be a list"),
        (None, [{"../x": "y"}, {}], 0, "escapes the working directory"),
        (None, [{"x": 1}, {}], 0, r"array_input_files\[0\]\['x'\] must be a string"),
        (None, [["x"], {}], 0, r"array_input_files\[0\] must be a mapping"),
        (2, None, -1, "allowed_failures must be 0 or more"),
        (2, None, 1.5, "from 0.0 to 1.0"),
        (2, None, "3", "a count"),
    ],
)
def test_bad_arguments_name_the_argument(size: Any, files: Any, allowed: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        array_spec.resolve(size, files, allowed)


def test_the_size_is_the_number_or_the_list_length() -> None:
    assert array_spec.resolve(None, None, 0) is None
    assert array_spec.resolve("  7 ", None, 0) == ArraySpec(7)
    assert array_spec.resolve(None, [{"a": "1"}, {}], 1) == ArraySpec(2, ({"a": "1"}, {}), 1)


@pytest.mark.parametrize(("allowed", "size", "count"), [(0, 10, 0), (3, 10, 3), (0.25, 10, 2), (0.3, 10, 3),
                                                        (1.0, 7, 7), (0.05, 1000, 50)])
def test_allowed_failures_is_a_count_or_a_fraction_rounded_down(allowed: int | float, size: int, count: int) -> None:
    assert array_spec.allowed_count(allowed, size) == count


def test_one_submit_request_for_every_child_valid_for_botocore() -> None:
    identity = TaskIdentity("d", "t", "r")
    request = array_spec.build_submit_request(spec(), ARRAY, identity, "q", 600)
    definition = array_spec.build_job_definition(spec(), ARRAY)
    assert_valid_for_botocore("SubmitJob", request)
    assert_valid_for_botocore("RegisterJobDefinition", definition)
    assert request["arrayProperties"] == {"size": 3}
    assert request["jobDefinition"] == definition["jobDefinitionName"]
    containers = definition["ecsProperties"]["taskProperties"][0]["containers"]
    names = [c["name"] for c in containers]
    assert names == ["prep", "inputs", "child-inputs", "main", "outputs"]
    for previous, container in zip(names, containers[1:], strict=False):
        assert container["dependsOn"] == [{"containerName": previous, "condition": "SUCCESS"}]
    assert [c["essential"] for c in containers] == [False] * 4 + [True]
    assert [c["image"] for c in containers] == ["ubuntu:24.04", job_spec.AWS_CLI_IMAGE, job_spec.AWS_CLI_IMAGE,
                                                 "ubuntu:24.04", job_spec.AWS_CLI_IMAGE]
    overrides = request["ecsPropertiesOverride"]["taskProperties"][0]["containers"]
    # The job as a whole still asks for resources (a Fargate pair); main keeps what the four others leave.
    assert totals(overrides) == (1, 2048)
    by_name = {o["name"]: o for o in overrides}
    assert by_name["child-inputs"]["command"] == [array_spec.STAGE_IN]
    assert by_name["outputs"]["command"] == [array_spec.STAGE_OUT]
    assert by_name["outputs"]["environment"] == [{"name": "HOME", "value": array_spec.SIDECAR_HOME}]
    # A single job of the same spec keeps its own definition: the array's is another content hash.
    assert definition["jobDefinitionName"] != job_spec.definition_name(spec())


def test_without_child_inputs_there_is_no_child_inputs_sidecar() -> None:
    definition = array_spec.build_job_definition(spec(has_inputs=False), ArraySpec(2))
    names = [c["name"] for c in definition["ecsProperties"]["taskProperties"][0]["containers"]]
    assert names == ["prep", "main", "outputs"]


def test_the_prep_script_writes_aliases_naming_the_childs_prefixes(tmp_path: Path) -> None:
    script = array_spec.prep_script(spec(), ARRAY).replace(layout.VOLUME_ROOT, str(tmp_path))
    env = {"PATH": os.environ["PATH"], "AWS_BATCH_JOB_ARRAY_INDEX": "17", "WORKING_DIR": str(tmp_path / "work"),
           "OUTPUT_DIR": str(tmp_path / "output")}
    subprocess.run(["/bin/sh", "-c", script], env=env, check=True)
    parser = configparser.ConfigParser()
    parser.read(tmp_path / ".home/.aws/cli/alias")
    stage_in = shlex.split(parser["toplevel"][array_spec.STAGE_IN])
    stage_out = shlex.split(parser["toplevel"][array_spec.STAGE_OUT])
    assert stage_in == ["s3", "cp", "--recursive", "--only-show-errors", f"{BUCKET_PATH}children/17/inputs/",
                        f"{tmp_path}/work/"]
    assert stage_out == ["s3", "cp", "--recursive", "--only-show-errors", f"{tmp_path}/", f"{BUCKET_PATH}children/17/",
                         "--exclude", "*", "--include", "work/out.txt", "--include", "work/a b*.csv",
                         "--include", "output/*", "--include", "outputs.json"]
    assert (tmp_path / "work").is_dir() and (tmp_path / "output").is_dir()


def test_the_prep_script_fails_without_an_index(tmp_path: Path) -> None:
    script = array_spec.prep_script(spec(), ARRAY).replace(layout.VOLUME_ROOT, str(tmp_path))
    done = subprocess.run(["/bin/sh", "-c", script], env={"PATH": os.environ["PATH"]}, capture_output=True, text=True)
    assert done.returncode == 1 and "AWS_BATCH_JOB_ARRAY_INDEX is not set" in done.stderr


def children(statuses: str) -> list[Child]:
    return [Child(i, "SUCCEEDED" if s == "S" else "FAILED", exit_code=0 if s == "S" else 2,
                  output_files={"o": f"s3://b/{i}"} if s == "S" else {}) for i, s in enumerate(statuses)]


def test_the_success_rule_counts_failed_children_against_allowed_failures() -> None:
    assert array_outcome.judge(ArraySpec(4, allowed_failures=1), children("SSFS")).ok
    assert not array_outcome.judge(ArraySpec(4, allowed_failures=1), children("SFFS")).ok
    # Ended by the task (killed, deadline, RUNNABLE too long): a failure whatever is allowed.
    for why in ("the Airflow task was killed", "it did not finish within 1 h"):
        assert not array_outcome.judge(ArraySpec(4, allowed_failures=4), children("SSSS"), cut_short=why).ok
    # A child the listing did not return (still running at a deadline) is not a success either.
    assert array_outcome.judge(ArraySpec(4), children("SSS")).not_succeeded == 1


def test_an_array_none_of_whose_children_succeeded_fails_whatever_failures_are_allowed() -> None:
    for allowed in (2, 1.0, 5):
        result = array_outcome.judge(ArraySpec(2, allowed_failures=allowed), children("FF"))
        assert not result.ok
        assert "No child succeeded: an array task needs at least one" in array_outcome.failure_report(result, {})
    assert array_outcome.judge(ArraySpec(2, allowed_failures=1.0), children("FS")).ok


def test_the_report_lists_failed_indexes_and_details_the_first_few() -> None:
    result = array_outcome.judge(ArraySpec(10), children("SFFFFFFFSS"))
    report = array_outcome.failure_report(result, {1: ["line a", "line b"]})
    assert "7 of 10 children did not succeed (3 succeeded; allowed failures 0)." in report
    assert "Failed indexes: 1, 2, 3, 4, 5, 6, 7." in report
    assert "Child 1: FAILED, main container exit code 2" in report and "  [1] line b" in report
    assert "Child 6" not in report and "... and 2 more failed children" in report


def test_the_xcom_stays_small_at_ten_thousand_children() -> None:
    many = children("F" * 2000 + "S" * 8000)
    result = array_outcome.judge(ArraySpec(10_000), many)
    xcom = array_outcome.xcom_result("id", "name", "FAILED", BUCKET_PATH, "s3://b/m.json", result, many)
    assert "children" not in xcom and len(xcom["failed_indexes"]) == 1000 and xcom["failed_indexes_truncated"]
    assert len(repr(xcom)) < 10_000
    small = children("SF")
    xcom = array_outcome.xcom_result("id", "n", "FAILED", BUCKET_PATH, "s3://b/m.json",
                                     array_outcome.judge(ArraySpec(2), small), small)
    assert xcom["children"]["0"]["output_files"] == {"o": "s3://b/0"} and xcom["failed_indexes"] == [1]


def test_manifest_items_are_the_succeeded_children_by_default() -> None:
    document = array_outcome.manifest("id", BUCKET_PATH, array_outcome.judge(ArraySpec(3), children("SFS")),
                                   children("SFS"))
    assert [c["index"] for c in array_outcome.manifest_items(document)] == [0, 2]
    assert [c["index"] for c in array_outcome.manifest_items(document, None)] == [0, 1, 2]
    assert document["children"][2]["job_id"] == "id:2"


def test_child_outputs_are_read_from_their_keys() -> None:
    assert layout.child_output("12/work/out.txt") == (12, "out.txt")
    assert layout.child_output("12/output/r/x.csv") == (12, "r/x.csv")
    assert layout.child_output("12/inputs/own.txt") is None
    assert layout.child_output("manifest.json") is None


def test_progress_is_logged_when_the_status_summary_changes() -> None:
    summary = {**dict.fromkeys(array_outcome.STATUSES, 0), "RUNNING": 2, "SUCCEEDED": 1}
    parent: dict[str, Any] = {"jobId": "p", "arrayProperties": {"size": 3, "statusSummary": summary}}
    line = array_outcome.progress_line(parent, None)
    assert line == "Array job p: 2 RUNNING, 1 SUCCEEDED of 3 children"
    assert array_outcome.progress_line(parent, line) is None
    assert array_outcome.progress_line({"jobId": "single"}, None) is None


def overrides_size(request: dict[str, Any]) -> int:
    return len(json.dumps(request["ecsPropertiesOverride"]))


def test_an_environment_that_fits_one_job_but_not_the_array_is_refused_naming_env() -> None:
    """The array's request carries the environment twice (prep and main): fitting the single job's request
    is not enough; the request that is submitted is the one checked."""
    identity = TaskIdentity("d", "t", "r")
    big = spec(env={"BIG": "v" * 4500})
    assert job_spec.fit_to_limits(big, identity, "q", 600) == big  # one job of it fits
    array_request = array_spec.build_submit_request(big, ARRAY, identity, "q", 600)
    assert overrides_size(array_request) > job_spec.MAX_OVERRIDES_CHARS  # the array's does not
    with pytest.raises(ValueError, match=r"^env: "):
        array_spec.fit_to_limits(big, ARRAY, identity, "q", 600)


def test_commands_that_fit_one_job_but_not_the_array_travel_as_a_staged_script() -> None:
    identity = TaskIdentity("d", "t", "r")
    long = spec(env={"MID": "v" * 1500}, commands=tuple(f"echo 'line {i} of a longer script'" for i in range(40)))
    assert job_spec.fit_to_limits(long, identity, "q", 600) == long
    inline = array_spec.build_submit_request(long, ARRAY, identity, "q", 600)
    assert overrides_size(inline) > job_spec.MAX_OVERRIDES_CHARS
    fitted = array_spec.fit_to_limits(long, ARRAY, identity, "q", 600)
    assert fitted.staged_commands
    request = array_spec.build_submit_request(fitted, ARRAY, identity, "q", 600)
    assert overrides_size(request) <= job_spec.MAX_OVERRIDES_CHARS
    assert "line 39" not in json.dumps(request)
    assert_valid_for_botocore("SubmitJob", request)


def test_a_childs_results_file_is_told_apart_from_its_outputs() -> None:
    assert layout.child_results_file(f"7/{layout.OUTPUTS_FILE_KEY}") == 7
    assert layout.child_results_file(f"7/{layout.WORK_OUTPUT_PREFIX}{layout.OUTPUTS_FILE_KEY}") is None
    assert layout.child_output(f"7/{layout.OUTPUTS_FILE_KEY}") is None
    assert layout.child_results_file(f"x/{layout.OUTPUTS_FILE_KEY}") is None


def test_children_whose_results_file_is_malformed_are_named_and_the_rest_are_not() -> None:
    listed = [Child(0, "SUCCEEDED"), Child(1, "SUCCEEDED", results_error="$OUTPUTS_FILE is malformed: x"),
              Child(2, "SUCCEEDED", outputs={"a": 1})]
    problems = array_outcome.results_problems(listed)
    assert problems is not None and "1 of the children wrote" in problems and "(children 1)" in problems
    assert problems.endswith("Child 1: $OUTPUTS_FILE is malformed: x")
    assert array_outcome.results_problems(listed[::2]) is None
    entry = array_outcome.manifest("id", BUCKET_PATH, array_outcome.judge(ArraySpec(3), listed), listed)["children"][2]
    assert (entry["outputs"], entry["metrics"], entry["results_error"]) == ({"a": 1}, [], None)
