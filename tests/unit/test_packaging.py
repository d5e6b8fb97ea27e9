"""What pyproject.toml declares agrees with what CI tests (make test-floor) and with the README and CHANGELOG."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.version import Version

from airflow_batch_runner import __version__

REPO = Path(__file__).resolve().parents[2]
FLOORED = ("apache-airflow", "apache-airflow-providers-amazon")


def text(name: str) -> str:
    return (REPO / name).read_text()


def one(pattern: str, name: str) -> str:
    found = re.findall(pattern, text(name), re.MULTILINE)
    assert len(found) == 1, f"{name}: expected one match of {pattern}, got {found}"
    return str(found[0])


def declared_floor(dist: str) -> str:
    return one(rf'^\s*"{re.escape(dist)}>=([0-9.]+)[,"]', "pyproject.toml")


# The compatibility table stands in the README (for PyPI) and on the docs site's compatibility page.
PAGES = {"README.md": "## Compatibility\n", "docs/reference/compatibility.md": "# Compatibility\n"}


def compatibility_table_row(first_cell: str, page: str = "README.md") -> str:
    section = text(page).split(PAGES[page], 1)[1].split("\n## ", 1)[0]
    (row,) = [line for line in section.splitlines() if line.startswith(f"| {first_cell} |")]
    return row


@pytest.mark.parametrize("dist", FLOORED)
def test_make_test_floor_pins_the_declared_floor(dist: str) -> None:
    assert one(rf"^{re.escape(dist)}==([0-9.]+)$", ".ci/floor-constraints.txt") == declared_floor(dist)


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("dist", FLOORED)
def test_the_compatibility_tables_name_the_declared_floor(dist: str, page: str) -> None:
    floor = declared_floor(dist)
    assert f"| **{floor}** (declared `>={floor}" in compatibility_table_row(f"`{dist}`", page)


def test_the_floor_runs_on_the_oldest_python_declared_and_the_classifiers_list_the_tested_ones() -> None:
    oldest = one(r'^requires-python = ">=([0-9.]+)"$', "pyproject.toml")
    classified = re.findall(r'"Programming Language :: Python :: (3\.\d+)"', text("pyproject.toml"))
    assert min(classified, key=Version) == oldest
    assert one(r"^FLOOR_PYTHON \?= .*\b(python3\.\d+)\)$", "Makefile") == f"python{oldest}"
    tested = [cell.strip() for cell in compatibility_table_row("Python").split("|")[2:4]]
    assert tested[0] == oldest
    assert sorted(tested, key=Version) == sorted(classified, key=Version)


def test_the_version_is_the_changelogs_first_entry() -> None:
    version = one(r'^version = "([^"]+)"$', "pyproject.toml")
    assert version == __version__
    assert re.findall(r"^## (\S+)", text("CHANGELOG.md"), re.MULTILINE)[0] == version
