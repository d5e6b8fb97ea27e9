"""One region's AWS Batch: what each request means and how a job moves through its statuses.

No wire format here (that is ``responses.py``) and no processes (that is ``runner.py``); compute
environments, queues and scheduling policies are in ``environments.py``, the data in ``resources.py`` and
``jobs.py``.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from airflow_batch_runner.emulator.batch import dependencies as deps
from airflow_batch_runner.emulator.batch import retries, scheduling, stuck
from airflow_batch_runner.emulator.batch import validation as v
from airflow_batch_runner.emulator.batch.environments import Environments, Infrastructure
from airflow_batch_runner.emulator.batch.jobs import (
    ACTIVE_STATUSES,
    Attempt,
    ContainerResult,
    Job,
    TaskResult,
    apply_container_overrides,
    check_list_filter,
    effective_ecs_task,
    job_matches,
    substitute_parameters,
)
from airflow_batch_runner.emulator.batch.resources import (
    ComputeEnvironment,
    JobDefinition,
    JobQueue,
    name_of,
    now_ms,
    tags_dict,
)
from airflow_batch_runner.emulator.batch.validation import ClientException, paginate

TIMEOUT_REASON = "Job attempt duration exceeded timeout"
VCPU_EPSILON = 1e-9  # fractional vCPUs (0.25, 0.125) add up exactly; this absorbs any other rounding
MAX_FILTERED_PAGE = 100
MAX_QUEUE_COMPUTE_ENVIRONMENTS = 3


class Scheduler(Protocol):
    """What the backend needs from the runner: timers and container processes."""

    def call_later(self, delay: float, fn: Callable[..., None], *args: Any) -> None: ...

    def start_task(self, job: Job, on_stopped: Callable[[Job, TaskResult], None]) -> None: ...

    def stop_task(self, job: Job) -> None: ...


class BatchBackend(Environments):
    """One region's AWS Batch: the resources of ``Environments``, job definitions and jobs."""

    scheduler: Scheduler

    def __init__(
        self,
        region: str,
        scheduler: Scheduler,
        step_delay: float,
        lock: threading.RLock,
        infrastructure: Infrastructure,
    ) -> None:
        super().__init__(infrastructure)
        self.region = region
        self.scheduler = scheduler
        self.step_delay = step_delay
        self.lock = lock
        self.definitions: dict[str, list[JobDefinition]] = {}
        self.jobs: dict[str, Job] = {}
        # Job id -> the jobs waiting in PENDING for it to end.
        self.dependents: dict[str, list[Job]] = {}
        # Injected Spot-style interruptions; the app shares one set between its regions.
        self.interruptions = retries.Interruptions()
        # Scales jobStateTimeLimitActions' maxTimeSeconds (at least 600 s on AWS), for tests only.
        self.time_limit_scale = 1.0
        # RUNNABLE jobs waiting for room on a compute environment, by id; placed by _dispatch.
        self.waiting: dict[str, Job] = {}
        # (queue ARN, shareIdentifier) -> vCPUs its placed jobs hold: a fair-share queue's usage.
        self.share_usage: dict[tuple[str, str], float] = {}
        self._submissions = itertools.count(1)
        self._dispatch_due = False
        self._recheck_due = False

    def _check_platform(self, queue: JobQueue, definition: JobDefinition) -> None:
        """AWS refuses at SubmitJob a job no compute environment of its queue could ever run."""
        platforms = set()
        environments = [self.find_compute_environment(e["computeEnvironment"]) for e in queue.compute_environment_order]
        for ce in environments:
            if ce is not None:
                platforms.add("EKS" if ce.orchestration == "EKS" else ce.platform)
        if environments and all(ce is not None and ce.ce_type == "UNMANAGED" for ce in environments):
            raise ClientException(
                f"Job queue {queue.name} has only UNMANAGED compute environments: running jobs on UNMANAGED compute "
                "environments (container instances you register yourself) is not supported by this emulator; "
                "use a MANAGED one"
            )
        if definition.platform not in platforms:
            raise ClientException(
                f"Job definition {definition.arn} has platformCapabilities {definition.platform}, which the compute "
                f"environments of job queue {queue.name} ({', '.join(sorted(platforms)) or 'none'}) do not provide"
            )

    # Job definitions

    def register_job_definition(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.require(params, "jobDefinitionName", "type")
        name = params["jobDefinitionName"]
        v.check_name(name, "jobDefinitionName")
        v.check_tags(params.get("tags"))
        v.check_timeout(params.get("timeout"))
        retries.check_retry_strategy(params.get("retryStrategy"))
        priority = params.get("schedulingPriority")
        if priority is not None:
            scheduling.check_priority(priority, "schedulingPriority")
        def_type = params["type"]
        if def_type not in ("container", "multinode"):
            raise ClientException("type must be container or multinode")
        platforms = list(params.get("platformCapabilities") or ["EC2"])
        if any(p not in ("EC2", "FARGATE") for p in platforms) or len(platforms) != 1:
            raise ClientException("platformCapabilities must be exactly one of EC2, FARGATE")
        kinds = ("containerProperties", "ecsProperties", "nodeProperties", "eksProperties")
        given = [k for k in kinds if params.get(k)]
        if len(given) != 1:
            raise ClientException(
                "Exactly one of containerProperties, ecsProperties, nodeProperties, eksProperties is required"
            )
        if given[0] in ("nodeProperties", "eksProperties"):
            raise ClientException(f"{given[0]} is not supported by this emulator")
        if def_type != "container":
            raise ClientException(f"{given[0]} requires type container")
        fargate = platforms == ["FARGATE"]
        container_props: dict[str, Any] | None = None
        ecs_props: dict[str, Any] | None = None
        if given[0] == "containerProperties":
            container_props = v.container_defaults(params["containerProperties"], fargate)
        else:
            ecs_props = params["ecsProperties"]
        if container_props is not None:
            v.require(container_props, "image")
            v.check_environment(container_props.get("environment"), "containerProperties")
            if fargate:
                v.check_fargate_task(
                    {
                        "executionRoleArn": container_props.get("executionRoleArn"),
                        "networkConfiguration": container_props.get("networkConfiguration"),
                    },
                    [container_props],
                    "containerProperties",
                )
        else:
            assert ecs_props is not None
            tasks = ecs_props.get("taskProperties") or []
            if len(tasks) != 1:
                raise ClientException("ecsProperties.taskProperties must contain exactly one task")
            v.check_ecs_containers(tasks[0].get("containers") or [])
            for container in tasks[0]["containers"]:
                v.check_environment(container.get("environment"), f"container {container['name']!r}")
            if fargate:
                v.check_fargate_task(tasks[0], tasks[0]["containers"], "ecsProperties.taskProperties[0]")
        with self.lock:
            revisions = self.definitions.setdefault(name, [])
            revision = len(revisions) + 1
            definition = JobDefinition(
                name=name,
                revision=revision,
                arn=self._arn("job-definition", f"{name}:{revision}"),
                def_type=def_type,
                platform_capabilities=platforms,
                container_properties=copy.deepcopy(container_props),
                ecs_properties=copy.deepcopy(ecs_props),
                parameters=dict(params.get("parameters") or {}),
                timeout=params.get("timeout"),
                retry_strategy=v.normalised_retry_strategy(params.get("retryStrategy")),
                propagate_tags=params.get("propagateTags"),
                scheduling_priority=priority,
                tags=tags_dict(params.get("tags")),
            )
            revisions.append(definition)
            self.tags_by_arn[definition.arn] = definition.tags
        return {"jobDefinitionName": name, "jobDefinitionArn": definition.arn, "revision": revision}

    def find_definition(self, ref: str) -> JobDefinition | None:
        """By ARN, name:revision, or name (the latest ACTIVE revision)."""
        name, _, revision = name_of(ref).partition(":")
        revisions = self.definitions.get(name, [])
        if revision:
            idx = int(revision) - 1 if revision.isdigit() else -1
            return revisions[idx] if 0 <= idx < len(revisions) else None
        active = [d for d in revisions if d.status == "ACTIVE"]
        return active[-1] if active else None

    def describe_job_definitions(self, params: Mapping[str, Any]) -> dict[str, Any]:
        refs = params.get("jobDefinitions")
        name_filter = params.get("jobDefinitionName")
        status = params.get("status")
        with self.lock:
            if refs:
                items = []
                for ref in refs:
                    plain = name_of(ref)
                    if ":" in plain:
                        found = self.find_definition(ref)
                        items.extend([found] if found else [])
                    else:
                        items.extend(self.definitions.get(plain, []))
            elif name_filter:
                items = list(self.definitions.get(name_filter, []))
            else:
                items = [d for revs in self.definitions.values() for d in revs]
            described = [d.describe() for d in items if status is None or d.status == status]
        return paginate(described, params, "jobDefinitions")

    def deregister_job_definition(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.require(params, "jobDefinition")
        with self.lock:
            definition = self.find_definition(params["jobDefinition"])
            if definition is None:
                raise ClientException(f"jobDefinition {params['jobDefinition']} does not exist")
            definition.status = "INACTIVE"
        return {}

    # Jobs

    def submit_job(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.require(params, "jobName", "jobQueue", "jobDefinition")
        v.check_name(params["jobName"], "jobName", v.JOB_NAME_RE)
        v.check_tags(params.get("tags"))
        v.check_timeout(params.get("timeout"))
        retries.check_retry_strategy(params.get("retryStrategy"))
        v.check_environment((params.get("containerOverrides") or {}).get("environment"), "containerOverrides")
        for task in (params.get("ecsPropertiesOverride") or {}).get("taskProperties") or []:
            for container in task.get("containers") or []:
                v.check_environment(container.get("environment"), f"container override {container.get('name')!r}")
        size = deps.array_size(params.get("arrayProperties"))
        depends_on = deps.check_depends_on(params.get("dependsOn"), size)
        priority = params.get("schedulingPriorityOverride")
        if priority is not None:
            scheduling.check_priority(priority, "schedulingPriorityOverride")
        with self.lock:
            queue = self.find_queue(params["jobQueue"])
            if queue is None:
                raise ClientException(f"Job Queue {params['jobQueue']} does not exist")
            if queue.state != "ENABLED" or queue.status not in ("VALID", "UPDATING"):
                raise ClientException(
                    f"Job Queue {queue.name} is not ENABLED and VALID (state {queue.state}, status {queue.status})"
                )
            definition = self.find_definition(params["jobDefinition"])
            if definition is None:
                raise ClientException(f"Job definition {params['jobDefinition']} does not exist")
            if definition.status != "ACTIVE":
                raise ClientException(f"Job definition {definition.arn} is INACTIVE")
            scheduling.check_job_share(queue.scheduling_policy_arn, queue.name, params.get("shareIdentifier"))
            self._check_platform(queue, definition)
            targets = deps.resolve(depends_on, size, self.find_job)
            parameters = {**definition.parameters, **(params.get("parameters") or {})}
            ecs_task, container = self._effective_properties(definition, params, parameters)
            job_id = str(uuid.uuid4())
            tags = tags_dict(params.get("tags"))
            propagate = bool(params.get("propagateTags", definition.propagate_tags or False))
            if propagate:
                tags = {**definition.tags, **tags}
            retry = v.normalised_retry_strategy(params.get("retryStrategy")) or definition.retry_strategy or {}
            job = Job(
                job_id=job_id,
                name=params["jobName"],
                arn=self._arn("job", job_id),
                region=self.region,
                queue=queue,
                definition=definition,
                tags=tags,
                propagate_tags=propagate,
                timeout=params.get("timeout") or definition.timeout,
                max_attempts=int(retry.get("attempts", 1)),
                evaluate_on_exit=list(retry.get("evaluateOnExit") or []),
                parameters=parameters,
                ecs_task=ecs_task,
                container=container,
                depends_on=depends_on,
                array_size=size,
                share_identifier=params.get("shareIdentifier"),
                scheduling_priority=priority if priority is not None else definition.scheduling_priority,
                seq=next(self._submissions),
            )
            job.vcpus = self._vcpus(job)
            self.jobs[job_id] = job
            self.tags_by_arn[job.arn] = job.tags
            if size is None:
                self._wait_on(job, targets)
                started = [job]
            else:
                started = [self._spawn_child(job, index, targets) for index in range(size)]
        for each in started:
            self._later(each, "SUBMITTED")
        return {"jobArn": job.arn, "jobName": job.name, "jobId": job_id}

    def _spawn_child(self, parent: Job, index: int, targets: list[Job]) -> Job:
        """Child ``index`` of an array job: the parent's job, at ``<parent id>:<index>``."""
        child_id = f"{parent.job_id}:{index}"
        child = copy.copy(parent)
        child.job_id, child.arn = child_id, self._arn("job", child_id)
        child.array_size, child.array_index, child.parent = None, index, parent
        child.children, child.attempts, child.waits_on, child.tags = [], [], [], dict(parent.tags)
        child.created_at = parent.created_at
        parent.children.append(child)
        waits = deps.child_dependencies(parent, index, targets)
        child.depends_on = [{"jobId": t.job_id, **({"type": kind} if kind else {})} for t, kind in waits]
        self._wait_on(child, [t for t, _ in waits])
        self.jobs[child_id] = child
        self.tags_by_arn[child.arn] = child.tags
        return child

    def _wait_on(self, job: Job, targets: list[Job]) -> None:
        job.waits_on = targets
        for target in targets:
            self.dependents.setdefault(target.job_id, []).append(job)

    def _effective_properties(
        self, definition: JobDefinition, params: Mapping[str, Any], parameters: Mapping[str, str]
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        fargate = definition.platform == "FARGATE"
        if definition.ecs_properties is not None:
            if params.get("containerOverrides"):
                raise ClientException("containerOverrides cannot be used with an ecsProperties job definition")
            task = effective_ecs_task(definition, params.get("ecsPropertiesOverride"))
            task["containers"] = [substitute_parameters(c, parameters) for c in task["containers"]]
            if fargate:
                vcpu, memory = v.resource_totals(task["containers"])
                v.check_fargate_resources(vcpu, memory)
            return task, None
        if params.get("ecsPropertiesOverride"):
            raise ClientException("ecsPropertiesOverride requires an ecsProperties job definition")
        assert definition.container_properties is not None
        container = apply_container_overrides(definition.container_properties, params.get("containerOverrides") or {})
        container = substitute_parameters(container, parameters)
        if fargate:
            v.check_fargate_resources(*v.resource_totals([container]))
        return None, container

    def find_job(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id.rsplit("/", 1)[-1])

    def describe_jobs(self, params: Mapping[str, Any]) -> dict[str, Any]:
        ids = params.get("jobs")
        if not isinstance(ids, list):
            raise ClientException("jobs is required")
        if len(ids) > 100:
            raise ClientException("jobs: at most 100 job IDs can be described in one request")
        with self.lock:
            found = [self.find_job(i) for i in ids]
            return {"jobs": [job.describe() for job in found if job is not None]}

    def list_jobs(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """By queue (array children are not listed there) or by arrayJobId (the children)."""
        filters = params.get("filters") or []
        scopes = [k for k in ("jobQueue", "arrayJobId", "multiNodeJobId") if params.get(k)]
        if len(scopes) != 1:
            raise ClientException("Exactly one of jobQueue, arrayJobId or multiNodeJobId must be specified")
        if scopes[0] == "multiNodeJobId":
            raise ClientException("multiNodeJobId: multi-node parallel jobs are not supported by this emulator")
        with self.lock:
            if scopes[0] == "arrayJobId":
                parent = self.find_job(params["arrayJobId"])
                if parent is None or parent.array_size is None:
                    raise ClientException(f"arrayJobId {params['arrayJobId']} is not an array job")
                if filters:
                    raise ClientException("filters apply to a job queue's jobs, not to the children of an array job")
                jobs = list(parent.children)
            else:
                queue = self.find_queue(params["jobQueue"])
                if queue is None:
                    raise ClientException(f"Job Queue {params['jobQueue']} does not exist")
                jobs = [job for job in self.jobs.values() if job.queue is queue and job.parent is None]
                jobs.sort(key=lambda job: job.created_at, reverse=True)
            if filters:
                for flt in filters:  # a bad filter is refused even when the queue has no job
                    check_list_filter(flt)
                for flt in filters:
                    jobs = [job for job in jobs if job_matches(job, flt)]
            else:
                status = params.get("jobStatus", "RUNNING")
                jobs = [job for job in jobs if job.status == status]
            items = [job.summary() for job in jobs]
        if filters:  # "When --filters is used, Batch returns up to 100 values" (a page)
            asked = int(params.get("maxResults") or MAX_FILTERED_PAGE)
            params = {**params, "maxResults": min(asked, MAX_FILTERED_PAGE)}
        return paginate(items, params, "jobSummaryList", max_page=1000)

    def terminate_job(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Ends the job (and an array's children): as AWS, an unknown or finished job is no error."""
        v.require(params, "jobId", "reason")
        v.check_reason(params["reason"])
        with self.lock:
            job = self.find_job(params["jobId"])
            for each in self._with_children(job):
                if each.status in ACTIVE_STATUSES:  # a finished job stays as it ended
                    each.is_terminated = True
                    self._terminate(each, params["reason"])
        return {}

    def cancel_job(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Cancels a job (and an array's children) not yet STARTING; as AWS, anything else is no error."""
        v.require(params, "jobId", "reason")
        v.check_reason(params["reason"])
        with self.lock:
            job = self.find_job(params["jobId"])
            for each in self._with_children(job):
                if each.status in ("SUBMITTED", "PENDING", "RUNNABLE"):
                    each.is_cancelled = True
                    self._terminate(each, params["reason"])
        return {}

    @staticmethod
    def _with_children(job: Job | None) -> list[Job]:
        """The job, then an array parent's children (the parent ends, with its reason, once they all have)."""
        return [] if job is None else [job, *job.children]

    def _terminate(self, job: Job, reason: str) -> None:
        """Stop a job: at once when no task runs, else once its containers have stopped."""
        if job.children:
            job.stop_reason = job.stop_reason or reason  # the parent's own reason once its children end
        elif job.status in ("SUBMITTED", "PENDING", "RUNNABLE"):
            self._finish(job, "FAILED", reason)
        elif job.status in ("STARTING", "RUNNING") and job.stop_reason is None:
            job.stop_reason = reason
            self.scheduler.stop_task(job)

    # Tags

    def tag_resource(self, arn: str, tags: Mapping[str, str]) -> dict[str, Any]:
        with self.lock:
            if arn not in self.tags_by_arn:
                raise ClientException(f"Resource {arn} does not exist")
            current = self.tags_by_arn[arn]
            if len(set(current) | set(tags)) > v.MAX_TAGS:
                raise ClientException(f"tags: a resource can have at most {v.MAX_TAGS} tags")
            current.update(tags_dict(tags))
        return {}

    def untag_resource(self, arn: str, keys: Iterable[str]) -> dict[str, Any]:
        with self.lock:
            if arn not in self.tags_by_arn:
                raise ClientException(f"Resource {arn} does not exist")
            for key in keys:
                self.tags_by_arn[arn].pop(key, None)
        return {}

    def list_tags_for_resource(self, arn: str) -> dict[str, Any]:
        with self.lock:
            if arn not in self.tags_by_arn:
                raise ClientException(f"Resource {arn} does not exist")
            return {"tags": dict(self.tags_by_arn[arn])}

    # The job's life

    def _later(self, job: Job, expected: str, delay: float | None = None) -> None:
        self.scheduler.call_later(self.step_delay if delay is None else delay, self._advance, job, expected)

    def _advance(self, job: Job, expected: str) -> None:
        """One step of SUBMITTED -> PENDING -> RUNNABLE -> STARTING; RUNNING starts the task."""
        with self.lock:
            if job.status != expected:
                return  # terminated or cancelled meanwhile
            if expected == "SUBMITTED":
                job.status = "PENDING"
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
        """Each container's ``secrets`` from Secrets Manager or SSM, as the ECS agent reads them at task start;
        the task's stop reason when one cannot be read."""
        for spec in job.containers:
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
        if reason and stuck.code_of(reason) != stuck.code_of(job.status_reason):
            job.blocked_since = now
        if reason:
            job.status_reason = reason
        limit = stuck.time_limit(job.queue.job_state_time_limit_actions, reason)
        if limit is not None and job.blocked_since is not None and \
                now - job.blocked_since >= limit * self.time_limit_scale:
            job.is_cancelled = True
            self._finish(job, "FAILED", stuck.CANCELED.format(stuck.code_of(reason)))
            return
        self._later(job, "RUNNABLE", max(self.step_delay, 0.5))

    def _placement_blocker(self, job: Job) -> str | None:
        """None when the job can be placed; else its statusReason (``""``: it waits without one)."""
        queue = job.queue
        environments = [self.find_compute_environment(entry["computeEnvironment"])
                        for entry in sorted(queue.compute_environment_order, key=lambda e: e["order"])]
        return stuck.blocked_reason(queue.state == "ENABLED", environments, job.definition.platform, job.vcpus)

    # Capacity: which waiting job goes where, when

    def _wake(self, recheck: bool = False) -> None:
        """Run _dispatch soon, once for every event of this moment (jobs ending, jobs ready, an update)."""
        self._recheck_due = self._recheck_due or recheck
        if not self._dispatch_due:
            self._dispatch_due = True
            self.scheduler.call_later(0, self._dispatch)

    def _capacity_changed(self) -> None:
        self._wake(recheck=True)

    def _dispatch(self) -> None:
        """Place waiting jobs where there is room, as AWS Batch does: queues by descending priority (among queues
        sharing compute environments), each queue's jobs in its own order (FIFO or fair share), each job on the
        first compute environment of its queue's order with room for its vCPUs. A job that fits nowhere waits
        (without statusReason: it is not blocked, just not yet its turn) and the jobs after it may still go."""
        with self.lock:
            self._dispatch_due = False
            recheck, self._recheck_due = self._recheck_due, False
            by_queue: dict[str, list[Job]] = {}  # queue ARN -> its waiting jobs
            for job in list(self.waiting.values()):
                if job.status != "RUNNABLE":
                    del self.waiting[job.job_id]
                elif recheck and (reason := self._placement_blocker(job)) is not None:
                    del self.waiting[job.job_id]  # its queue or environments changed: it waits for that
                    self._blocked(job, reason)
                else:
                    by_queue.setdefault(job.queue.arn, []).append(job)
            for jobs in sorted(by_queue.values(), key=lambda waiting: -waiting[0].queue.priority):
                queue = jobs[0].queue
                if queue.state != "ENABLED":
                    continue  # its jobs wait; the recheck when it settles tells them so
                environments = [
                    ce for ce in (self.find_compute_environment(entry["computeEnvironment"])
                                  for entry in sorted(queue.compute_environment_order, key=lambda e: e["order"]))
                    if ce is not None and ce.state == "ENABLED" and ce.status == "VALID"
                ]
                policy = self.scheduling_policies.get(queue.scheduling_policy_arn or "")
                spec = policy.fairshare_policy if policy is not None else None
                reservation = int((spec or {}).get("computeReservation", 0))
                active = {share for (arn, share), used in self.share_usage.items()
                          if reservation and arn == queue.arn and used > 0}
                for job in self._queue_order(queue, spec, jobs):
                    if not any(_room(ce) > 0 for ce in environments):
                        break
                    # computeReservation: the part a share already running may not take, kept for new shares.
                    reserved = scheduling.reserved_ratio(reservation, len(active)) \
                        if job.share_identifier in active else 0.0
                    ce = next((ce for ce in environments if ce.platform == job.definition.platform
                               and job.vcpus <= _room(ce) - ce.capacity * reserved + VCPU_EPSILON), None)
                    if ce is not None:
                        self._place(job, ce)
                        if reservation and job.share_identifier is not None:
                            active.add(job.share_identifier)

    def _queue_order(self, queue: JobQueue, spec: Mapping[str, Any] | None, jobs: list[Job]) -> Iterable[Job]:
        """FIFO without a scheduling policy, fair share (``spec``: its fairsharePolicy) with one."""
        if spec is None:
            return scheduling.fifo_order(jobs)
        weights: dict[str, float] = {}

        def weight(share: str) -> float:
            if share not in weights:
                weights[share] = scheduling.weight_of(spec, share)
            return weights[share]

        return scheduling.fair_share_order(jobs, lambda share: self.share_usage.get((queue.arn, share), 0.0), weight)

    def _place(self, job: Job, ce: ComputeEnvironment) -> None:
        del self.waiting[job.job_id]
        ce.used_vcpus += job.vcpus
        job.holds = ce
        if job.share_identifier is not None:
            key = (job.queue.arn, job.share_identifier)
            self.share_usage[key] = self.share_usage.get(key, 0.0) + job.vcpus
        job.blocked_since, job.status_reason = None, None
        job.compute_environment = ce.name
        job.status = "STARTING"
        job.stop_reason = None
        job.attempts.append(Attempt(task_id=uuid.uuid4().hex, started_at=now_ms()))
        self._child_changed(job)
        self._later(job, "STARTING")

    def _release(self, job: Job) -> None:
        """The job's attempt ended: the vCPUs it held are free for the jobs waiting."""
        ce, job.holds = job.holds, None
        if ce is None:
            return
        ce.used_vcpus = max(0.0, ce.used_vcpus - job.vcpus)
        if job.share_identifier is not None:
            key = (job.queue.arn, job.share_identifier)
            self.share_usage[key] = max(0.0, self.share_usage.get(key, 0.0) - job.vcpus)
        if self.waiting:
            self._wake()

    @staticmethod
    def _vcpus(job: Job) -> float:
        return v.resource_totals(job.containers)[0] or float((job.container or {}).get("vcpus") or 0)

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
            self._child_changed(job)
            self._later(job, "RUNNABLE")
        else:
            self._finish(job, "FAILED", reason)

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

    def active_jobs(self) -> list[Job]:
        with self.lock:
            return [job for job in self.jobs.values() if job.status in ACTIVE_STATUSES]


def _room(ce: ComputeEnvironment) -> float:
    return ce.capacity - ce.used_vcpus
