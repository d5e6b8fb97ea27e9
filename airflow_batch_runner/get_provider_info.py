"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_batch_runner import __version__


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-batch-runner",
        "name": "AWS Batch runner",
        "description": "Run a task's shell commands in a container of an AWS Batch job, "
        "with input and output files carried through S3 and XCom.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "AWS Batch runner",
                "external-doc-url": "https://docs.aws.amazon.com/batch/",
                "tags": ["aws"],
            }
        ],
    }
