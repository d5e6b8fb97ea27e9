"""The stand-in for ECS: runs each container of a job's task as a local process.

One asyncio loop in its own thread owns every process: pipes and pidfds are watched by the loop,
so a thousand running containers cost no thread each. The image is not pulled; the host's shell
and the AWS CLI stand in for it.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from airflow_batch_runner.emulator.batch import awscli, task_settings
from airflow_batch_runner.emulator.batch import volumes as batch_volumes
from airflow_batch_runner.emulator.batch.containers import (
    ContainerRuntime,
    TaskRuntime,
    container_environment,
    container_mounts,
    dependency_verdict,
    map_container_paths,
)
from airflow_batch_runner.emulator.batch.jobs import (
    ESSENTIAL_EXITED,
    ContainerResult,
    Job,
    TaskResult,
    awslogs_target,
)
from airflow_batch_runner.emulator.cloudwatch import LogsSink

STOP_GRACE_SECONDS = 2.0
# Threads running the AWS CLI image's s3 cp commands inside the emulator (see awscli.py).
CLI_THREADS = 4
AWS_CLI_IMAGE = re.compile(r"(^|/)(aws-cli|awscli)(:|@|$)")
DEFAULT_UNPULLABLE = r"(does-not-exist|nonexistent)"


class ProcessRunner:
    """Timers and container processes for every job of the emulator."""

    def __init__(
        self, endpoint_url: Callable[[], str], logs: LogsSink, unpullable: str = DEFAULT_UNPULLABLE,
        cli_in_process: bool = True,
    ):
        self._endpoint_url = endpoint_url
        self._logs = logs
        self._unpullable = re.compile(unpullable)
        self._root = Path(tempfile.mkdtemp(prefix="batch-emulator-"))
        self._tasks: set[TaskRuntime] = set()
        self._closed = False  # set on the loop by shutdown(): from then on no process starts
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="batch-runner", daemon=True)
        self._thread.start()
        bin_dir = str(Path(sys.executable).parent)
        self._path = os.pathsep.join([bin_dir, os.environ.get("PATH", "/usr/bin:/bin")])
        self._aws = shutil.which("aws", path=self._path) or "aws"
        self._cli_in_process = cli_in_process
        self._cli_pool = ThreadPoolExecutor(CLI_THREADS, thread_name_prefix="aws-cli")
        self._s3 = awscli.S3Client()
        self.cli_runs = {"in_process": 0, "processes": 0}

    # Scheduler protocol

    def call_later(self, delay: float, fn: Callable[..., None], *args: Any) -> None:
        self.loop.call_soon_threadsafe(self.loop.call_later, delay, fn, *args)

    def start_task(self, job: Job, on_stopped: Callable[[Job, TaskResult], None]) -> None:
        attempt = job.current_attempt
        assert attempt is not None
        root = self._root / job.job_id / attempt.task_id
        task = TaskRuntime(job=job, on_stopped=on_stopped, root=root, mounts={})
        for spec in job.containers:
            task.containers[spec["name"]] = ContainerRuntime(
                spec=spec, essential=bool(spec.get("essential", True)), log_target=self._log_target(job, spec)
            )
        job.runtime = task
        self.loop.call_soon_threadsafe(self._launch, task)

    def stop_task(self, job: Job) -> None:
        task = job.runtime
        if isinstance(task, TaskRuntime):
            self.loop.call_soon_threadsafe(self._stop, task)

    def shutdown(self) -> None:
        """Kill every process still running and stop the loop."""
        done = threading.Event()

        def kill_all() -> None:
            # Launches already queued on the loop run after this one: they must not start processes
            # that nothing would stop any more.
            self._closed = True
            for task in list(self._tasks):
                for container in task.containers.values():
                    self._signal(container, signal.SIGKILL)
            done.set()

        self.loop.call_soon_threadsafe(kill_all)
        done.wait(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self._cli_pool.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(self._root, ignore_errors=True)

    # The task

    def _log_target(self, job: Job, spec: Mapping[str, Any]) -> tuple[str, str] | None:
        attempt = job.current_attempt
        assert attempt is not None
        return awslogs_target(job, spec, attempt.task_id)

    def _launch(self, task: TaskRuntime) -> None:
        if self._closed:
            return
        self._tasks.add(task)
        try:
            self._prepare(task)
        except Exception as exc:  # an emulator bug must fail the job, not hang it
            task.failure_reason = f"CannotStartContainerError: {exc!r}"
            self._stop(task)

    def _prepare(self, task: TaskRuntime) -> None:
        job = task.job
        if job.stop_reason:
            self._stop(task)
            return
        volumes = (job.ecs_task or job.container or {}).get("volumes") or []
        volume_dirs = {}
        for volume in volumes:
            path = batch_volumes.directory(self._root, volume) or task.root / "volumes" / volume["name"]
            path.mkdir(parents=True, exist_ok=True)
            volume_dirs[volume["name"]] = str(path)
        for container in task.containers.values():
            for mount in container.spec.get("mountPoints") or []:
                if mount.get("sourceVolume") in volume_dirs and mount.get("containerPath"):
                    task.mounts[mount["containerPath"]] = volume_dirs[mount["sourceVolume"]]
            for number, path in enumerate(task_settings.tmpfs_paths(container.spec)):
                directory = task.root / "tmpfs" / container.name / str(number)
                directory.mkdir(parents=True, exist_ok=True)
                container.tmpfs[path] = str(directory)
        self._progress(task)

    def _progress(self, task: TaskRuntime) -> None:
        """Start what can start, settle what never will, and end the task when it is over."""
        if task.finished or self._closed:
            return
        changed = True
        while changed and not task.stopping:
            changed = False
            for container in task.containers.values():
                if container.started or container.stopped:
                    continue
                verdict = dependency_verdict(task, container)
                if verdict == "ready":
                    try:
                        self._start_container(task, container)
                    except Exception as exc:  # an emulator bug must fail the container, not hang the job
                        container.started, container.stopped = False, True
                        container.reason = task.failure_reason = f"CannotStartContainerError: {exc!r}"
                    changed = True
                elif verdict == "never":
                    container.stopped = True
                    container.reason = "DependencyNotSatisfied: a container it depends on did not meet its condition"
                    changed = True
        if not task.stopping and any(c.essential and c.stopped for c in task.containers.values()):
            self._stop(task)
            return
        if all(c.stopped for c in task.containers.values()):
            self._finish(task)

    def _environment(self, task: TaskRuntime, container: ContainerRuntime, home: Path) -> dict[str, str]:
        return container_environment(task, container, home, self._path, self._endpoint_url())

    def _start_container(self, task: TaskRuntime, container: ContainerRuntime) -> None:
        container.started = True
        image = str(container.spec.get("image", ""))
        if self._unpullable.search(image):
            container.stopped = True
            container.reason = (
                f"CannotPullContainerError: pull image manifest has been retried 5 time(s): "
                f"failed to resolve ref {image}: not found"
            )
            container.started = False
            task.failure_reason = container.reason
            return
        mounts = container_mounts(task, container)
        command = [map_container_paths(str(arg), mounts) for arg in container.spec.get("command") or []]
        home = task.root / "root" / container.name
        home.mkdir(parents=True, exist_ok=True)
        if container.log_target:
            self._logs.open_stream(task.job.region, *container.log_target)
        if AWS_CLI_IMAGE.search(image.split("@")[0]):
            env = self._environment(task, container, home)
            copy = awscli.parse(command, env) if self._cli_in_process else None
            if copy is not None:
                self.cli_runs["in_process"] += 1
                future = self._cli_pool.submit(lambda: awscli.run(copy, self._s3.get(env)))
                future.add_done_callback(
                    lambda done: self.loop.call_soon_threadsafe(self._cli_done, task, container, done)
                )
                return
            self.cli_runs["processes"] += 1
            command = [self._aws, *command]
        if not command:
            command = ["true"]  # the image's own default command is unknown here
        command = task_settings.with_ulimits(command, container.spec)
        try:
            proc = subprocess.Popen(
                command,
                cwd=home,
                env=self._environment(task, container, home),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except (OSError, ValueError) as exc:
            # ValueError: an environment the host cannot hand a process (a NUL byte, ...).
            container.stopped = True
            container.started = False
            detail = exc.strerror if isinstance(exc, OSError) else str(exc)
            container.reason = f"CannotStartContainerError: {detail}: {command[0]}"
            task.failure_reason = container.reason
            return
        container.proc = proc
        assert proc.stdout is not None
        container.pipe = os.dup(proc.stdout.fileno())
        proc.stdout.close()
        os.set_blocking(container.pipe, False)
        self.loop.add_reader(container.pipe, self._read_output, task, container)
        container.pidfd = os.pidfd_open(proc.pid)
        self.loop.add_reader(container.pidfd, self._on_exit, task, container)

    def _cli_done(self, task: TaskRuntime, container: ContainerRuntime, done: Future[tuple[int, list[str]]]) -> None:
        """An in-emulator AWS CLI copy ended: its lines to the container's log, its exit code."""
        try:
            code, lines = done.result()
        except Exception as exc:  # an emulator bug fails the container, as a crashing CLI would
            code, lines = 255, [f"emulator AWS CLI stand-in failed: {exc!r}"]
        self._emit(task, container, "".join(f"{line}\n" for line in lines).encode(), final=True)
        container.exit_code = code
        container.stopped = True
        self._progress(task)

    def _read_output(self, task: TaskRuntime, container: ContainerRuntime) -> None:
        if container.pipe is None:
            return
        chunks = []
        eof = False
        while True:
            try:
                data = os.read(container.pipe, 65536)
            except BlockingIOError:
                break
            if not data:
                eof = True
                break
            chunks.append(data)
        self._emit(task, container, b"".join(chunks), final=eof)
        if eof:
            self._close_pipe(container)

    def _emit(self, task: TaskRuntime, container: ContainerRuntime, data: bytes, final: bool) -> None:
        buffered = container.partial + data
        lines = buffered.split(b"\n")
        container.partial = b"" if final else lines.pop()
        if final and lines and lines[-1] == b"":
            lines.pop()
        if container.log_target and lines:
            stamp = int(time.time() * 1000)
            events = [{"timestamp": stamp, "message": line.decode("utf-8", "replace")} for line in lines]
            self._logs.put(task.job.region, *container.log_target, events)

    def _close_pipe(self, container: ContainerRuntime) -> None:
        if container.pipe is not None:
            self.loop.remove_reader(container.pipe)
            os.close(container.pipe)
            container.pipe = None

    def _on_exit(self, task: TaskRuntime, container: ContainerRuntime) -> None:
        assert container.proc is not None and container.pidfd is not None
        self.loop.remove_reader(container.pidfd)
        os.close(container.pidfd)
        container.pidfd = None
        # A process that left children holding the pipe must not keep its container alive.
        self._read_output(task, container)
        if container.pipe is not None:
            self._emit(task, container, b"", final=True)
            self._close_pipe(container)
        code = container.proc.wait()
        container.exit_code = code if code >= 0 else 128 - code
        container.stopped = True
        self._progress(task)

    def _signal(self, container: ContainerRuntime, sig: int) -> None:
        if container.proc is not None and container.pidfd is not None:
            try:
                os.killpg(container.proc.pid, sig)
            except ProcessLookupError:
                pass

    def _stop(self, task: TaskRuntime) -> None:
        if task.finished:
            return
        task.stopping = True
        for container in task.containers.values():
            if not container.started and not container.stopped:
                container.stopped = True
                container.reason = "Task stopped before the container started"
            self._signal(container, signal.SIGTERM)
        self.loop.call_later(STOP_GRACE_SECONDS, self._kill, task)
        if all(c.stopped for c in task.containers.values()):
            self._finish(task)

    def _kill(self, task: TaskRuntime) -> None:
        for container in task.containers.values():
            self._signal(container, signal.SIGKILL)
        self.loop.call_later(STOP_GRACE_SECONDS, self._abandon, task)

    def _abandon(self, task: TaskRuntime) -> None:
        """A stopped task ends whatever its containers do: one whose process is gone, or never was,
        counts as killed rather than keeping the job RUNNING."""
        if task.finished:
            return
        for container in task.containers.values():
            if not container.stopped:
                container.stopped = True
                if container.exit_code is None and container.started:
                    container.exit_code = 128 + signal.SIGKILL
        self._finish(task)

    def _finish(self, task: TaskRuntime) -> None:
        if task.finished:
            return
        task.finished = True
        self._tasks.discard(task)
        results = [
            ContainerResult(
                name=c.name,
                exit_code=c.exit_code,
                reason=c.reason,
                log_stream_name=c.log_target[1] if c.log_target and c.started else None,
            )
            for c in task.containers.values()
        ]
        shutil.rmtree(task.root, ignore_errors=True)
        task.on_stopped(task.job, TaskResult(results, task.failure_reason or ESSENTIAL_EXITED))
