"""What a compute environment stands on, in the emulator's other services (moto): its ECS cluster and
the EC2 instance types it may launch."""

from __future__ import annotations

import json

from moto.ec2.models.instance_types import INSTANCE_FAMILIES, INSTANCE_TYPES
from moto.ecs.models import ecs_backends
from moto.secretsmanager.models import secretsmanager_backends
from moto.ssm.models import ssm_backends

from airflow_batch_runner.emulator.batch.resources import ACCOUNT_ID


class MotoInfrastructure:
    """ECS clusters in moto's ECS, so that ``ecsClusterArn`` names a cluster ECS can describe."""

    def create_cluster(self, region: str, name: str) -> str:
        return str(ecs_backends[ACCOUNT_ID][region].create_cluster(cluster_name=name).arn)

    def delete_cluster(self, region: str, arn: str) -> None:
        backend = ecs_backends[ACCOUNT_ID][region]
        name = arn.rsplit("/", 1)[-1]
        if name in backend.clusters:
            backend.delete_cluster(name)
            backend.clusters.pop(name, None)

    def known_instance_type(self, name: str) -> bool:
        return name in INSTANCE_TYPES or name in INSTANCE_FAMILIES

    def secret_value(self, region: str, value_from: str) -> str | None:
        """A container secret's ``valueFrom``, as the ECS agent reads it: a Secrets Manager ARN (optionally
        ``:json-key:version-stage:version-id``) or an SSM parameter name or ARN. None when it cannot be read."""
        try:
            if value_from.startswith("arn:") and ":secretsmanager:" in value_from:
                parts = value_from.split(":")
                secret_id, extra = ":".join(parts[:7]), [*parts[7:], "", "", ""]
                json_key, stage, version = extra[0], extra[1] or None, extra[2] or None
                backend = secretsmanager_backends[ACCOUNT_ID][parts[3] or region]
                text = str(backend.get_secret_value(secret_id, version, stage).get("SecretString") or "")  # type: ignore[arg-type]
                return str(json.loads(text)[json_key]) if json_key else text
            arn_region = value_from.split(":")[3] if value_from.startswith("arn:") else region
            parameter = ssm_backends[ACCOUNT_ID][arn_region].get_parameter(value_from)
            return None if parameter is None else parameter.decrypt(parameter.value)  # SecureString decrypted
        except Exception:  # not found, deleted, not JSON, no such key: the agent cannot read it either
            return None
