"""Fair-share scheduling policies: Create, Describe, List, Update and DeleteSchedulingPolicy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_batch_runner.emulator.batch import scheduling
from airflow_batch_runner.emulator.batch import validation as v
from airflow_batch_runner.emulator.batch.environments import Environments
from airflow_batch_runner.emulator.batch.resources import SchedulingPolicy, tags_dict
from airflow_batch_runner.emulator.batch.validation import ClientException, paginate


class SchedulingPolicies(Environments):
    """One region's scheduling policies (their store is ``Environments.scheduling_policies``)."""

    def _policy_arn(self, ref: str | None) -> str | None:
        if ref is None:
            return None
        policy = self.scheduling_policies.get(ref)
        if policy is None:
            raise ClientException(f"schedulingPolicyArn {ref} does not exist")
        return policy.arn

    def create_scheduling_policy(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.require(params, "name")
        v.check_name(params["name"], "name")
        v.check_tags(params.get("tags"))
        policy_spec = scheduling.fairshare_policy(params.get("fairsharePolicy"))
        with self.lock:
            arn = self._arn("scheduling-policy", params["name"])
            if arn in self.scheduling_policies:
                raise ClientException(f"Object already exists: scheduling policy {params['name']}")
            policy = SchedulingPolicy(params["name"], arn, policy_spec, tags_dict(params.get("tags")))
            self.scheduling_policies[arn] = policy
            self.tags_by_arn[arn] = policy.tags
        return {"name": policy.name, "arn": arn}

    def describe_scheduling_policies(self, params: Mapping[str, Any]) -> dict[str, Any]:
        arns = params.get("arns")
        if not isinstance(arns, list) or not arns:
            raise ClientException("arns is required")
        with self.lock:
            found = [self.scheduling_policies.get(arn) for arn in arns]
            return {"schedulingPolicies": [p.describe() for p in found if p is not None]}

    def list_scheduling_policies(self, params: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            items = [{"arn": arn} for arn in self.scheduling_policies]
        return paginate(items, params, "schedulingPolicies")

    def update_scheduling_policy(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.require(params, "arn")
        policy_spec = scheduling.fairshare_policy(params.get("fairsharePolicy"))
        with self.lock:
            policy = self.scheduling_policies.get(params["arn"])
            if policy is None:
                raise ClientException(f"Scheduling policy {params['arn']} does not exist")
            if "fairsharePolicy" in params:
                policy.fairshare_policy = policy_spec
        return {}

    def delete_scheduling_policy(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.require(params, "arn")
        with self.lock:
            policy = self.scheduling_policies.get(params["arn"])
            if policy is None:
                raise ClientException(f"Scheduling policy {params['arn']} does not exist")
            users = sorted(q.name for q in self.queues.values() if q.scheduling_policy_arn == policy.arn)
            if users:
                raise ClientException(
                    f"Scheduling policy {policy.name} is used by job queue {', '.join(users)} and can't be deleted"
                )
            del self.scheduling_policies[policy.arn]
            self.tags_by_arn.pop(policy.arn, None)
        return {}
