"""Call statistics and injected faults, keyed by ``service:Operation``."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The error each service answers when it throttles: (HTTP status, error code).
THROTTLING: dict[str, tuple[int, str]] = {
    "batch": (429, "TooManyRequestsException"),
    "logs": (400, "ThrottlingException"),
    "ecs": (400, "ThrottlingException"),
    "s3": (503, "SlowDown"),
    "ec2": (503, "RequestLimitExceeded"),
    "sts": (400, "Throttling"),
    "iam": (400, "Throttling"),
}


@dataclass
class Fault:
    throttle_rate: float = 0.0
    error_rate: float = 0.0
    error_code: str = "InternalFailure"
    error_status: int = 500
    delay: float = 0.0  # seconds to hold the answer of a call that took effect (a slow or stuck AWS)
    count: int | None = None  # faults left to inject; None is unlimited


@dataclass(frozen=True)
class Injected:
    """What to do to one call: hold it ``delay`` seconds, then fail it when ``status`` is set."""

    status: int = 0
    code: str = ""
    message: str = ""
    delay: float = 0.0

    @property
    def fails(self) -> bool:
        return self.status != 0


class FaultsAndStats:
    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._faults: dict[str, Fault] = {}
        self._injected: Counter[str] = Counter()
        self._random = random.Random(seed)
        # Calls held by a ``delay`` wait on this; replacing the fault set releases them, so a test can hold a
        # call for as long as it needs and end the hold when it has seen what it waits for.
        self._released = threading.Event()

    def configure(self, spec: Mapping[str, Mapping[str, Any]]) -> None:
        """Replace the fault set, e.g. ``{"batch:DescribeJobs": {"throttle_rate": 0.5}}``."""
        faults = {}
        for key, options in spec.items():
            if ":" not in key:
                raise ValueError(f"fault key {key!r} must be service:Operation, e.g. batch:DescribeJobs")
            unknown = set(options) - set(Fault.__dataclass_fields__)
            if unknown:
                raise ValueError(f"unknown fault options {sorted(unknown)} for {key}")
            faults[key] = Fault(**options)
        with self._lock:
            self._faults = faults
            self._released.set()
            self._released = threading.Event()

    def hold(self, injected: Injected) -> None:
        """Hold a call ``injected.delay`` seconds, or until the fault set is replaced."""
        if injected.delay:
            self._released.wait(injected.delay)

    def record(self, service: str, operation: str) -> Injected | None:
        """Count a call and say whether to fail it."""
        key = f"{service}:{operation}"
        with self._lock:
            self._calls[key] += 1
            fault = self._faults.get(key) or self._faults.get(f"{service}:*")
            if fault is None or fault.count == 0:
                return None
            roll = self._random.random()
            if roll < fault.throttle_rate:
                status, code = THROTTLING.get(service, (400, "ThrottlingException"))
                injected = Injected(status, code, "Rate exceeded")
            elif roll < fault.throttle_rate + fault.error_rate:
                injected = Injected(fault.error_status, fault.error_code, "Injected failure")
            elif fault.delay:
                injected = Injected(delay=fault.delay)
            else:
                return None
            if fault.count is not None:
                fault.count -= 1
            self._injected[key] += 1
            return injected

    def stats(self) -> dict[str, Any]:
        with self._lock:
            by_service: dict[str, dict[str, int]] = {}
            for key, count in sorted(self._calls.items()):
                service, operation = key.split(":", 1)
                by_service.setdefault(service, {})[operation] = count
            return {"calls": by_service, "injected": dict(self._injected), "total": sum(self._calls.values())}

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._injected.clear()
            self._faults.clear()
            self._released.set()
            self._released = threading.Event()
