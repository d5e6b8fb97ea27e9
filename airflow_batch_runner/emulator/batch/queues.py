"""Job queues: CreateJobQueue, DescribeJobQueues, UpdateJobQueue, DeleteJobQueue, with the state rules AWS
documents (VALID compute environments only, one platform per queue, DISABLED before deletion)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_batch_runner.emulator.batch import stuck
from airflow_batch_runner.emulator.batch import validation as v
from airflow_batch_runner.emulator.batch.jobs import ACTIVE_STATUSES
from airflow_batch_runner.emulator.batch.policies import SchedulingPolicies
from airflow_batch_runner.emulator.batch.resources import JobQueue, name_of, tags_dict
from airflow_batch_runner.emulator.batch.validation import ClientException, paginate

MAX_QUEUE_COMPUTE_ENVIRONMENTS = 3


class Queues(SchedulingPolicies):
    """One region's job queues."""

    def create_job_queue(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.require(params, "jobQueueName", "priority")
        name = params["jobQueueName"]
        v.check_name(name, "jobQueueName")
        v.check_tags(params.get("tags"))
        actions = stuck.check_time_limit_actions(params.get("jobStateTimeLimitActions"))
        v.check_state(params.get("state", "ENABLED"), "ENABLED", "DISABLED")
        with self.lock:
            order = self._check_ce_order(params.get("computeEnvironmentOrder") or [])
            policy = self._policy_arn(params.get("schedulingPolicyArn"))
            queue_type = self._queue_type(order)
            if params.get("jobQueueType") not in (None, queue_type):
                raise ClientException(
                    f"jobQueueType {params['jobQueueType']} does not match its compute environments ({queue_type})"
                )
            if name in self.queues:
                raise ClientException(f"Object already exists: job queue {name}")
            queue = JobQueue(
                name=name,
                arn=self._arn("job-queue", name),
                state=params.get("state", "ENABLED"),
                priority=int(params["priority"]),
                compute_environment_order=order,
                tags=tags_dict(params.get("tags")),
                job_state_time_limit_actions=actions,
                scheduling_policy_arn=policy,
                queue_type=queue_type,
            )
            self.queues[name] = queue
            self.tags_by_arn[queue.arn] = queue.tags
        self._later_queue(queue, "VALID", "JobQueue Healthy")
        return {"jobQueueName": name, "jobQueueArn": queue.arn}

    def _check_ce_order(self, order: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not order:
            raise ClientException(
                "computeEnvironmentOrder is required: at least 1 compute environment must be provided"
            )
        if len(order) > MAX_QUEUE_COMPUTE_ENVIRONMENTS:
            raise ClientException(
                f"computeEnvironmentOrder: a job queue can have at most {MAX_QUEUE_COMPUTE_ENVIRONMENTS} "
                "compute environments"
            )
        resolved = []
        platforms = set()
        for entry in order:
            if not isinstance(entry.get("order"), int) or not entry.get("computeEnvironment"):
                raise ClientException(
                    "computeEnvironmentOrder is malformed: each entry needs order and computeEnvironment"
                )
            ce = self.find_compute_environment(entry["computeEnvironment"])
            if ce is None or ce.status in ("DELETING", "DELETED"):
                raise ClientException(f"computeEnvironment {entry['computeEnvironment']} does not exist")
            if ce.status != "VALID":
                raise ClientException(
                    f"computeEnvironment {ce.name} is {ce.status}; a job queue can use only VALID compute environments"
                )
            platforms.add((ce.orchestration, ce.platform))
            resolved.append({"order": entry["order"], "computeEnvironment": ce.arn})
        if len(platforms) > 1:
            raise ClientException("All compute environments of a job queue must share one orchestration and platform")
        return resolved

    def _queue_type(self, order: list[dict[str, Any]]) -> str:
        ce = self.find_compute_environment(order[0]["computeEnvironment"])
        assert ce is not None
        if ce.orchestration == "EKS":
            return "EKS"
        return "ECS_FARGATE" if ce.platform == "FARGATE" else "ECS"

    def _later_queue(self, queue: JobQueue, status: str, reason: str) -> None:
        """CREATING, UPDATING or DELETING settles one step later (or when a test's hold is released)."""
        self.scheduler.call_later(
            self.step_delay, self.holds.settle, "jobQueues", self._settle_queue, queue, status, reason
        )

    def _settle_queue(self, queue: JobQueue, status: str, reason: str) -> None:
        with self.lock:
            if status == "DELETED":
                self.queues.pop(queue.name, None)
            queue.status, queue.status_reason = status, reason
            self._capacity_changed()

    def find_queue(self, ref: str) -> JobQueue | None:
        return self.queues.get(name_of(ref))

    def describe_job_queues(self, params: Mapping[str, Any]) -> dict[str, Any]:
        refs = params.get("jobQueues")
        with self.lock:
            if refs:
                found = [self.find_queue(r) for r in refs]
                items = [q.describe() for q in found if q is not None]
            else:
                items = [q.describe() for q in self.queues.values()]
        return paginate(items, params, "jobQueues")

    def update_job_queue(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.require(params, "jobQueue")
        with self.lock:
            queue = self.find_queue(params["jobQueue"])
            if queue is None:
                raise ClientException(f"jobQueue {params['jobQueue']} does not exist")
            # Everything is checked before anything changes: a refused update leaves the queue as it was.
            if "state" in params:
                v.check_state(params["state"], "ENABLED", "DISABLED")
            policy = queue.scheduling_policy_arn
            if "schedulingPolicyArn" in params:
                if policy is None:
                    raise ClientException(
                        f"Job queue {queue.name} is a FIFO queue: a fair-share scheduling policy can't be added"
                    )
                policy = self._policy_arn(params["schedulingPolicyArn"])
            order = queue.compute_environment_order
            if "computeEnvironmentOrder" in params:
                order = self._check_ce_order(params["computeEnvironmentOrder"])
                if self._queue_type(order) != queue.queue_type:
                    raise ClientException(
                        f"computeEnvironmentOrder: job queue {queue.name} is of type {queue.queue_type}; "
                        f"its compute environments can't be of type {self._queue_type(order)}"
                    )
            actions = queue.job_state_time_limit_actions
            if "jobStateTimeLimitActions" in params:
                actions = stuck.check_time_limit_actions(params["jobStateTimeLimitActions"])
            queue.scheduling_policy_arn, queue.compute_environment_order = policy, order
            queue.job_state_time_limit_actions = actions
            queue.state = params.get("state", queue.state)
            if "priority" in params:
                queue.priority = int(params["priority"])
            queue.status, queue.status_reason = "UPDATING", "Job queue is being updated"
        self._later_queue(queue, "VALID", "JobQueue Healthy")
        return {"jobQueueName": queue.name, "jobQueueArn": queue.arn}

    def delete_job_queue(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.require(params, "jobQueue")
        with self.lock:
            queue = self.find_queue(params["jobQueue"])
            if queue is None:
                raise ClientException(f"jobQueue {params['jobQueue']} does not exist")
            if queue.state != "DISABLED":
                raise ClientException(f"Job queue {queue.name} must be DISABLED before it can be deleted")
            queue.status, queue.status_reason = "DELETING", "Job queue is being deleted"
            for job in self.jobs.values():
                if job.queue is queue and job.status in ACTIVE_STATUSES:
                    self._terminate(job, "Job queue deleted")
        self._later_queue(queue, "DELETED", "Job queue deleted")
        return {}
