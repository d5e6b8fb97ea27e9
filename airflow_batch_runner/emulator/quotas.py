"""AWS's documented request-rate quotas, enforced per account and Region as AWS does.

Each quota is a token bucket keyed by ``service:Operation`` and Region: a call over the rate is
answered with the service's own throttling error (``faults.THROTTLING``). On by default, so every
test meets them; ``--no-quotas`` (or ``POST /_emulator/quotas {"enabled": false}``) turns them off
for raw capacity benchmarks.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Quota:
    """``rate`` requests per second, with bursts of up to ``burst`` requests."""

    rate: float
    burst: float
    source: str = ""

    def __post_init__(self) -> None:
        if not (self.rate > 0 and self.burst >= 1):
            raise ValueError(f"a quota needs rate > 0 and burst >= 1; got rate={self.rate} burst={self.burst}")


# Per account and Region. Each entry names where AWS documents it.
DEFAULT_QUOTAS: dict[str, Quota] = {
    "batch:SubmitJob": Quota(50, 50, "AWS Batch service quotas: SubmitJob, 50 transactions per second"),
    "logs:FilterLogEvents": Quota(
        5, 5, "CloudWatch Logs quotas: FilterLogEvents, 5 transactions per second per account and Region, "
        "not adjustable (AWS re:Post knowledge center, 'How do I determine throttling in my CloudWatch logs?')",
    ),
    "logs:GetLogEvents": Quota(
        25, 25, "CloudWatch Logs quotas (docs.aws.amazon.com AmazonCloudWatch/latest/logs/cloudwatch_limits_cwl): "
        "GetLogEvents, 25 transactions per second per account and Region",
    ),
    "logs:CreateLogStream": Quota(
        50, 50, "CloudWatch Logs API reference, CreateLogStream: a limit of 50 TPS, after which transactions "
        "are throttled",
    ),
}


class _Bucket:
    def __init__(self, quota: Quota, now: float) -> None:
        self.quota = quota
        self.tokens = quota.burst
        self.updated = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.quota.burst, self.tokens + (now - self.updated) * self.quota.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class RateQuotas:
    def __init__(
        self,
        quotas: Mapping[str, Quota] | None = None,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._initial = (dict(DEFAULT_QUOTAS if quotas is None else quotas), enabled)
        self._clock = clock
        self._lock = threading.Lock()
        self._quotas, self.enabled = dict(self._initial[0]), enabled
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._throttled: Counter[str] = Counter()

    def admit(self, service: str, operation: str, region: str) -> bool:
        """Whether a call fits its quota now (a call without a quota always does)."""
        key = f"{service}:{operation}"
        with self._lock:
            quota = self._quotas.get(key)
            if not self.enabled or quota is None:
                return True
            now = self._clock()
            bucket = self._buckets.get((key, region))
            if bucket is None:
                bucket = self._buckets[(key, region)] = _Bucket(quota, now)
            if bucket.take(now):
                return True
            self._throttled[key] += 1
            return False

    def configure(self, spec: Mapping[str, Any]) -> None:
        """``{"enabled": false}``, and/or ``{"quotas": {"batch:SubmitJob": {"rate": 5, "burst": 5}}}``."""
        unknown = set(spec) - {"enabled", "quotas"}
        if unknown:
            raise ValueError(f"unknown quota settings {sorted(unknown)}; use 'enabled' and 'quotas'")
        with self._lock:
            quotas = dict(self._quotas)
            for key, options in (spec.get("quotas") or {}).items():
                if key not in quotas:
                    raise ValueError(f"no quota {key!r}; known: {sorted(quotas)}")
                bad = set(options) - {"rate", "burst"}
                if bad:
                    raise ValueError(f"unknown options {sorted(bad)} for quota {key}; use rate and burst")
                old = quotas[key]
                quotas[key] = replace(
                    old, rate=float(options.get("rate", old.rate)), burst=float(options.get("burst", old.burst))
                )
            self._quotas = quotas
            if "enabled" in spec:
                self.enabled = bool(spec["enabled"])
            self._buckets.clear()

    def reset(self) -> None:
        """Back to the settings the emulator started with, every bucket full."""
        with self._lock:
            self._quotas, self.enabled = dict(self._initial[0]), self._initial[1]
            self._buckets.clear()
            self._throttled.clear()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "enabled": self.enabled,
                "limits": {k: {"rate": q.rate, "burst": q.burst, "source": q.source} for k, q in self._quotas.items()},
                "throttled": dict(self._throttled),
            }
