"""What a compute environment stands on, in the emulator's other services (moto): its ECS cluster, the EC2
instance types it may launch and the IAM roles and instance profiles it names."""

from __future__ import annotations

import json
from typing import Any

from moto.ec2.models.instance_types import INSTANCE_FAMILIES, INSTANCE_TYPES
from moto.ecs.models import ecs_backends
from moto.efs.models import efs_backends
from moto.iam.models import iam_backends
from moto.secretsmanager.models import secretsmanager_backends
from moto.ssm.models import ssm_backends

from airflow_batch_runner.emulator.batch.ecs_side import EcsTask
from airflow_batch_runner.emulator.batch.resources import ACCOUNT_ID

ECS_INSTANCE_ROLE = "ecsInstanceRole"


class MotoInfrastructure:
    """ECS clusters in moto's ECS, so that ``ecsClusterArn`` names a cluster ECS can describe, and the jobs'
    task definitions and tasks in them (``ecs_side.py``)."""

    def __init__(self) -> None:
        # Job definition ARN -> the ECS task definition registered for it.
        self._task_definitions: dict[str, str] = {}
        # Task ARN -> the status its cluster's counts hold it in.
        self._counted: dict[str, str] = {}

    def create_cluster(self, region: str, name: str) -> str:
        return str(ecs_backends[ACCOUNT_ID][region].create_cluster(cluster_name=name).arn)

    def delete_cluster(self, region: str, arn: str) -> None:
        backend = ecs_backends[ACCOUNT_ID][region]
        name = arn.rsplit("/", 1)[-1]
        if name in backend.clusters:
            backend.delete_cluster(name)
            backend.clusters.pop(name, None)
        backend.tasks.pop(name, None)

    def run_task(self, region: str, definition_arn: str, request: dict[str, Any], task: EcsTask) -> None:
        """``task`` in its cluster, from the task definition of ``definition_arn``: registered from ``request``
        at its first job, and again when the caller deregistered (or deleted) that revision."""
        backend = ecs_backends[ACCOUNT_ID][region]
        known = self._task_definitions.get(definition_arn)
        family, _, revision = (known or "").rsplit("/", 1)[-1].partition(":")
        current = backend.task_definitions.get(family, {}).get(int(revision)) if known else None
        if current is None or current.status != "ACTIVE":
            current = backend.register_task_definition(
                family=request["family"],
                container_definitions=request["containerDefinitions"],
                volumes=request.get("volumes"),
                network_mode=request.get("networkMode"),
                requires_compatibilities=request["requiresCompatibilities"],
                cpu=request.get("cpu"),
                memory=request.get("memory"),
                task_role_arn=request.get("taskRoleArn"),
                execution_role_arn=request.get("executionRoleArn"),
                runtime_platform=request.get("runtimePlatform"),
                ipc_mode=request.get("ipcMode"),
                pid_mode=request.get("pidMode"),
                ephemeral_storage=request.get("ephemeralStorage"),
            )
            self._task_definitions[definition_arn] = current.arn
        task.task_definition_arn, task.group = current.arn, f"family:{request['family']}"
        task.cpu, task.memory = request.get("cpu"), request.get("memory")
        # moto's ECS lists, filters and describes it with its own tasks (the same attributes).
        tasks: dict[str, Any] = backend.tasks.setdefault(task.cluster_arn.rsplit("/", 1)[-1], {})
        tasks[task.task_arn] = task
        self.task_changed(region, task)

    def task_changed(self, region: str, task: EcsTask) -> None:
        """The cluster's DescribeClusters counts follow its tasks' statuses (counted per change: an array job's
        10,000 children must not recount the cluster each time)."""
        cluster = ecs_backends[ACCOUNT_ID][region].clusters.get(task.cluster_arn.rsplit("/", 1)[-1])
        before, now = self._counted.get(task.task_arn), task.last_status
        self._counted[task.task_arn] = now
        if cluster is None or before == now:
            return
        for status, step in ((before, -1), (now, 1)):
            if status == "RUNNING":
                cluster.running_tasks_count += step
            elif status == "PENDING":
                cluster.pending_tasks_count += step

    def known_instance_type(self, name: str) -> bool:
        return name in INSTANCE_TYPES or name in INSTANCE_FAMILIES

    def instance_gpus(self, name: str) -> list[tuple[int, int]]:
        """(vCPUs, GPUs) of the instance type ``name``, or of each type of the family ``name``, from EC2's own
        DescribeInstanceTypes data (moto's); ``optimal`` and ``default_*`` stand for no GPU type."""
        names = [name] if name in INSTANCE_TYPES else [t for t in INSTANCE_TYPES if t.split(".", 1)[0] == name]
        shapes = []
        for each in names:
            info = INSTANCE_TYPES[each]
            count = sum(int(gpu.get("Count", 0)) for gpu in (info.get("GpuInfo") or {}).get("Gpus") or [])
            shapes.append((int(info["VCpuInfo"]["DefaultVCpus"]), count))
        return shapes

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

    def registry_credentials(self, region: str, ref: str) -> str | None:
        """The SecretString of a container's ``repositoryCredentials.credentialsParameter`` (a secret's ARN, or its
        name in the job's Region), as the ECS agent reads it to pull the image. None when it cannot be read."""
        try:
            secret_region = ref.split(":")[3] if ref.startswith("arn:") else region
            backend = secretsmanager_backends[ACCOUNT_ID][secret_region or region]
            return str(backend.get_secret_value(ref, None, None).get("SecretString") or "")  # type: ignore[arg-type]
        except Exception:  # not found, deleted, no string: the agent cannot read it either
            return None

    def file_system_exists(self, region: str, file_system_id: str) -> bool:
        """An EFS file system of the Region (created with EFS's CreateFileSystem at the emulator's endpoint)."""
        return file_system_id in efs_backends[ACCOUNT_ID][region].file_systems_by_id

    def role_exists(self, ref: str) -> bool:
        """An IAM role by ARN or by name (``/path/name`` for a role with a path), as Batch reads serviceRole."""
        iam = iam_backends[ACCOUNT_ID]["aws"]
        if ref.startswith("arn:"):
            return any(role.arn == ref for role in iam.get_roles())
        path, _, name = ref.rpartition("/")
        wanted = f"/{path.strip('/')}/" if path.strip("/") else "/"
        return any(role.name == name and role.path == wanted for role in iam.get_roles())

    def instance_profile_exists(self, ref: str) -> bool:
        """An IAM instance profile by short name or ARN, as Batch reads computeResources.instanceRole."""
        iam = iam_backends[ACCOUNT_ID]["aws"]
        return any(ref in (profile.name, profile.arn) for profile in iam.get_instance_profiles())

    def seed_account(self) -> None:
        """What the Batch console's first run creates in an account: the ``ecsInstanceRole`` role and instance
        profile (a fresh emulator, and every reset, starts with them)."""
        iam = iam_backends[ACCOUNT_ID]["aws"]
        if any(profile.name == ECS_INSTANCE_ROLE for profile in iam.get_instance_profiles()):
            return
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                         "Principal": {"Service": "ec2.amazonaws.com"}}]}
        if not self.role_exists(ECS_INSTANCE_ROLE):
            iam.create_role(ECS_INSTANCE_ROLE, json.dumps(trust), "/", None, "", [], None)
        iam.create_instance_profile(ECS_INSTANCE_ROLE, "/", [ECS_INSTANCE_ROLE])
