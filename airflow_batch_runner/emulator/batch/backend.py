"""One region's AWS Batch, and the requests about jobs: SubmitJob, DescribeJobs, ListJobs, TerminateJob,
CancelJob, and tags.

No wire format here (that is ``responses.py``) and no processes (that is ``runner.py``). The class is
built in layers: ``environments.py`` compute environments, queues and scheduling policies,
``definitions.py`` job definitions, ``capacity.py`` where a RUNNABLE job goes, ``lifecycle.py`` how a job
moves; the data is in ``resources.py`` and ``jobs.py``.
"""

from __future__ import annotations

import copy
import itertools
import threading
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_batch_runner.emulator.batch import consumables, gpus, retries, scheduling
from airflow_batch_runner.emulator.batch import dependencies as deps
from airflow_batch_runner.emulator.batch import validation as v
from airflow_batch_runner.emulator.batch.consumables import ConsumableResources
from airflow_batch_runner.emulator.batch.definitions import Definitions
from airflow_batch_runner.emulator.batch.environments import Infrastructure
from airflow_batch_runner.emulator.batch.jobs import (
    ACTIVE_STATUSES,
    Job,
    apply_container_overrides,
    check_job_status,
    check_list_filter,
    effective_ecs_task,
    job_matches,
    substitute_parameters,
)
from airflow_batch_runner.emulator.batch.lifecycle import Lifecycle, Scheduler
from airflow_batch_runner.emulator.batch.queues import Queues
from airflow_batch_runner.emulator.batch.resources import JobDefinition, JobQueue, tags_dict
from airflow_batch_runner.emulator.batch.validation import ClientException, paginate

MAX_FILTERED_PAGE = 100


class BatchBackend(Lifecycle, Definitions, Queues, ConsumableResources):
    """One region's AWS Batch: compute environments, queues, scheduling policies, job definitions and jobs."""

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
        self._submissions = itertools.count(1)

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
        override = consumables.check_requirements(params.get("consumableResourcePropertiesOverride"),
                                                  "consumableResourcePropertiesOverride")
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
            requirements = consumables.merged(definition.consumable_resources, override)
            if len(requirements) > consumables.MAX_PER_JOB:
                raise ClientException(f"A job can require at most {consumables.MAX_PER_JOB} consumable resources; the "
                                      f"definition and consumableResourcePropertiesOverride give {len(requirements)}")
            held = self.resolve_requirements(requirements)
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
            job.gpus = gpus.job_gpus(job.containers)
            job.consumables = held
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
            override_tasks = (params.get("ecsPropertiesOverride") or {}).get("taskProperties") or [{}]
            v.check_overrides(
                [(c, f"container override {c.get('name')!r}") for c in override_tasks[0].get("containers") or []],
                fargate,
            )
            task = effective_ecs_task(definition, params.get("ecsPropertiesOverride"))
            task["containers"] = [substitute_parameters(c, parameters) for c in task["containers"]]
            v.check_job_resources(task["containers"])
            if fargate:
                vcpu, memory = v.resource_totals(task["containers"])
                v.check_fargate_resources(vcpu, memory)
            return task, None
        if params.get("ecsPropertiesOverride"):
            raise ClientException("ecsPropertiesOverride requires an ecsProperties job definition")
        assert definition.container_properties is not None
        v.check_overrides([(params.get("containerOverrides") or {}, "containerOverrides")], fargate)
        container = apply_container_overrides(definition.container_properties, params.get("containerOverrides") or {})
        container = substitute_parameters(container, parameters)
        v.check_job_resources([container])
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
        if len(filters) > 1:
            raise ClientException("filters: only one filter can be used at a time")
        status = check_job_status(params["jobStatus"]) if "jobStatus" in params else None
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
                check_list_filter(filters[0])  # a bad filter is refused even when the queue has no job
                jobs = [job for job in jobs if job_matches(job, filters[0])]
                if filters[0]["name"] != "SHARE_IDENTIFIER":
                    status = None  # "When the filter is used, jobStatus is ignored", except with SHARE_IDENTIFIER
            else:
                status = status or "RUNNING"
            if status is not None:
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

    def _tagged(self, arn: str) -> dict[str, str]:
        """The tags of a taggable resource. TagResource, UntagResource, ListTagsForResource: "ARNs for child jobs
        of array and multi-node parallel (MNP) jobs aren't supported"."""
        if arn not in self.tags_by_arn:
            raise ClientException(f"Resource {arn} does not exist")
        job = self.find_job(arn) if ":job/" in arn else None
        if job is not None and job.parent is not None:
            raise ClientException(f"Tags of a child job are not supported; use its array job's ARN: {arn}")
        return self.tags_by_arn[arn]

    def tag_resource(self, arn: str, tags: Mapping[str, str]) -> dict[str, Any]:
        v.check_tags(tags)
        with self.lock:
            current = self._tagged(arn)
            if len(set(current) | set(tags)) > v.MAX_TAGS:
                raise ClientException(f"tags: a resource can have at most {v.MAX_TAGS} tags")
            current.update(tags_dict(tags))
        return {}

    def untag_resource(self, arn: str, keys: Iterable[str]) -> dict[str, Any]:
        with self.lock:
            current = self._tagged(arn)
            for key in keys:
                current.pop(key, None)
        return {}

    def list_tags_for_resource(self, arn: str) -> dict[str, Any]:
        with self.lock:
            return {"tags": dict(self._tagged(arn))}

    def active_jobs(self) -> list[Job]:
        with self.lock:
            return [job for job in self.jobs.values() if job.status in ACTIVE_STATUSES]
