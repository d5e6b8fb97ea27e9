"""Container log lines into moto's CloudWatch Logs, as the awslogs driver would send them."""

from __future__ import annotations

import threading
from typing import Any

from moto.logs.exceptions import ResourceAlreadyExistsException
from moto.logs.models import logs_backends

from airflow_batch_runner.emulator.batch.resources import ACCOUNT_ID


class LogsSink:
    def __init__(self) -> None:
        self.lock = threading.Lock()

    def _backend(self, region: str) -> Any:
        return logs_backends[ACCOUNT_ID][region]

    def preload(self, region: str) -> None:
        """Load moto's Logs backend now (with botocore's endpoint data) rather than when a job starts."""
        self._backend(region)

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
        if events:
            with self.lock:
                self._backend(region).put_log_events(group, stream, events)
