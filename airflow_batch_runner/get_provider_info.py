"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_batch_runner import __version__, config

INTEGRATION = "AWS Batch runner"


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-batch-runner",
        "name": INTEGRATION,
        "description": "Run a task's shell commands in a container of an AWS Batch job (ECS on Fargate or EC2), "
        "with input and output files carried through S3 and XCom.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://docs.aws.amazon.com/batch/latest/userguide/multi-container-jobs.html",
                "tags": ["aws"],
            }
        ],
        "operators": [
            {"integration-name": INTEGRATION, "python-modules": ["airflow_batch_runner.operators.batch_runner"]}
        ],
        "hooks": [{"integration-name": INTEGRATION, "python-modules": ["airflow_batch_runner.hooks.batch_runner"]}],
        "triggers": [
            {"integration-name": INTEGRATION, "python-modules": ["airflow_batch_runner.triggers.batch_runner"]}
        ],
        "task-decorators": [
            {"class-name": "airflow_batch_runner.decorators.batch_runner.batch_runner_task", "name": "batch_runner"}
        ],
        "config": {
            config.SECTION: {
                "description": "AWS Batch runner tasks: their containers' logs and array children.",
                "options": config.OPTIONS,
            }
        },
        "extra-links": [
            "airflow.providers.amazon.aws.links.batch.BatchJobDetailsLink",
            "airflow.providers.amazon.aws.links.logs.CloudWatchEventsLink",
        ],
    }
