"""The cpu/memory combinations Fargate offers, checked against AWS's published table."""

from __future__ import annotations

import pytest

from airflow_batch_runner.fargate import FARGATE_MEMORY, describe_fargate_pairs, is_valid_fargate_pair

# AWS documentation, "Task CPU and memory" for Fargate, written out in GiB as the table gives it.
AWS_TABLE_GIB: dict[float, list[float]] = {
    0.25: [0.5, 1, 2],
    0.5: [1, 2, 3, 4],
    1: [2, 3, 4, 5, 6, 7, 8],
    2: [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
    4: list(range(8, 31)),
    8: [16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60],
    16: [32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120],
}
AWS_PAIRS = {(cpu, int(gib * 1024)) for cpu, gibs in AWS_TABLE_GIB.items() for gib in gibs}


def test_offered_pairs_are_exactly_awss_table():
    offered = {(cpu, memory) for cpu, memories in FARGATE_MEMORY.items() for memory in memories}
    assert offered == AWS_PAIRS
    assert len(offered) == 74


@pytest.mark.parametrize(("cpu", "memory"), sorted(AWS_PAIRS))
def test_every_published_pair_is_valid(cpu, memory):
    assert is_valid_fargate_pair(cpu, memory)


def test_no_other_pair_on_a_fine_grid_is_valid():
    cpus = [0.125, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8, 12, 16, 32]
    for cpu in cpus:
        for memory in range(256, 131072 + 1, 256):
            assert is_valid_fargate_pair(cpu, memory) == ((cpu, memory) in AWS_PAIRS), (cpu, memory)


@pytest.mark.parametrize(
    ("cpu", "memory"),
    [
        (0.25, 3072),
        (0.5, 512),
        (1, 1024),
        (1, 9216),
        (2, 17408),
        (4, 31744),
        (8, 18432),
        (16, 36864),
        (16, 131072),
        (3, 6144),
        (0, 0),
    ],
)
def test_pairs_fargate_does_not_offer_are_invalid(cpu, memory):
    assert not is_valid_fargate_pair(cpu, memory)


def test_integer_and_float_vcpus_are_the_same():
    assert is_valid_fargate_pair(1, 2048)
    assert is_valid_fargate_pair(1.0, 2048)
    assert is_valid_fargate_pair(16, 122880)


def test_description_lists_every_vcpu_with_its_memory_range():
    text = describe_fargate_pairs()
    assert text.split("; ") == [
        "0.25 vCPU: 512, 1024, 2048 MiB",
        "0.5 vCPU: 1024-4096 MiB in steps of 1024",
        "1 vCPU: 2048-8192 MiB in steps of 1024",
        "2 vCPU: 4096-16384 MiB in steps of 1024",
        "4 vCPU: 8192-30720 MiB in steps of 1024",
        "8 vCPU: 16384-61440 MiB in steps of 4096",
        "16 vCPU: 32768-122880 MiB in steps of 8192",
    ]
