"""The wait in the worker: one DescribeJobs per interval through the lifecycle's step (the same step the
trigger takes), the main container's lines on the log follower's thread, an array's running children
sampled. No log read delays the job's end."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from airflow_batch_runner import array_run, layout, task_log
from airflow_batch_runner.config import array_log_children, ingestion_allowance
from airflow_batch_runner.hooks.batch_runner import BatchRunnerHook
from airflow_batch_runner.lifecycle import JobWait, Limits, Step
from airflow_batch_runner.operators.child_logs import ChildLogs
from airflow_batch_runner.operators.log_follower import LogFollower
from airflow_batch_runner.task_log import TaskLogger

ShowLines = Callable[[list[str], "str | None"], None]


def wait_for_job(
    hook: BatchRunnerHook,
    job_id: str,
    array_size: int | None,
    interval: float,
    limits: Limits,
    log: TaskLogger,
    show_lines: ShowLines,
    log_stream: str | None = None,
    on_log_stream: Callable[[str], None] | None = None,
) -> tuple[Mapping[str, Any], Step]:
    """Until the job ends or the task ends it (deadline, RUNNABLE too long: then terminated here): the last
    DescribeJobs answer and the step that ended the wait. ``on_log_stream`` hears of each new log stream
    (``log_stream``: the one already known); the main container's lines go to ``show_lines``."""
    follower = LogFollower(hook, interval, ingestion_allowance(), show_lines)
    children = None if not array_size else ChildLogs(
        hook, job_id, array_size, interval, array_log_children(), ingestion_allowance(), log,
    )
    wait = JobWait(limits)
    while True:
        polled = time.time()
        description = hook.describe_jobs([job_id])[job_id]
        reason = array_run.waiting_reason(hook, job_id) if JobWait.wants_child_reason(description) else None
        step = wait.step(description, time.time(), reason)
        for line in step.log:
            log.info(line)
        stream = step.state.log_stream
        if stream:
            if stream != log_stream and on_log_stream is not None:
                on_log_stream(stream)
            log_stream = stream
            follower.follow(stream)
        if step.done:
            break
        if children is not None:
            children.observe(description)
        next_poll = min(polled + interval, limits.deadline or math.inf)
        time.sleep(max(0.0, next_poll - time.time()))
    if step.terminate:
        hook.terminate(job_id, step.terminate)
    cut_short = step.terminate is not None
    problem = follower.finish(step.state.stopped_at, timed_out=cut_short)
    if problem is not None:
        log.warning(
            "Could not read the last lines of job %s's log (%s); all of them are in CloudWatch Logs, "
            "log group %s, stream %s", job_id, problem, layout.LOG_GROUP, log_stream,
        )
    if children is not None:
        task_log.warn_unread_children(log, job_id, children.finish(step.state.stopped_at, timed_out=cut_short))
    return description, step
