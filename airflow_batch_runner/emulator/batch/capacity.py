"""Capacity: which RUNNABLE job goes to which compute environment, and when.

The vCPUs of the jobs STARTING or RUNNING on an environment never pass its ``maxvCpus``, nor their GPUs what its
instance types give (``gpus.py``); queues sharing
environments go by descending priority, each queue's jobs in its own order (FIFO or fair share,
``scheduling.py``). What happens to a job once placed is ``lifecycle.py``'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from airflow_batch_runner.emulator.batch import scheduling, stuck
from airflow_batch_runner.emulator.batch import validation as v
from airflow_batch_runner.emulator.batch.environments import Environments, Infrastructure
from airflow_batch_runner.emulator.batch.jobs import Job
from airflow_batch_runner.emulator.batch.resources import ComputeEnvironment, JobQueue

VCPU_EPSILON = 1e-9  # fractional vCPUs (0.25, 0.125) add up exactly; this absorbs any other rounding


class Capacity(Environments):
    """The RUNNABLE jobs waiting for room, and the vCPUs each environment and fair share holds."""

    def __init__(self, infrastructure: Infrastructure) -> None:
        super().__init__(infrastructure)
        # RUNNABLE jobs waiting for room on a compute environment, by id; placed by _dispatch.
        self.waiting: dict[str, Job] = {}
        # (queue ARN, shareIdentifier) -> vCPUs its placed jobs hold: a fair-share queue's usage.
        self.share_usage: dict[tuple[str, str], float] = {}
        self._dispatch_due = False
        self._recheck_due = False

    def _blocked(self, job: Job, reason: str) -> None:
        raise NotImplementedError  # the job's side: Lifecycle

    def _start_attempt(self, job: Job, ce: ComputeEnvironment) -> None:
        raise NotImplementedError  # the job's side: Lifecycle

    def _placement_blocker(self, job: Job) -> str | None:
        """None when the job can be placed; else its statusReason (``""``: it waits without one)."""
        queue = job.queue
        environments = [self.find_compute_environment(entry["computeEnvironment"])
                        for entry in sorted(queue.compute_environment_order, key=lambda e: e["order"])]
        return stuck.blocked_reason(queue.state == "ENABLED", environments, job.definition.platform, job.vcpus,
                                    job.gpus)

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
                               and job.vcpus <= _room(ce) - ce.capacity * reserved + VCPU_EPSILON
                               and job.gpus <= ce.gpus.total - ce.used_gpus), None)
                    if ce is not None and not self._consumables_free(job):
                        continue  # it waits for its consumable resources; those behind it may still go
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
        ce.used_gpus += job.gpus
        for name, quantity in job.consumables.items():
            if name in self.consumable_resources:
                self.consumable_resources[name].in_use += quantity
        job.holds = ce
        if job.share_identifier is not None:
            key = (job.queue.arn, job.share_identifier)
            self.share_usage[key] = self.share_usage.get(key, 0.0) + job.vcpus
        self._start_attempt(job, ce)

    def _release(self, job: Job) -> None:
        """The job's attempt ended: the vCPUs it held are free for the jobs waiting."""
        ce, job.holds = job.holds, None
        if ce is None:
            return
        ce.used_vcpus = max(0.0, ce.used_vcpus - job.vcpus)
        ce.used_gpus = max(0, ce.used_gpus - job.gpus)
        for name, quantity in job.consumables.items():
            resource = self.consumable_resources.get(name)
            if resource is not None:
                resource.in_use = max(0, resource.in_use - quantity)
                if resource.resource_type == "NON_REPLENISHABLE":  # used up: it never comes back
                    resource.total = max(0, resource.total - quantity)
        if job.share_identifier is not None:
            key = (job.queue.arn, job.share_identifier)
            self.share_usage[key] = max(0.0, self.share_usage.get(key, 0.0) - job.vcpus)
        if self.waiting:
            self._wake()

    def _consumables_free(self, job: Job) -> bool:
        """Every consumable resource the job requires has its quantity available (a deleted one never will)."""
        return all(name in self.consumable_resources and quantity <= self.consumable_resources[name].available
                   for name, quantity in job.consumables.items())

    @staticmethod
    def _vcpus(job: Job) -> float:
        return v.job_resources(job.containers)[0]


def _room(ce: ComputeEnvironment) -> float:
    return ce.capacity - ce.used_vcpus
