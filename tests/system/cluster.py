"""A real Airflow on this machine: API server, scheduler, DAG processor and triggerer, wired to the
emulator, with its home in a temporary directory. Used by the system tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
TERMINAL = {"success", "failed"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    home: Path
    url: str
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _token: str | None = None

    @property
    def password(self) -> str:
        generated = self.home / "simple_auth_manager_passwords.json.generated"
        return str(json.loads(generated.read_text())["admin"])

    def token(self) -> str:
        if self._token is None:
            body = json.dumps({"username": "admin", "password": self.password}).encode()
            req = urllib.request.Request(f"{self.url}/auth/token", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as resp:
                self._token = str(json.loads(resp.read())["access_token"])
        return self._token

    def api(self, method: str, path: str, payload: Any = None, accept: str = "application/json") -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(
            f"{self.url}/api/v2{path}", data=data, method=method,
            headers={"Authorization": f"Bearer {self.token()}", "Content-Type": "application/json",
                     "Accept": accept},
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            raw = resp.read()
        return json.loads(raw) if raw and accept == "application/json" else raw.decode()

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.api("GET", f"/dags/{dag_id}")
                return
            except urllib.error.HTTPError:
                time.sleep(1)
        raise AssertionError(f"DAG {dag_id} was not parsed within {timeout} s; see {self.home}/logs")

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        self.wait_for_dag(dag_id)
        self.api("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
        return str(run["dag_run_id"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = str(self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])
            if state in TERMINAL:
                return state
            time.sleep(1)
        raise AssertionError(f"run {run_id} of {dag_id} did not finish within {timeout} s")

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        entry = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}")
        value = entry["value"]
        return json.loads(value) if isinstance(value, str) else value

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        raw = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}")
        content = raw.get("content", raw)
        if isinstance(content, list):
            return "\n".join(json.dumps(c) if not isinstance(c, str) else c for c in content)
        return str(content)


def aws_connection(emulator_url: str) -> dict[str, str]:
    """The ``aws_default`` connection every process uses: the emulator's endpoint."""
    return {"AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
        {"conn_type": "aws", "login": "testing", "password": "testing",
         "extra": {"endpoint_url": emulator_url, "region_name": "us-east-1"}}
    )}


@contextmanager
def running_airflow(
    emulator_url: str, variables: dict[str, str], dags: list[Path], config: dict[str, str] | None = None
) -> Iterator[Cluster]:
    home = Path(os.environ.get("ABR_SYSTEM_HOME") or _mkdtemp())
    dags_dir = home / "dags"
    dags_dir.mkdir(parents=True, exist_ok=True)
    for dag in dags:
        shutil.copy(dag, dags_dir / dag.name)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_dir),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API_AUTH__JWT_SECRET": Fernet.generate_key().decode(),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "3",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        **aws_connection(emulator_url),
        **{f"AIRFLOW_VAR_{k.upper()}": v for k, v in variables.items()},
        **(config or {}),
    }
    airflow = [sys.executable, "-m", "airflow"]
    subprocess.run([*airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    cluster = Cluster(home=home, url=url, env=env)
    try:
        for name in COMPONENTS:
            args = [*airflow, name] + (["--host", "127.0.0.1", "--port", str(port)] if name == "api-server" else [])
            log = open(home / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
            cluster.procs[name] = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT,
                                                   start_new_session=True)
        _wait_healthy(cluster)
        yield cluster
    finally:
        for proc in cluster.procs.values():
            _stop(proc)


@contextmanager
def another_triggerer(cluster: Cluster, **config: str) -> Iterator[subprocess.Popen[bytes]]:
    """A second ``airflow triggerer`` beside the cluster's, with ``[triggerer]`` options of its own
    (e.g. ``triggerer_health_check_threshold="10"``); its output in ``<home>/triggerer-2.log``."""
    env = {**cluster.env, **{f"AIRFLOW__TRIGGERER__{k.upper()}": v for k, v in config.items()}}
    env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] = str(free_port())
    log = open(cluster.home / "triggerer-2.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen([sys.executable, "-m", "airflow", "triggerer"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        _stop(proc)
        log.close()


@contextmanager
def stalled(proc: subprocess.Popen[bytes]) -> Iterator[None]:
    """The process and its children stopped (SIGSTOP) as a stuck host or a long pause would, until the block
    ends (SIGCONT)."""
    os.killpg(proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(proc.pid, signal.SIGCONT)


def _mkdtemp() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="abr-system-")


def _wait_healthy(cluster: Cluster, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in cluster.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"airflow {name} exited with {proc.returncode}; see {cluster.home}/{name}.log")
        try:
            with urllib.request.urlopen(f"{cluster.url}/api/v2/monitor/health", timeout=5) as resp:
                health = json.loads(resp.read())
            if health.get("scheduler", {}).get("status") == "healthy" and \
                    health.get("triggerer", {}).get("status") == "healthy":
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1)
    raise RuntimeError(f"Airflow did not become healthy within {timeout} s; see {cluster.home}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
