"""Jobs that cannot be placed: the statusReason a RUNNABLE job carries for its cause, and the job queue's
``jobStateTimeLimitActions`` that cancel it (AWS Batch user guide, "Jobs stuck in a RUNNABLE status").

A job at the head of a blocked queue shows ``<CODE> - <detail>`` in ``statusReason``; a queue's time-limit
action whose ``reason`` is that code cancels the job after ``maxTimeSeconds`` (600 to 86,400) in RUNNABLE
with it, leaving ``Canceled by JobStateTimeLimit action due to reason: <CODE>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airflow_batch_runner.emulator.batch.resources import ComputeEnvironment
from airflow_batch_runner.emulator.batch.validation import ClientException

MAX_RESOURCE = "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE"
RESOURCE_REQUIREMENT = "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT"
INSUFFICIENT_CAPACITY = "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"
UNDETERMINED = "UNDETERMINED"
MIN_TIME, MAX_TIME = 600, 86_400
CANCELED = "Canceled by JobStateTimeLimit action due to reason: {}"


def check_time_limit_actions(actions: Any) -> list[dict[str, Any]]:
    """CreateJobQueue's and UpdateJobQueue's jobStateTimeLimitActions, as an ECS queue takes them."""
    if actions is None:
        return []
    if not isinstance(actions, list):
        raise ClientException("jobStateTimeLimitActions must be a list")
    checked = []
    for index, action in enumerate(actions):
        where = f"jobStateTimeLimitActions[{index}]"
        if not isinstance(action, Mapping):
            raise ClientException(f"{where} must be an object")
        missing = [f for f in ("reason", "state", "maxTimeSeconds", "action") if f not in action]
        if missing:
            raise ClientException(f"{where} is missing {', '.join(missing)}")
        unknown = set(action) - {"reason", "state", "maxTimeSeconds", "action"}
        if unknown:
            raise ClientException(f"{where} has no field {sorted(unknown)[0]}")
        if action["state"] != "RUNNABLE":
            raise ClientException(f"{where}.state must be RUNNABLE")
        if action["action"] != "CANCEL":
            raise ClientException(f"{where}.action must be CANCEL for a job queue of ECS compute environments")
        seconds = action["maxTimeSeconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not MIN_TIME <= seconds <= MAX_TIME:
            raise ClientException(f"{where}.maxTimeSeconds must be between {MIN_TIME} and {MAX_TIME}")
        if not isinstance(action["reason"], str) or not action["reason"]:
            raise ClientException(f"{where}.reason must be a non-empty string")
        checked.append(dict(action))
    return checked


def blocked_reason(
    queue_enabled: bool, environments: Iterable[ComputeEnvironment | None], platform: str, vcpus: float,
    gpus: int = 0,
) -> str | None:
    """Why a RUNNABLE job cannot be placed, as its statusReason; ``""`` when it just waits (a disabled queue
    schedules nothing and says nothing); None when a compute environment can take it."""
    if not queue_enabled:
        return ""
    usable = [ce for ce in environments
              if ce and ce.state == "ENABLED" and ce.status == "VALID" and ce.orchestration == "ECS"]
    if not usable:
        return f"{UNDETERMINED} - no compute environment of the job queue is ENABLED and VALID"
    same_platform = [ce for ce in usable if ce.platform == platform]
    if not same_platform:
        return (f"{RESOURCE_REQUIREMENT} - the job needs {platform} resources and no compute environment of the "
                "job queue provides them")
    if not any(vcpus <= float((ce.compute_resources or {}).get("maxvCpus", vcpus)) for ce in same_platform):
        return (f"{MAX_RESOURCE} - the job asks for {vcpus:g} vCPUs, more than maxvCpus of every compute "
                "environment of the job queue")
    if gpus and not any(gpus <= ce.gpus.per_instance for ce in same_platform):
        return (f"{RESOURCE_REQUIREMENT} - the job asks for {gpus} GPUs, more than any instance type of the job "
                "queue's compute environments has (within maxvCpus)")
    return None


def code_of(reason: str | None) -> str:
    return (reason or "").split(" - ", 1)[0]


def time_limit(actions: Sequence[Mapping[str, Any]], reason: str | None) -> int | None:
    """maxTimeSeconds of the first CANCEL action for this reason's code, if any."""
    code = code_of(reason)
    for action in actions:
        if code and action["reason"] == code:
            return int(action["maxTimeSeconds"])
    return None
