"""Install like a user: build the wheel, pip install it into a fresh virtualenv, ask that venv's Airflow.

Nothing here imports the package from the source tree: every check runs in a subprocess of a new
virtualenv (its own Airflow home and SQLite database) into which only the built wheel was installed.
The dependencies are pinned to what the development venv has (a constraints file from its
``pip freeze``), so pip does no resolution work and the versions are the tested ones.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.system, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "airflow_batch_runner"
DIST_NAME = "airflow-batch-runner"
# Not part of the source tree: never copied into the build.
BUILD_IGNORE = shutil.ignore_patterns(
    ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"
)
# A DAG file that must show up as an import error: proves the import-error check is not vacuous.
CANARY = "canary_broken_dag.py"
CANARY_SOURCE = "from airflow.sdk import DAG\n\nimport airflow_batch_runner_no_such_module  # noqa: F401\n"


def example_dag_ids(examples: list[Path]) -> set[str]:
    """The dag_id each example file declares: every file must declare one."""
    ids = set()
    for path in examples:
        found = re.findall(r"""dag_id\s*=\s*["']([^"']+)["']""", path.read_text())
        assert found, f"{path.name} declares no dag_id"
        ids.update(found)
    return ids


def project_version() -> str:
    found = re.search(r'^version\s*=\s*"([^"]+)"', (REPO / "pyproject.toml").read_text(), re.MULTILINE)
    assert found, "pyproject.toml has no [project] version"
    return found.group(1)


def airflow_floor() -> str:
    found = re.search(r'^\s*"apache-airflow>=([0-9.]+),<4"', (REPO / "pyproject.toml").read_text(), re.MULTILINE)
    assert found, "pyproject.toml declares no apache-airflow floor"
    return found.group(1)


@dataclass
class Installed:
    wheel: Path
    venv: Path
    home: Path
    durations: dict[str, float] = field(default_factory=dict)

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    @property
    def dags_folder(self) -> Path:
        return self.home / "dags"

    def env(self) -> dict[str, str]:
        """The user's shell with only this venv active: no Airflow setting or Python path of the test session."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "PYTHON", "VIRTUAL_ENV", "_AIRFLOW"))
        }
        env.update(
            PATH=f"{self.bin}{os.pathsep}{env.get('PATH', '')}",
            VIRTUAL_ENV=str(self.venv),
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__DAGS_FOLDER=str(self.dags_folder),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            PYTHONWARNINGS="ignore",
        )
        return env

    def run(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        proc = subprocess.run(
            list(args), env=self.env(), cwd=self.home, capture_output=True, text=True, timeout=timeout
        )
        label = " ".join([Path(args[0]).name, *(a for a in args[1:3] if "\n" not in a)])
        self.durations[label] = self.durations.get(label, 0.0) + time.monotonic() - started
        if check:
            assert proc.returncode == 0, (
                f"{args} exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
            )
        return proc

    def airflow(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(str(self.bin / "airflow"), *args, check=check)


def _timed(durations: dict[str, float], name: str, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    proc = subprocess.run(list(args), capture_output=True, text=True, **kwargs)
    durations[name] = time.monotonic() - started
    assert proc.returncode == 0, f"{name} exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def _constraints(path: Path) -> Path:
    """The development venv's versions, as pip constraints (the project itself and URL pins left out)."""
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"], capture_output=True, text=True, check=True
    ).stdout
    lines = [
        line for line in frozen.splitlines()
        if line and not line.startswith(("-e", "#")) and " @ " not in line
        and not re.match(rf"^{DIST_NAME.replace('-', '[-_]')}==", line, re.IGNORECASE)
    ]
    assert any(line.lower().startswith("apache-airflow==") for line in lines), "the test venv has no apache-airflow"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """Build the wheel from a clean copy of the source tree, and install it into a new venv."""
    root = tmp_path_factory.mktemp("install")
    durations: dict[str, float] = {}
    src = root / "src"
    shutil.copytree(REPO, src, ignore=BUILD_IGNORE)
    dist = root / "dist"
    _timed(
        durations, "python -m build --wheel",
        sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(src),
        cwd=root, timeout=300,
    )
    wheels = list(dist.glob("*.whl"))
    assert len(wheels) == 1, f"expected one wheel, got {wheels}"

    venv = root / "venv"
    _timed(durations, "python -m venv", sys.executable, "-m", "venv", str(venv), cwd=root, timeout=120)
    constraints = _constraints(root / "constraints.txt")
    _timed(
        durations, "pip install wheel",
        str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
        "--constraint", str(constraints), str(wheels[0]),
        cwd=root, timeout=480,
    )
    home = root / "airflow-home"
    (home / "dags").mkdir(parents=True)
    result = Installed(wheel=wheels[0], venv=venv, home=home, durations=durations)
    yield result
    print("\ninstall test timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.durations.items()))


def test_wheel_holds_the_package_and_its_metadata_only(installed: Installed) -> None:
    version = project_version()
    assert installed.wheel.name == f"{PACKAGE}-{version}-py3-none-any.whl"
    dist_info = f"{PACKAGE}-{version}.dist-info/"
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = wheel.namelist()
        entry_points = wheel.read(f"{dist_info}entry_points.txt").decode()
        metadata = wheel.read(f"{dist_info}METADATA").decode()
    strays = [n for n in names if not (n.startswith(f"{PACKAGE}/") or n.startswith(dist_info))]
    assert not strays, f"the wheel holds files outside the package: {strays}"
    tops = {n.split("/", 1)[0] for n in names}
    for unwanted in ("tests", "dags_examples", "bench", "scripts"):
        assert unwanted not in tops
        assert not any(f"/{unwanted}/" in n for n in names), f"{unwanted}/ inside the package"
    for module in (
        "__init__.py", "get_provider_info.py", "job_spec.py", "outcome.py",
        "operators/batch_runner.py", "hooks/batch_runner.py", "triggers/batch_runner.py", "triggers/poller.py",
    ):
        assert f"{PACKAGE}/{module}" in names, f"{module} missing from the wheel"
    assert re.search(
        r"^\[apache_airflow_provider\]\s*\nprovider_info\s*=\s*airflow_batch_runner\.get_provider_info:get_provider_info",
        entry_points, re.MULTILINE,
    ), entry_points
    assert f"\nVersion: {version}\n" in metadata
    assert f"\nRequires-Dist: apache-airflow<4,>={airflow_floor()}\n" in metadata, "apache-airflow floor missing"
    assert "\nLicense-Expression: Apache-2.0\n" in metadata
    assert f"{dist_info}licenses/LICENSE" in names


def test_airflow_providers_list_shows_the_provider_and_its_version(installed: Installed) -> None:
    out = installed.airflow("providers", "list").stdout
    rows = [line for line in out.splitlines() if line.split("|", 1)[0].strip() == DIST_NAME]
    assert len(rows) == 1, f"no single {DIST_NAME} row in `airflow providers list`:\n{out}"
    columns = [c.strip() for c in rows[0].split("|")]
    assert columns[-1] == project_version(), rows[0]
    assert "AWS Batch" in columns[1]


PROBE = textwrap.dedent(
    """
    import importlib, json, sys
    from importlib.metadata import distribution, entry_points

    from airflow.providers_manager import ProvidersManager

    import airflow_batch_runner
    from airflow_batch_runner.get_provider_info import get_provider_info

    def resolves(path):
        module, _, name = path.rpartition(".")
        return hasattr(importlib.import_module(module), name)

    info = get_provider_info()
    modules = {kind: [m for e in info.get(kind, []) for m in e["python-modules"]]
               for kind in ("operators", "hooks", "triggers")}
    classes = {kind: [n for m in ms for n in dir(importlib.import_module(m)) if n.startswith("BatchRunner")]
               for kind, ms in modules.items()}
    pm = ProvidersManager()
    provider = pm.providers.get("airflow-batch-runner")
    print("PROBE " + json.dumps({
        "package_file": airflow_batch_runner.__file__,
        "prefix": sys.prefix,
        "dist_version": distribution("airflow-batch-runner").version,
        "entry_points": [e.value for e in entry_points(group="apache_airflow_provider")
                         if e.value.startswith("airflow_batch_runner")],
        "info": info,
        "classes": classes,
        "links_resolve": {link: resolves(link) for link in info.get("extra-links", [])},
        "manager_version": provider.version if provider else None,
        "manager_triggers": sorted(t.trigger_class_name for t in pm.trigger
                                   if t.package_name == "airflow-batch-runner"),
        "manager_links": sorted(set(info.get("extra-links", [])) & set(pm.extra_links_class_names)),
    }))
    """
)


def test_get_provider_info_in_the_fresh_venv(installed: Installed) -> None:
    out = installed.run(str(installed.bin / "python"), "-c", PROBE).stdout
    (line,) = [line for line in out.splitlines() if line.startswith("PROBE ")]
    probe = json.loads(line[len("PROBE "):])
    version = project_version()

    # The package came from the wheel, not from the source tree.
    assert Path(probe["package_file"]).is_relative_to(installed.venv), probe["package_file"]
    assert Path(probe["prefix"]) == installed.venv
    assert probe["dist_version"] == version
    assert probe["entry_points"] == ["airflow_batch_runner.get_provider_info:get_provider_info"]

    info = probe["info"]
    assert info["package-name"] == DIST_NAME
    assert info["versions"] == [version]
    assert info["operators"] == [
        {"integration-name": "AWS Batch runner", "python-modules": ["airflow_batch_runner.operators.batch_runner"]}
    ]
    assert info["hooks"] == [
        {"integration-name": "AWS Batch runner", "python-modules": ["airflow_batch_runner.hooks.batch_runner"]}
    ]
    assert info["triggers"] == [
        {"integration-name": "AWS Batch runner", "python-modules": ["airflow_batch_runner.triggers.batch_runner"]}
    ]
    assert "BatchRunnerOperator" in probe["classes"]["operators"]
    assert "BatchRunnerHook" in probe["classes"]["hooks"]
    assert "BatchRunnerTrigger" in probe["classes"]["triggers"]
    assert sorted(info["extra-links"]) == [
        "airflow.providers.amazon.aws.links.batch.BatchJobDetailsLink",
        "airflow.providers.amazon.aws.links.logs.CloudWatchEventsLink",
    ]
    assert all(probe["links_resolve"].values()), probe["links_resolve"]
    (integration,) = info["integrations"]
    assert integration["integration-name"] == "AWS Batch runner"
    assert integration["external-doc-url"].startswith("https://docs.aws.amazon.com/batch/")

    # And Airflow's own providers manager sees the same.
    assert probe["manager_version"] == version
    assert probe["manager_triggers"] == ["airflow_batch_runner.triggers.batch_runner"]
    assert probe["manager_links"] == sorted(info["extra-links"])


def _json_output(proc: subprocess.CompletedProcess[str]) -> Any:
    """The JSON document of an ``-o json`` command (Airflow may print warnings on stdout before it)."""
    for index, line in enumerate(proc.stdout.splitlines()):
        if line.startswith(("[", "{")):
            return json.loads("\n".join(proc.stdout.splitlines()[index:]))
    raise AssertionError(f"no JSON in the output:\n{proc.stdout}\n{proc.stderr}")


def test_example_dags_import_cleanly_from_any_dags_folder(installed: Installed) -> None:
    examples = sorted((REPO / "dags_examples").glob("*.py"))
    assert examples, "dags_examples/ has no DAG file"
    expected = example_dag_ids(examples)
    assert {"run_container", "container_with_input_files", "chain_output_to_input"} <= expected
    for path in examples:
        shutil.copy(path, installed.dags_folder / path.name)
    (installed.dags_folder / CANARY).write_text(CANARY_SOURCE)

    installed.airflow("db", "migrate")
    # Parse the DAGs folder as the DAG processor would, into the database.
    installed.airflow("dags", "reserialize")

    listed_errors = installed.airflow("dags", "list-import-errors", "-o", "json", check=False)
    assert listed_errors.returncode == 1, "list-import-errors exits 1 when there are errors (the canary's)"
    errors = _json_output(listed_errors)
    by_file = {Path(e["filepath"]).name: e["error"] for e in errors}
    assert set(by_file) == {CANARY}, f"import errors beyond the canary: {json.dumps(by_file, indent=1)}"
    assert "airflow_batch_runner_no_such_module" in by_file[CANARY]

    dags = _json_output(installed.airflow("dags", "list", "-o", "json"))
    listed = {d["dag_id"]: Path(d["fileloc"]) for d in dags}
    assert set(listed) == expected, listed
    for fileloc in listed.values():
        assert fileloc.parent == installed.dags_folder

    # The same without the database: what a fresh parse of the folder says.
    local_errors = installed.airflow("dags", "list-import-errors", "--local", "-o", "json", check=False)
    assert local_errors.returncode == 1
    assert {Path(e["filepath"]).name for e in _json_output(local_errors)} == {CANARY}
    local_dags = _json_output(installed.airflow("dags", "list", "--local", "-o", "json"))
    assert {d["dag_id"] for d in local_dags} == expected
