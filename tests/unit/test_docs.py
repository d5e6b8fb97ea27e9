"""The docs site's reference and examples against the code: an argument of the operator without a row in
the argument reference, a row for an argument that does not exist, or a guide's example that no test runs,
fails here (the configuration reference is generated from ``get_provider_info`` when the site is built)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from airflow_batch_runner.operators.batch_runner import BatchRunnerOperator

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
ARGUMENTS = DOCS / "reference" / "arguments.md"
# Arguments of the Amazon provider's AwsBaseOperator that the table documents too (they reach it through kwargs).
AWS_BASE_ARGUMENTS = {"region_name", "aws_conn_id", "verify", "botocore_config"}
INCLUDE = re.compile(r'^--8<-- "([^"]+)"$', re.MULTILINE)


def documented_arguments() -> set[str]:
    """The names in the second column of the argument table."""
    names: set[str] = set()
    for line in ARGUMENTS.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) > 2 and not set(cells[1]) <= set("-: "):
            # A parenthesis after a name is its default: `tags` (`{}`).
            names.update(re.findall(r"`(\w+)`", re.sub(r"\([^)]*\)", "", cells[1])))
    return names


def own_arguments() -> set[str]:
    parameters = inspect.signature(BatchRunnerOperator.__init__).parameters.values()
    return {p.name for p in parameters if p.name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD}


def test_every_argument_of_the_operator_has_a_row_in_the_reference() -> None:
    assert own_arguments() - documented_arguments() == set()


def test_every_row_of_the_reference_is_an_argument_of_the_operator() -> None:
    assert documented_arguments() - own_arguments() - AWS_BASE_ARGUMENTS == set()


def test_the_table_is_read() -> None:
    # So that a change of the table's shape cannot make the two tests above vacuous.
    assert {"compute_environment_arn", "commands", "array_size", "sts_role_session_duration"} <= documented_arguments()


def included_files() -> dict[str, set[str]]:
    """Each file a page includes (``--8<--``) -> the pages that include it."""
    found: dict[str, set[str]] = {}
    for page in DOCS.rglob("*.md"):
        for path in INCLUDE.findall(page.read_text(encoding="utf-8")):
            found.setdefault(path, set()).add(str(page.relative_to(DOCS)))
    return found


def test_the_guides_include_every_example_dag() -> None:
    examples = {f"dags_examples/{path.name}" for path in (ROOT / "dags_examples").glob("*.py")}
    assert examples - set(included_files()) == set()


def test_every_included_example_dag_is_run_by_an_end_to_end_test() -> None:
    tests = "\n".join(path.read_text(encoding="utf-8") for path in (ROOT / "tests" / "e2e").glob("test_*.py"))
    included = [path for path in included_files() if path.startswith("dags_examples/")]
    assert included
    not_run = [path for path in included if f'load_dag("{Path(path).stem}"' not in tests]
    assert not_run == []


def test_the_dag_for_real_aws_parses_into_its_two_tasks() -> None:
    # It names an account's resources, so no test runs it; the chain it shows is the one
    # dags_examples/chain_output_to_input.py runs on the emulator.
    import importlib.util

    spec = importlib.util.spec_from_file_location("batch_runner_on_aws", DOCS / "examples" / "batch_runner_on_aws.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.greet.dag
    assert dag.dag_id == "batch_runner_on_aws"
    assert [task.task_id for task in dag.topological_sort()] == ["greet", "count"]
    assert "docs/examples/batch_runner_on_aws.py" in included_files()
