"""Start the emulator in a child process, for tests, benchmarks and the demo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

READY_PREFIX = "ready "


@contextmanager
def running_emulator(
    step_delay: float = 0.05, extra_args: Sequence[str] = (), startup_timeout: float = 60.0
) -> Iterator[str]:
    """Yield the endpoint URL of an emulator running in a child process; stop it on exit."""
    cmd = [
        sys.executable, "-m", "airflow_batch_runner.emulator",
        "--host", "127.0.0.1", "--port", "0", "--step-delay", str(step_delay), *extra_args,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        url = _wait_ready(proc, startup_timeout)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc.stdout:
            proc.stdout.close()


def _wait_ready(proc: subprocess.Popen[str], timeout: float) -> str:
    import selectors
    import time

    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    while time.monotonic() < deadline:
        if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
            break
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"emulator exited with {proc.wait()} before it was ready")
        if line.startswith(READY_PREFIX):
            return line[len(READY_PREFIX):].strip()
    proc.kill()
    raise RuntimeError(f"emulator not ready within {timeout} s")


def control(url: str, path: str, payload: Any | None = None) -> Any:
    """Call a control endpoint (``stats``, ``faults``, ``quotas``, ``logs``, ``holds``, ``events``,
    ``interruptions``, ``timing``, ``reset``) and return its JSON answer. Without a payload, ``stats``,
    ``quotas``, ``logs``, ``holds`` and ``events`` are read (GET)."""
    data = None if payload is None else json.dumps(payload).encode()
    method = "GET" if payload is None and path in ("stats", "quotas", "logs", "holds", "events") else "POST"
    req = urllib.request.Request(f"{url}/_emulator/{path}", data=data, method=method)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")
