"""GPUs: what a job asks for (its containers' ``GPU`` resource requirements) and what an EC2 compute environment
can give (the GPUs of the instance types it may launch within ``maxvCpus``).

AWS Batch places a GPU job on an instance with that many GPUs: a job asking for more than any instance type of its
queue's environments has never runs (it stays RUNNABLE, ``MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT``). The
emulator launches no instances, so it counts an environment's GPUs as a whole: the most that its GPU-richest
instance type gives when the environment runs ``maxvCpus`` worth of them; jobs placed on it hold their GPUs until
their attempt ends, as they hold their vCPUs. ``optimal`` and the ``default_*`` instance types have no GPUs (the
user guide: they are the C, M and R families).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# (vCPUs, GPUs) of each instance type an ``instanceTypes`` entry stands for: a type, or every type of a family.
InstanceGpus = Callable[[str], list[tuple[int, int]]]


@dataclass(frozen=True)
class GpuCapacity:
    per_instance: int = 0  # the most GPUs one instance of the environment can have
    total: int = 0  # the GPUs the environment can run at once within maxvCpus


def capacity(compute_resources: Mapping[str, Any] | None, instance_gpus: InstanceGpus) -> GpuCapacity:
    """An EC2 (or SPOT) environment's GPUs; none for Fargate or UNMANAGED (no instances launched here)."""
    if not compute_resources or compute_resources.get("type") not in ("EC2", "SPOT"):
        return GpuCapacity()
    max_vcpus = int(compute_resources.get("maxvCpus") or 0)
    shapes = [shape for name in compute_resources.get("instanceTypes") or [] for shape in instance_gpus(str(name))]
    with_gpus = [(vcpus, gpus) for vcpus, gpus in shapes if gpus > 0 and 0 < vcpus <= max_vcpus]
    if not with_gpus:
        return GpuCapacity()
    return GpuCapacity(per_instance=max(gpus for _, gpus in with_gpus),
                       total=max((max_vcpus // vcpus) * gpus for vcpus, gpus in with_gpus))


def job_gpus(containers: Iterable[Mapping[str, Any]]) -> int:
    """The GPUs a job's containers ask for, all together (the definition's, or the override's where it gives them)."""
    total = 0
    for container in containers:
        for requirement in container.get("resourceRequirements") or []:
            if requirement.get("type") == "GPU":
                total += int(str(requirement.get("value", "0")))
    return total
