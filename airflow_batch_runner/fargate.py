"""The cpu/memory combinations AWS Fargate offers for a task: a fact of AWS, shared by the job
builder (to refuse a bad request early) and the emulator (to refuse it as AWS does)."""

from __future__ import annotations

# vCPU -> allowed MiB of memory.
FARGATE_MEMORY: dict[float, range | tuple[int, ...]] = {
    0.25: (512, 1024, 2048),
    0.5: range(1024, 4096 + 1, 1024),
    1.0: range(2048, 8192 + 1, 1024),
    2.0: range(4096, 16384 + 1, 1024),
    4.0: range(8192, 30720 + 1, 1024),
    8.0: range(16384, 61440 + 1, 4096),
    16.0: range(32768, 122880 + 1, 8192),
}


def is_valid_fargate_pair(vcpu: float, memory: int) -> bool:
    allowed = FARGATE_MEMORY.get(vcpu)
    return allowed is not None and memory in allowed


def describe_fargate_pairs() -> str:
    parts = []
    for vcpu, memory in FARGATE_MEMORY.items():
        if isinstance(memory, range):
            parts.append(f"{vcpu:g} vCPU: {memory.start}-{memory.stop - 1} MiB in steps of {memory.step}")
        else:
            parts.append(f"{vcpu:g} vCPU: {', '.join(map(str, memory))} MiB")
    return "; ".join(parts)
