"""The Airflow under test, for tests of behaviour only a newer Airflow has (``make test-floor`` runs the oldest)."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from packaging.version import Version

AIRFLOW = Version(Version(version("apache-airflow-core")).base_version)


def below(minimum: str) -> bool:
    return Version(minimum) > AIRFLOW


def needs_airflow(minimum: str, why: str) -> pytest.MarkDecorator:
    """Skip below ``minimum``, saying what only ``minimum`` and newer do."""
    return pytest.mark.skipif(below(minimum), reason=f"only Airflow {minimum}+ {why} (this is {AIRFLOW})")
