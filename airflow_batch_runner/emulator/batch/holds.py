"""Holds, for tests: compute environments or job queues stay in their passing status (CREATING, UPDATING,
DELETING) until released, instead of settling one step after the call.

On AWS these statuses last seconds to minutes; the emulator's single step would make a test that looks at
one pass or fail by the host's load. ``POST /_emulator/holds {"jobQueues": true}`` holds every job queue's
next settling; ``{"jobQueues": false}`` releases it, and the held changes take effect in the order they
were made. A reset releases nothing: it forgets them with the resources they belonged to.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

KINDS = ("computeEnvironments", "jobQueues")


class Holds:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: set[str] = set()
        self._pending: dict[str, list[tuple[Callable[..., None], tuple[Any, ...]]]] = {k: [] for k in KINDS}

    def settle(self, kind: str, fn: Callable[..., None], *args: Any) -> None:
        """Take a resource's settling step now, or keep it for the release while ``kind`` is held."""
        with self._lock:
            if kind in self._held:
                self._pending[kind].append((fn, args))
                return
        fn(*args)

    def configure(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """``{"computeEnvironments": bool, "jobQueues": bool}`` (either or both); answers the settings."""
        unknown = set(spec) - set(KINDS)
        if unknown or not all(isinstance(value, bool) for value in spec.values()):
            raise ValueError(f"holds take {{{', '.join(repr(k) + ': true|false' for k in KINDS)}}}; got {dict(spec)}")
        released: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        with self._lock:
            for kind, hold in spec.items():
                if hold:
                    self._held.add(kind)
                elif kind in self._held:
                    self._held.discard(kind)
                    released += self._pending[kind]
                    self._pending[kind] = []
        for fn, args in released:
            fn(*args)
        return self.settings()

    def settings(self) -> dict[str, Any]:
        with self._lock:
            return {kind: {"held": kind in self._held, "pending": len(self._pending[kind])} for kind in KINDS}

    def reset(self) -> None:
        with self._lock:
            self._held.clear()
            self._pending = {k: [] for k in KINDS}
