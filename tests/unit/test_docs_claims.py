"""What the docs say about AWS's and Airflow's own behaviour, held against the sources they cite."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from tests.airflow_version import AIRFLOW

DOCS = Path(__file__).resolve().parents[2] / "docs"


def docs_text() -> str:
    return "\n".join(page.read_text(encoding="utf-8") for page in sorted(DOCS.rglob("*.md")))


def section(title: str) -> str:
    text = docs_text()
    body = text.split(f"# {title}\n", 1)[1]
    return " ".join(re.split(r"\n#{1,3} ", body, maxsplit=1)[0].split())


def paragraph(starting: str) -> str:
    text = docs_text()
    start = text.index(starting)
    return " ".join(text[start:text.index("\n\n", start)].split())


def test_timeout_section_says_aws_counts_the_attempt_duration_from_each_attempt_start() -> None:
    # AWS Batch "Job timeouts": the timeout counts from the attempt's startedAt, so RUNNABLE time is unbounded.
    text = section("Timeout and kill")
    assert "even if Airflow is gone" not in text
    assert "AWS stops the job" not in text
    assert "counts it from the start of each attempt" in text
    assert "not the time a job spends SUBMITTED, PENDING or RUNNABLE" in text


def test_known_airflow_issue_names_the_fixed_and_the_open_variants() -> None:
    text = paragraph("Known Airflow issue:")
    assert "apache/airflow#67287) was closed by #68741" in text
    assert "#72716, #71580, fix proposed in #71579) are still open" in text


@pytest.mark.skipif(AIRFLOW.release[:2] != (3, 3), reason=f"the docs speak of Airflow 3.3 (this is {AIRFLOW})")
def test_installed_scheduler_lacks_the_fixes_the_readme_says_it_lacks() -> None:
    # The docs say 3.3.2 has neither #68741 (queued) nor a fix for the running variants: only the
    # scheduled resume-after-defer case is told apart from a state mismatch.
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner

    source = inspect.getsource(SchedulerJobRunner.process_executor_events)
    requeued = source.split("ti_requeued = (", 1)[1].split("\n\n", 1)[0]
    assert "TaskInstanceState.SCHEDULED" in requeued
    assert "TaskInstanceState.QUEUED" not in requeued
    assert "TaskInstanceState.RUNNING" not in requeued
