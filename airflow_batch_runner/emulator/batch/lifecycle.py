"""How a job moves through its statuses: SUBMITTED -> PENDING -> RUNNABLE -> STARTING -> RUNNING ->
SUCCEEDED or FAILED, its attempts, retries, timeouts, interruptions, and an array parent following its
children. Where a RUNNABLE job goes is ``capacity.py``'s; the processes are ``runner.py``'s.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from airflow_batch_runner.emulator.batch import dependencies as deps
from airflow_batch_runner.emulator.batch import ecs_side, events, retries, stuck, task_settings, volumes
from airflow_batch_runner.emulator.batch import validation as v
from airflow_batch_runner.emulator.batch.capacity import Capacity
from airflow_batch_runner.emulator.batch.environments import Infrastructure
from airflow_batch_runner.emulator.batch.jobs import ACTIVE_STATUSES, Attempt, ContainerResult, Job, TaskResult
from airflow_batch_runner.emulator.batch.resources import ACCOUNT_ID, ComputeEnvironment, now_ms

TIMEOUT_REASON = "Job attempt duration exceeded timeout"


class Scheduler(Protocol):
    """What the jobs need from the runner: timers and container processes."""

    def call_later(self, delay: float, fn: Callable[..., None], *args: Any) -> None: ...

    def start_task(self, job: Job, on_stopped: Callable[[Job, TaskResult], None]) -> None: ...

    def stop_task(self, job: Job) -> None: ...


class Lifecycle(Capacity):
    """The jobs' steps, driven by the scheduler's timers and the runner's task ends."""

    scheduler: Scheduler

    def __init__(self, infrastructure: Infrastructure) -> None:
        super().__init__(infrastructure)
        self.jobs: dict[str, Job] = {}
        # Job id -> the jobs waiting in PENDING for it to end.
        self.dependents: dict[str, list[Job]] = {}
        # Injected Spot-style interruptions; the app shares one set between its regions.
        self.interruptions = retries.Interruptions()
        # Scales jobStateTimeLimitActions' maxTimeSeconds (at least 600 s on AWS), for tests only.
        self.time_limit_scale = 1.0
        # Batch's EventBridge events; the app shares one between its regions.
        self.events = events.BatchEvents()

    def _announce(self, job: Job) -> None:
        """A ``Batch Job State Change`` event when the job's status changed since the last one (a job
        just submitted has none: AWS sends nothing for the submission itself)."""
        if job.status == job.announced:
            return
        job.announced = job.status
        self.events.publish(job.region, events.STATE_CHANGE, job.describe(), [job.arn], self.scheduler.call_later)

    def _later(self, job: Job, expected: str, delay: float | None = None) -> None:
        self.scheduler.call_later(self.step_delay if delay is None else delay, self._advance, job, expected)

    def _advance(self, job: Job, expected: str) -> None:
        """One step of SUBMITTED -> PENDING -> RUNNABLE -> STARTING; RUNNING starts the task."""
        with self.lock:
            if job.status != expected:
                return  # terminated or cancelled meanwhile
            if expected == "SUBMITTED":
                job.status = "PENDING"
                self._announce(job)
                self._child_changed(job)
                self._later(job, "PENDING")
            elif expected == "PENDING":
                state = deps.verdict(job)
                if state == "failed":
                    self._finish(job, "FAILED", deps.DEPENDENCY_FAILED)
                elif state == "wait":
                    job.blocked = True  # woken by _finish of the job it waits on
                else:
                    job.status = "RUNNABLE"
                    self._announce(job)
                    self._child_changed(job)
                    self._later(job, "RUNNABLE")
            elif expected == "RUNNABLE":
                reason = self._placement_blocker(job)
                if reason is not None:
                    self._blocked(job, reason)
                    return
                if job.blocked_since is not None:  # no longer blocked: it waits its turn, with no reason
                    job.blocked_since, job.status_reason = None, None
                self.waiting[job.job_id] = job
                self._wake()
            elif expected == "STARTING":
                attempt = job.attempts[-1]
                tags_failure = v.propagated_tags_failure(job.tags, job.propagate_tags)
                if tags_failure:  # the task cannot be created: the job FAILED, no retry
                    job.stop_reason = tags_failure
                    self._end_attempt(job, TaskResult([], tags_failure))
                    return
                failure = self._read_secrets(job, attempt)
                if failure:  # ECS stops the task before any container starts
                    self._end_attempt(job, TaskResult([], failure))
                    return
                # On AWS startedAt, and the attempt's timeout, count from STARTING -> RUNNING.
                job.status = "RUNNING"
                attempt.started_at = now_ms()
                if job.started_at is None:
                    job.started_at = attempt.started_at
                attempt.ecs_task.running()
                self.infrastructure.task_changed(job.region, attempt.ecs_task)
                self._announce(job)
                self._child_changed(job)
                seconds = (job.timeout or {}).get("attemptDurationSeconds")
                if seconds:
                    self.scheduler.call_later(float(seconds), self._attempt_timeout, job, attempt)
                self.scheduler.start_task(job, self._task_stopped)
                interruption = self.interruptions.for_attempt(job.name, len(job.attempts))
                if interruption is not None:
                    self.scheduler.call_later(
                        interruption.after_seconds, self._interrupt, job, attempt, interruption.status_reason
                    )

    def _read_secrets(self, job: Job, attempt: Attempt) -> str | None:
        """The task's EFS file systems, each container's ``secrets`` from Secrets Manager or SSM and its private
        registry's credentials, as the ECS agent reads them at task start; the task's stop reason when one cannot be
        read."""
        failure = volumes.start_failure((job.ecs_task or job.container or {}).get("volumes") or [],
                                        lambda fs: self.infrastructure.file_system_exists(job.region, fs))
        if failure:
            return failure
        for spec in job.containers:
            failure = task_settings.registry_failure(
                spec, lambda ref: self.infrastructure.registry_credentials(job.region, ref))
            if failure:
                return failure
            values = {}
            for secret in spec.get("secrets") or []:
                value = self.infrastructure.secret_value(job.region, str(secret.get("valueFrom", "")))
                if value is None:
                    return (
                        "ResourceInitializationError: unable to pull secrets or registry auth: unable to retrieve "
                        f"secret {secret.get('valueFrom')!r} for container {spec['name']!r}: not found"
                    )
                values[str(secret["name"])] = value
            attempt.secrets[spec["name"]] = values
        return None

    def _blocked(self, job: Job, reason: str) -> None:
        """A job that cannot be placed stays RUNNABLE with its cause as statusReason, until something changes or
        a time-limit action of its queue for that cause cancels it."""
        now = time.monotonic()
        news = bool(reason) and reason != job.status_reason
        if reason and stuck.code_of(reason) != stuck.code_of(job.status_reason):
            job.blocked_since = now
        if reason:
            job.status_reason = reason
        if news:  # the job blocks its queue for a new reason: AWS says so on EventBridge
            self.events.publish(job.region, events.QUEUE_BLOCKED, job.describe(), [job.arn, job.queue.arn],
                                self.scheduler.call_later)
        limit = stuck.time_limit(job.queue.job_state_time_limit_actions, reason)
        if limit is not None and job.blocked_since is not None and \
                now - job.blocked_since >= limit * self.time_limit_scale:
            job.is_cancelled = True
            self._finish(job, "FAILED", stuck.CANCELED.format(stuck.code_of(reason)))
            return
        self._later(job, "RUNNABLE", max(self.step_delay, 0.5))

    def _start_attempt(self, job: Job, ce: ComputeEnvironment) -> None:
        """Placed on ``ce``: the job is STARTING, with a new attempt."""
        job.blocked_since, job.status_reason = None, None
        job.compute_environment = ce.name
        job.status = "STARTING"
        job.stop_reason = None
        attempt = Attempt(task_id=uuid.uuid4().hex, started_at=now_ms())
        if ce.platform == "FARGATE":
            address = uuid.uuid4().int
            attempt.network_interfaces = [{
                "attachmentId": str(uuid.uuid4()),
                "privateIpv4Address": f"10.0.{address % 256}.{(address >> 8) % 254 + 1}",
            }]
        else:
            cluster = ce.ecs_cluster_arn.rsplit("/", 1)[-1]
            attempt.container_instance_arn = (
                f"arn:aws:ecs:{job.region}:{ACCOUNT_ID}:container-instance/{cluster}/{uuid.uuid4().hex}"
            )
        cluster_name = ce.ecs_cluster_arn.rsplit("/", 1)[-1]
        attempt.task_arn = f"arn:aws:ecs:{job.region}:{ACCOUNT_ID}:task/{cluster_name}/{attempt.task_id}"
        spot = (ce.compute_resources or {}).get("type") in ("SPOT", "FARGATE_SPOT")
        attempt.ecs_task = ecs_side.new_task(
            attempt.task_arn, ce.ecs_cluster_arn, ce.platform, [c["name"] for c in job.containers],
            [str(c.get("image", "")) for c in job.containers], attempt.container_instance_arn,
            attempt.network_interfaces, spot,
        )
        if job.propagate_tags:  # SubmitJob's propagateTags: the job's and its definition's tags go to the task
            attempt.ecs_task.tags = [{"key": key, "value": value} for key, value in job.tags.items()]
        request = ecs_side.task_definition_request(job.definition, ce.platform == "FARGATE", job.containers)
        self.infrastructure.run_task(job.region, job.definition.arn, request, attempt.ecs_task)
        job.attempts.append(attempt)
        self._announce(job)
        self._child_changed(job)
        self._later(job, "STARTING")

    def _attempt_timeout(self, job: Job, attempt: Attempt) -> None:
        with self.lock:
            if job.current_attempt is attempt and job.status in ("STARTING", "RUNNING"):
                job.stop_reason = TIMEOUT_REASON
                if job.status == "STARTING":
                    self._end_attempt(job, TaskResult([], TIMEOUT_REASON))
                else:
                    self.scheduler.stop_task(job)

    def _interrupt(self, job: Job, attempt: Attempt, reason: str) -> None:
        """The attempt's host goes away (a Spot reclaim): it stops with ``reason`` and no exit codes."""
        with self.lock:
            if job.current_attempt is attempt and job.status == "RUNNING" and job.stop_reason is None:
                job.interrupt_reason = reason
                self.scheduler.stop_task(job)

    def _task_stopped(self, job: Job, result: TaskResult) -> None:
        with self.lock:
            self._end_attempt(job, result)

    def _end_attempt(self, job: Job, result: TaskResult) -> None:
        self._release(job)
        attempt = job.current_attempt
        assert attempt is not None
        attempt.stopped_at = now_ms()
        attempt.containers = result.containers
        reason = job.stop_reason or job.interrupt_reason or result.status_reason
        if job.interrupt_reason and not job.stop_reason:
            # The host is gone: ECS reports no exit code for the containers it ran.
            attempt.containers = [ContainerResult(c.name, None, None, c.log_stream_name) for c in result.containers]
        interrupted, job.interrupt_reason = bool(job.interrupt_reason), None
        attempt.status_reason = reason
        self._task_stopped_in_ecs(job, attempt, interrupted, bool(result.containers))
        essential = {c["name"] for c in job.containers if c.get("essential", True)}
        ok = job.stop_reason is None and not interrupted and all(
            c.exit_code == 0 for c in result.containers if c.name in essential
        ) and {c.name for c in result.containers} >= essential
        if ok:
            self._finish(job, "SUCCEEDED", reason)
        elif job.stop_reason is None and len(job.attempts) < job.max_attempts and retries.retry_action(
            job.evaluate_on_exit, reason, [retries.Exit(c.reason, c.exit_code) for c in attempt.containers]
        ) == "RETRY":
            job.status, job.status_reason = "RUNNABLE", reason
            job.announced = None  # a new attempt waits: RUNNABLE again is news
            self._announce(job)
            self._child_changed(job)
            self._later(job, "RUNNABLE")
        else:
            self._finish(job, "FAILED", reason)

    def _task_stopped_in_ecs(self, job: Job, attempt: Attempt, interrupted: bool, ran: bool) -> None:
        """The attempt's ECS task STOPPED, with the stopCode ECS gives: Batch stopped it (TerminateJob, the
        attempt's timeout), its host went away, it never started, or an essential container exited."""
        if job.stop_reason is not None:
            code = "UserInitiated"
        elif interrupted:  # the emulator's injected interruptions are Spot reclaims
            code = "SpotInterruption"
        else:
            code = "EssentialContainerExited" if ran else "TaskFailedToStart"
        results = {c.name: (c.exit_code, c.reason) for c in attempt.containers}
        attempt.ecs_task.stopped(attempt.status_reason, code, results)
        self.infrastructure.task_changed(job.region, attempt.ecs_task)

    def _finish(self, job: Job, status: str, reason: str | None) -> None:
        job.status = status
        job.status_reason = reason
        job.stopped_at = now_ms()
        job.blocked = False
        self.waiting.pop(job.job_id, None)
        for dependent in self.dependents.pop(job.job_id, []):
            if dependent.blocked:
                dependent.blocked = False
                self._later(dependent, "PENDING", 0)
        self._announce(job)
        self._child_changed(job)

    def _child_changed(self, job: Job) -> None:
        """An array child moved: its parent's status and summary follow."""
        parent = job.parent
        if parent is None:
            return
        parent.status_summary_at = now_ms()
        if job.started_at is not None and (parent.started_at is None or job.started_at < parent.started_at):
            parent.started_at = job.started_at
        status = deps.parent_status(parent)
        if status in ("SUCCEEDED", "FAILED"):
            if parent.status in ACTIVE_STATUSES:
                self._finish(parent, status, parent.stop_reason)
        else:
            parent.status = status
            self._announce(parent)
