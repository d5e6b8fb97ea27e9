"""Every ``[batch_runner]`` option of airflow.cfg: declared once here (``get_provider_info`` publishes these
declarations, so ``airflow config list`` shows them), read and checked by one function each.

Airflow reads the declarations while it builds its own configuration: this module imports nothing of
Airflow's at import time (``conf`` is imported where an option is read).
"""

from __future__ import annotations

from typing import Any

from airflow_batch_runner import child_sampling

SECTION = "batch_runner"
# FilterLogEvents allows 5 calls a second per account and Region, for everything in the account: a
# triggerer takes 2 by default (one call covers up to 100 jobs, so 200 jobs' streams a second).
DEFAULT_CALLS_PER_SECOND = 2.0
# How long after its timestamp CloudWatch Logs may make an event readable: the lookback of every read
# and the wait, after a job's end, before its final read; both widen to the largest lag observed.
DEFAULT_INGESTION_ALLOWANCE = 2.0
# While Batch's events flow, the triggerer's DescribeJobs sweep over every deferred job comes this often
# (seconds): it catches lost events and jobs that never sent one.
DEFAULT_EVENTS_SWEEP = 60.0

OPTIONS: dict[str, dict[str, str]] = {
    "logs_calls_per_second": {
        "description": "CloudWatch Logs calls a second that all the deferred tasks of one triggerer process may "
        "make together to follow their containers' logs. FilterLogEvents allows 5 a second per account and "
        "Region, for everything in the account: with several triggerers on one account, give each its share.",
        "version_added": "0.1.0",
        "type": "float",
        "example": "1",
        "default": f"{DEFAULT_CALLS_PER_SECOND:g}",
    },
    "logs_ingestion_allowance": {
        "description": "Seconds CloudWatch Logs may take to make a log line readable: how far each read looks "
        "back, and how long after a job's end its last lines are read.",
        "version_added": "0.1.0",
        "type": "float",
        "example": "5",
        "default": f"{DEFAULT_INGESTION_ALLOWANCE:g}",
    },
    "array_log_children": {
        "description": "How many running children of an array task have their lines followed at once, in the "
        f"worker and in the triggerer: 0 (none) to {child_sampling.MAX_LIMIT}.",
        "version_added": "0.2.0",
        "type": "integer",
        "example": "20",
        "default": str(child_sampling.DEFAULT_LIMIT),
    },
    "events_queue_url": {
        "description": "The SQS queue that an EventBridge rule fills with AWS Batch's events for the job queues "
        "of the deferred tasks (`python -m airflow_batch_runner.event_setup` creates both). When set, the "
        "triggerer learns of a job's changes from the queue and polls DescribeJobs only as a safety net "
        "(events_sweep_interval); empty: it polls every task's poll interval, as without events.",
        "version_added": "0.3.0",
        "type": "string",
        "example": "https://sqs.eu-west-1.amazonaws.com/123456789012/batch-runner-events",
        "default": "",
    },
    "events_sweep_interval": {
        "description": "Seconds between the triggerer's DescribeJobs sweeps over every deferred job while events "
        "flow (they catch lost events and jobs that never sent one). When the queue cannot be read, or a sweep "
        "finds a change no event announced, the triggerer polls every task's poll interval again.",
        "version_added": "0.3.0",
        "type": "float",
        "example": "120",
        "default": f"{DEFAULT_EVENTS_SWEEP:g}",
    },
}


def events_queue_url() -> str | None:
    from airflow.providers.common.compat.sdk import conf

    url = str(conf.get(SECTION, "events_queue_url", fallback="") or "").strip()
    if url and not url.startswith(("https://", "http://")):
        raise ValueError(f"[{SECTION}] events_queue_url must be an SQS queue URL (https://sqs.<region>.amazonaws.com"
                         f"/<account>/<name>); got {url!r}")
    return url or None


def events_sweep_interval() -> float:
    from airflow.providers.common.compat.sdk import conf

    sweep = conf.getfloat(SECTION, "events_sweep_interval", fallback=DEFAULT_EVENTS_SWEEP)
    if not sweep > 0:
        raise ValueError(f"[{SECTION}] events_sweep_interval must be positive; got {sweep}")
    return sweep


def calls_per_second() -> float:
    from airflow.providers.common.compat.sdk import conf

    rate = conf.getfloat(SECTION, "logs_calls_per_second", fallback=DEFAULT_CALLS_PER_SECOND)
    if not rate > 0:
        raise ValueError(f"[{SECTION}] logs_calls_per_second must be positive; got {rate}")
    return rate


def ingestion_allowance() -> float:
    from airflow.providers.common.compat.sdk import conf

    allowance = conf.getfloat(SECTION, "logs_ingestion_allowance", fallback=DEFAULT_INGESTION_ALLOWANCE)
    if allowance < 0:
        raise ValueError(f"[{SECTION}] logs_ingestion_allowance must be 0 or more seconds; got {allowance}")
    return allowance


def array_log_children() -> int:
    """How many running children's lines to follow at once."""
    from airflow.providers.common.compat.sdk import conf

    raw = conf.get(SECTION, "array_log_children", fallback=None)
    if raw is None:
        return child_sampling.DEFAULT_LIMIT
    try:
        value: Any = int(str(raw).strip())
    except ValueError:
        value = raw
    return child_sampling.check_limit(value, f"[{SECTION}] array_log_children")
