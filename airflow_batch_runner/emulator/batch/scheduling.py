"""Fair-share scheduling policies, the fair-share fields of queues and jobs, and the order in which a queue
offers its waiting jobs to the compute environments, as pure rules.

AWS: a queue without a scheduling policy is FIFO and can never get one; a queue with one can have it
replaced, never removed. A job on a fair-share queue needs a shareIdentifier; a job on a FIFO queue
may not have one. Priorities go from 0 to 9999.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from airflow_batch_runner.emulator.batch.jobs import Job
from airflow_batch_runner.emulator.batch.validation import ClientException

SHARE_IDENTIFIER_RE = re.compile(r"^[A-Za-z0-9]{1,255}\*?$")
MAX_SHARE_DECAY_SECONDS = 604_800
MAX_SHARE_DISTRIBUTION = 500
MIN_WEIGHT, MAX_WEIGHT = 0.0001, 999.9999
MAX_PRIORITY = 9999


def check_share_identifier(value: Any, field: str) -> None:
    if not isinstance(value, str) or not SHARE_IDENTIFIER_RE.match(value):
        raise ClientException(
            f"{field} {value!r} is invalid: up to 255 letters and numbers, optionally followed by an asterisk (*)"
        )


def check_priority(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_PRIORITY:
        raise ClientException(f"{field} must be an integer from 0 to {MAX_PRIORITY}, got {value!r}")
    return value


def fairshare_policy(policy: Mapping[str, Any] | None) -> dict[str, Any]:
    """A validated fairsharePolicy, as DescribeSchedulingPolicies reports it."""
    out = dict(policy or {})
    decay = out.get("shareDecaySeconds", 0)
    if not isinstance(decay, int) or not 0 <= decay <= MAX_SHARE_DECAY_SECONDS:
        raise ClientException(
            f"fairsharePolicy.shareDecaySeconds must be from 0 to {MAX_SHARE_DECAY_SECONDS}, got {decay!r}"
        )
    reservation = out.get("computeReservation", 0)
    if not isinstance(reservation, int) or not 0 <= reservation <= 99:
        raise ClientException(f"fairsharePolicy.computeReservation must be from 0 to 99, got {reservation!r}")
    shares = out.get("shareDistribution") or []
    if len(shares) > MAX_SHARE_DISTRIBUTION:
        raise ClientException(f"fairsharePolicy.shareDistribution can have at most {MAX_SHARE_DISTRIBUTION} entries")
    identifiers: list[str] = []
    for share in shares:
        identifier = share.get("shareIdentifier")
        check_share_identifier(identifier, "fairsharePolicy.shareDistribution shareIdentifier")
        weight = share.get("weightFactor", 1.0)
        if not isinstance(weight, int | float) or not MIN_WEIGHT <= weight <= MAX_WEIGHT:
            raise ClientException(
                f"weightFactor of share {identifier} must be from {MIN_WEIGHT} to {MAX_WEIGHT}, got {weight!r}"
            )
        for other in identifiers:
            if _overlap(identifier, other):
                raise ClientException(f"shareDistribution identifiers {other!r} and {identifier!r} overlap")
        identifiers.append(identifier)
    return out


def _overlap(a: str, b: str) -> bool:
    """Whether two share identifiers (either may be a prefix ending in *) can name the same share."""
    a_prefix, b_prefix = a.endswith("*"), b.endswith("*")
    a_text, b_text = a.rstrip("*"), b.rstrip("*")
    if a_prefix and b_prefix:
        return a_text.startswith(b_text) or b_text.startswith(a_text)
    if a_prefix:
        return b_text.startswith(a_text)
    if b_prefix:
        return a_text.startswith(b_text)
    return a == b


def check_job_share(queue_policy: str | None, queue_name: str, share: Any) -> None:
    """SubmitJob's shareIdentifier against its queue: required with a policy, refused without."""
    if queue_policy is None:
        if share is not None:
            raise ClientException(
                f"shareIdentifier can't be specified: job queue {queue_name} has no fair-share scheduling policy"
            )
        return
    if share is None:
        raise ClientException(
            f"shareIdentifier is required: job queue {queue_name} has a fair-share scheduling policy"
        )
    check_share_identifier(share, "shareIdentifier")


def weight_of(policy: Mapping[str, Any], share: str) -> float:
    """The weightFactor of a share identifier: its own entry, else the prefix entry (``name*``) it starts
    with, else 1.0 (AWS: identifiers not in the policy weigh 1.0). Entries never overlap."""
    for entry in policy.get("shareDistribution") or []:
        identifier = str(entry["shareIdentifier"])
        if identifier == share or (identifier.endswith("*") and share.startswith(identifier[:-1])):
            return float(entry.get("weightFactor", 1.0))
    return 1.0


def reserved_ratio(compute_reservation: int, active_shares: int) -> float:
    """fairsharePolicy.computeReservation: the part of the maximum vCPUs kept for share identifiers not yet
    active, ``(computeReservation/100) ** ActiveFairShares`` (API reference, FairsharePolicy)."""
    return (compute_reservation / 100) ** active_shares if compute_reservation and active_shares else 0.0


def fifo_order(jobs: Iterable[Job]) -> list[Job]:
    """A FIFO queue's jobs in the order it offers them: by submission."""
    return sorted(jobs, key=lambda job: job.fifo_key)


def fair_share_order(
    jobs: Iterable[Job], usage: Callable[[str], float], weight: Callable[[str], float]
) -> Iterator[Job]:
    """A fair-share queue's jobs in the order it offers them (AWS Batch user guide, "Use share identifiers to
    identify workloads"): next from the share whose usage times weightFactor is lowest (a tie goes to the share
    whose next job was submitted first); within a share, higher schedulingPriority first, then by submission.
    ``usage`` is read before each pick, so jobs placed meanwhile count."""
    by_share: dict[str, list[Job]] = {}
    ranked = sorted(jobs, key=lambda job: (-(job.scheduling_priority or 0), job.fifo_key), reverse=True)
    for job in ranked:  # each share's list ends with its next job
        by_share.setdefault(job.share_identifier or "", []).append(job)
    while by_share:
        share = min(by_share, key=lambda s: (usage(s) * weight(s), by_share[s][-1].fifo_key))
        waiting = by_share[share]
        job = waiting.pop()
        if not waiting:
            del by_share[share]
        yield job
