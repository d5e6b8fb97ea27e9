"""Container log lines into moto's CloudWatch Logs, as the awslogs driver would send them.

CloudWatch Logs makes an event readable a little after it was sent (its ingestion delay). The sink
holds each batch of lines for ``ingestion_delay`` seconds, then hands it to moto's backend in the
order the lines were written: until then neither GetLogEvents nor FilterLogEvents sees them, and
once there every moto semantic (forward tokens, ordering, event ids, ingestionTime) is moto's own.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from typing import Any

from moto.logs.exceptions import ResourceAlreadyExistsException, ResourceNotFoundException
from moto.logs.models import logs_backends

from airflow_batch_runner.emulator.batch.resources import ACCOUNT_ID

# Seconds between a line's write and the moment reads see it; `--logs-ingestion-delay` changes it.
DEFAULT_INGESTION_DELAY = 0.5


class LogsSink:
    def __init__(self, ingestion_delay: float = DEFAULT_INGESTION_DELAY) -> None:
        self.lock = threading.Lock()  # moto's Logs backend: held by writers and by the router's readers
        self._initial_delay = self._checked(ingestion_delay)
        self.ingestion_delay = self._initial_delay
        self._pending: deque[tuple[float, str, str, str, list[dict[str, Any]]]] = deque()
        self._wakeup = threading.Condition()
        self._flusher: threading.Thread | None = None

    @staticmethod
    def _checked(delay: Any) -> float:
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= 60:
            raise ValueError(f"ingestion_delay must be a number of seconds from 0 to 60; got {delay!r}")
        return float(delay)

    def _backend(self, region: str) -> Any:
        return logs_backends[ACCOUNT_ID][region]

    def preload(self, region: str) -> None:
        """Load moto's Logs backend now (with botocore's endpoint data) rather than when a job starts."""
        self._backend(region)

    def stream_names(self, region: str, group: str) -> list[str] | None:
        """The names of a log group's streams (None: no such group); call with ``lock`` held."""
        found = self._backend(region).groups.get(group)
        return None if found is None else list(found.streams)

    def open_stream(self, region: str, group: str, stream: str) -> None:
        backend = self._backend(region)
        with self.lock:
            try:
                backend.create_log_group(group, tags={})
            except ResourceAlreadyExistsException:
                pass
            try:
                backend.create_log_stream(group, stream)
            except ResourceAlreadyExistsException:
                pass

    def put(self, region: str, group: str, stream: str, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        with self._wakeup:
            if self.ingestion_delay <= 0 and not self._pending:
                self._ingest(region, group, stream, events)
                return
            self._pending.append((time.monotonic() + self.ingestion_delay, region, group, stream, events))
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_forever, name="logs-ingestion", daemon=True)
                self._flusher.start()
            self._wakeup.notify()

    def _ingest(self, region: str, group: str, stream: str, events: list[dict[str, Any]]) -> None:
        with self.lock:
            try:
                self._backend(region).put_log_events(group, stream, events)
            except ResourceNotFoundException:
                pass  # the group or stream was deleted while the container ran: AWS drops the lines too

    def _flush_forever(self) -> None:
        """Hand batches to moto once due, strictly in the order they were written (a lowered delay
        never lets a later line overtake an earlier one)."""
        with self._wakeup:
            while True:
                while not self._pending:
                    self._wakeup.wait()
                due = self._pending[0][0]
                now = time.monotonic()
                if due > now:
                    self._wakeup.wait(due - now)
                    continue
                _, region, group, stream, events = self._pending.popleft()
                try:
                    self._ingest(region, group, stream, events)
                except Exception as exc:  # one refused batch must not stop every later line
                    print(f"emulator: {len(events)} log events of {group}/{stream} dropped: {exc!r}",
                          file=sys.stderr, flush=True)

    def configure(self, spec: dict[str, Any]) -> None:
        """``{"ingestion_delay": seconds}``; 0 makes lines readable as soon as they are written."""
        unknown = set(spec) - {"ingestion_delay"}
        if unknown:
            raise ValueError(f"unknown logs settings {sorted(unknown)}; use 'ingestion_delay'")
        if "ingestion_delay" in spec:
            delay = self._checked(spec["ingestion_delay"])
            with self._wakeup:
                self.ingestion_delay = delay
                # Batches already waiting keep their own due time; a lowered delay takes effect with them.
                self._wakeup.notify()

    def settings(self) -> dict[str, Any]:
        with self._wakeup:
            return {"ingestion_delay": self.ingestion_delay, "pending_batches": len(self._pending)}

    def reset(self) -> None:
        """Back to the delay the emulator started with; lines not yet ingested are dropped with the backend."""
        with self._wakeup:
            self._pending.clear()
            self.ingestion_delay = self._initial_delay
