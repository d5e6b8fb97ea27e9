"""Run an Airflow task's shell commands in a container of an AWS Batch job."""

__version__ = "0.2.0"
