"""What a compute environment stands on, in the emulator's other services (moto): its ECS cluster and
the EC2 instance types it may launch."""

from __future__ import annotations

from moto.ec2.models.instance_types import INSTANCE_FAMILIES, INSTANCE_TYPES
from moto.ecs.models import ecs_backends

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
