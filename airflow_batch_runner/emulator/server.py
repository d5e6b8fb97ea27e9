"""Serve the emulator on one loopback endpoint until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import gc
import resource
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug.serving import ThreadedWSGIServer

from airflow_batch_runner.emulator.batch.runner import DEFAULT_UNPULLABLE
from airflow_batch_runner.emulator.cloudwatch import DEFAULT_INGESTION_DELAY
from airflow_batch_runner.emulator.router import DEFAULT_REGION, EmulatorApp

GC_YOUNG_THRESHOLD = 20_000  # CPython's default is 700


class QuietRequestHandler(MotoRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # a line per request drowns the output at scale


def _raise_fd_limit() -> None:
    # A thousand running containers hold two descriptors each.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _settle_heap(app: EmulatorApp) -> None:
    """Keep garbage-collection pauses short while a thousand jobs run.

    Everything loaded by now (moto, werkzeug, botocore's endpoint data that moto's Logs loads on first
    use) lives as long as the process: frozen, a full collection no longer walks it again and again.
    A larger youngest-generation threshold lets a big answer's short-lived objects (a DescribeJobs of
    100 jobs builds thousands) die by reference counting before a collection promotes them; promoted
    in bulk they would trigger a full collection every few such answers. Garbage is unchanged: only
    when the collector looks, not what it frees.
    """
    app.logs.preload(DEFAULT_REGION)
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_batch_runner.emulator",
        description="Local AWS endpoint: moto for S3, Logs, STS, IAM, EC2, ECS; a Batch that runs jobs.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback only by default)")
    parser.add_argument("--port", type=int, default=4566, help="port to bind; 0 picks a free one")
    parser.add_argument(
        "--step-delay", type=float, default=0.2, help="seconds between job status transitions (default 0.2)"
    )
    parser.add_argument(
        "--unpullable-images",
        default=DEFAULT_UNPULLABLE,
        help="regular expression of image names that fail to pull (default %(default)s)",
    )
    parser.add_argument(
        "--no-quotas",
        action="store_true",
        help="do not enforce AWS's request-rate quotas (for raw capacity benchmarks only)",
    )
    parser.add_argument(
        "--logs-ingestion-delay",
        type=float,
        default=DEFAULT_INGESTION_DELAY,
        help="seconds before a container's log line is readable, as CloudWatch Logs' ingestion delay "
        "(default %(default)s; 0 turns it off)",
    )
    parser.add_argument(
        "--aws-cli-processes",
        action="store_true",
        help="run every AWS CLI image command as a real AWS CLI process; by default its s3 cp commands "
        "run inside the emulator (about half a CPU-second less each)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    _raise_fd_limit()
    app = EmulatorApp(
        step_delay=args.step_delay, unpullable=args.unpullable_images, quotas=not args.no_quotas,
        logs_ingestion_delay=args.logs_ingestion_delay, cli_in_process=not args.aws_cli_processes,
    )
    server = ThreadedWSGIServer(args.host, args.port, app, handler=QuietRequestHandler)
    server.daemon_threads = True
    host, port = server.socket.getsockname()[:2]
    app.endpoint_url = f"http://{host}:{port}"
    stopping = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    _settle_heap(app)
    print(f"ready {app.endpoint_url}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        app.runner.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
