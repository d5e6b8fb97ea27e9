"""One WSGI endpoint for every service: AWS Batch to ours, everything else to moto.

Requests are routed on the service name of the SigV4 credential scope, the same key AWS itself
uses to tell services apart behind one endpoint.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from moto.moto_api import _internal as moto_api
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from airflow_batch_runner.emulator import cloudformation, logs_filter
from airflow_batch_runner.emulator.batch import responses as batch_responses
from airflow_batch_runner.emulator.batch.backend import BatchBackend
from airflow_batch_runner.emulator.batch.events import BatchEvents
from airflow_batch_runner.emulator.batch.holds import Holds
from airflow_batch_runner.emulator.batch.infrastructure import MotoInfrastructure
from airflow_batch_runner.emulator.batch.retries import Interruptions
from airflow_batch_runner.emulator.batch.runner import ProcessRunner
from airflow_batch_runner.emulator.cloudwatch import DEFAULT_INGESTION_DELAY, LogsSink
from airflow_batch_runner.emulator.faults import THROTTLING, FaultsAndStats
from airflow_batch_runner.emulator.quotas import RateQuotas

StartResponse = Callable[..., Any]
CONTROL_PREFIX = "/_emulator/"
MOTO_RESET = "/moto-api/reset"
DEFAULT_REGION = "us-east-1"


def credential_scope(environ: dict[str, Any]) -> tuple[str, str] | None:
    """(service, region) from a SigV4 Authorization header or presigned query."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    credential = ""
    if "Credential=" in auth:
        credential = auth.split("Credential=", 1)[1].split(",", 1)[0]
    else:
        credential = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential", [""])[0]
    parts = credential.split("/")
    if len(parts) >= 5:
        return parts[3].lower(), parts[2]
    return None


def s3_operation(method: str, path: str, query: dict[str, list[str]], environ: dict[str, Any]) -> str:
    has_key = len(path.strip("/").split("/", 1)) > 1
    if "uploads" in query:
        return "CreateMultipartUpload" if method == "POST" else "ListMultipartUploads"
    if "uploadId" in query:
        return {"PUT": "UploadPart", "POST": "CompleteMultipartUpload", "DELETE": "AbortMultipartUpload"}.get(
            method, "ListParts"
        )
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    if not has_key:
        if method == "GET":
            return "ListObjectsV2" if query.get("list-type") == ["2"] else (
                "ListBuckets" if path.strip("/") == "" else "ListObjects"
            )
        return {"PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}.get(method, method)
    if method == "PUT":
        return "CopyObject" if environ.get("HTTP_X_AMZ_COPY_SOURCE") else "PutObject"
    return {"GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(method, method)


class EmulatorApp:
    def __init__(
        self,
        step_delay: float,
        unpullable: str | None = None,
        quotas: bool = True,
        logs_ingestion_delay: float = DEFAULT_INGESTION_DELAY,
        cli_in_process: bool = True,
    ) -> None:

        self.endpoint_url = ""
        self.step_delay = step_delay
        self.lock = threading.RLock()
        kwargs = {"unpullable": unpullable} if unpullable else {}
        self.logs = LogsSink(logs_ingestion_delay)
        self.runner = ProcessRunner(lambda: self.endpoint_url, self.logs, cli_in_process=cli_in_process, **kwargs)
        self.batch: dict[str, BatchBackend] = {}
        self.faults = FaultsAndStats()
        self.quotas = RateQuotas(enabled=quotas)
        self.interruptions = Interruptions()
        self.holds = Holds()
        self.events = BatchEvents()
        self.time_limit_scale = 1.0
        # AWS calls received and not yet answered (an injected delay holds an answer): tests wait for 0.
        self.in_flight = 0
        self._in_flight_lock = threading.Lock()
        self.moto = DomainDispatcherApplication(create_backend_app)
        MotoInfrastructure().seed_account()

    def batch_backend(self, region: str) -> BatchBackend:
        with self.lock:
            if region not in self.batch:
                self.batch[region] = BatchBackend(
                    region, self.runner, self.step_delay, self.lock, MotoInfrastructure()
                )
                self.batch[region].interruptions = self.interruptions
                self.batch[region].holds = self.holds
                self.batch[region].events = self.events
                self.batch[region].time_limit_scale = self.time_limit_scale
            return self.batch[region]

    def reset(self) -> None:
        with self.lock:
            for backend in self.batch.values():
                for job in backend.active_jobs():
                    backend.terminate_job({"jobId": job.job_id, "reason": "Emulator reset"})
            self.batch.clear()
        moto_api.moto_api_backend.reset()
        MotoInfrastructure().seed_account()
        self.logs.reset()
        self.faults.reset()
        self.quotas.reset()
        self.interruptions.reset()
        self.holds.reset()
        self.events.reset()
        self.time_limit_scale = 1.0

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(CONTROL_PREFIX):
            return self._control(path[len(CONTROL_PREFIX) :], environ, start_response)
        if path.rstrip("/") == MOTO_RESET and environ["REQUEST_METHOD"] == "POST":
            # moto's own reset (its test suites call it between tests) resets our Batch too: all of it, once.
            self.reset()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps({"status": "ok"}).encode()]
        with self._in_flight_lock:
            self.in_flight += 1
        try:
            return self._aws_call(path, environ, start_response)
        finally:
            with self._in_flight_lock:
                self.in_flight -= 1

    def _aws_call(self, path: str, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        scope = credential_scope(environ)
        service, region = scope if scope else ("s3", DEFAULT_REGION)
        body = _read_body(environ)
        operation = self._operation(service, environ, path, body)
        injected = self.faults.record(service, operation)
        if injected is not None and injected.fails:
            self.faults.hold(injected)
            return _error(start_response, service, injected.status, injected.code, injected.message)
        if not self.quotas.admit(service, operation, region):
            status, code = THROTTLING.get(service, (400, "ThrottlingException"))
            return _error(start_response, service, status, code, "Rate exceeded")
        refused = cloudformation.refusal(operation, body) if service == "cloudformation" else None
        if refused is not None:
            return _error(start_response, service, 400, "ValidationError", refused)
        if service == "batch":
            status, headers, payload = batch_responses.handle(
                self.batch_backend(region), environ["REQUEST_METHOD"], path, environ.get("QUERY_STRING", ""), body
            )
            start_response(f"{status} {'OK' if status == 200 else 'Error'}", list(headers.items()))
            answer: Iterable[bytes] = [payload]
        elif service == "logs":
            # Containers write to the same moto backend from the runner's thread; moto's own handlers
            # iterate its dicts unlocked.
            with self.logs.lock:
                if operation == "FilterLogEvents":
                    answer = self._filter_log_events(environ, start_response, region, body)
                else:
                    answer = list(self.moto(environ, start_response))
        elif service == "ecs":
            if operation == "ListTasks":
                _list_running_tasks_by_default(environ, body)
            # Batch puts its jobs' tasks and task definitions into moto's ECS under this lock (ecs_side.py).
            with self.lock:
                answer = list(self.moto(environ, start_response))
        else:
            answer = list(self.moto(environ, start_response))
        if injected is not None:
            # The call has taken effect; only its answer is late, as with a slow network or a client
            # that dies waiting: what AWS did and what the client saw can then differ.
            self.faults.hold(injected)
        return answer

    def _filter_log_events(
        self, environ: dict[str, Any], start_response: StartResponse, region: str, body: bytes
    ) -> list[bytes]:
        """moto's FilterLogEvents with the request rules and filter patterns AWS documents (``logs_filter.py``)."""
        try:
            prepared = logs_filter.prepare(body, lambda group: self.logs.stream_names(region, group))
        except (logs_filter.InvalidParameter, ValueError) as exc:
            return _error(start_response, "logs", 400, "InvalidParameterException", str(exc))
        if prepared.empty:
            start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1")])
            return [json.dumps({"events": [], "searchedLogStreams": []}).encode()]
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(prepared.body), str(len(prepared.body))
        environ["emulator.body"] = prepared.body
        answered: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answered.update(status=status, headers=headers)
            return lambda _data: None

        payload = b"".join(self.moto(environ, capture))
        if str(answered.get("status", "")).startswith("200"):
            payload = logs_filter.filter_answer(payload, prepared.matcher)
        headers = [(k, v) for k, v in answered.get("headers", []) if k.lower() != "content-length"]
        start_response(answered.get("status", "500 Error"), [*headers, ("Content-Length", str(len(payload)))])
        return [payload]

    def _operation(self, service: str, environ: dict[str, Any], path: str, body: bytes) -> str:
        method = environ["REQUEST_METHOD"]
        if service == "batch":
            return batch_responses.operation_name(method, path)
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target:
            return str(target.rsplit(".", 1)[-1])
        # S3 names some operations by a bare sub-resource (``?uploads``, ``?delete``): keep blank values.
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=service == "s3")
        if service == "s3":
            return s3_operation(method, path, query, environ)
        action = query.get("Action") or parse_qs(body.decode("utf-8", "replace")).get("Action")
        return action[0] if action else method

    def _control(self, name: str, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]

        def spec() -> Any:
            return json.loads(_read_body(environ) or b"{}")

        # Settings read with GET and changed with POST, which answers the settings in force.
        settings: dict[str, tuple[Callable[[], Any], Callable[[Any], Any]]] = {
            "quotas": (self.quotas.stats, self.quotas.configure),
            "logs": (self.logs.settings, self.logs.configure),
            "holds": (self.holds.settings, self.holds.configure),
            "events": (self.events.settings, self.events.configure),
        }
        try:
            if name == "stats" and method == "GET":
                payload: Any = self.faults.stats()
                payload["jobs"] = self._job_counts()
                payload["quotas"] = self.quotas.stats()
                payload["logs"] = self.logs.settings()
                payload["aws_cli"] = dict(self.runner.cli_runs)
                payload["in_flight"] = self.in_flight
            elif name == "faults" and method == "POST":
                faults = spec()
                self.faults.configure(faults)
                payload = {"faults": faults}
            elif name in settings and method in ("GET", "POST"):
                read, configure = settings[name]
                if method == "POST":
                    configure(spec())
                payload = read()
            elif name == "interruptions" and method == "POST":
                payload = {"rules": self.interruptions.configure(spec())}
            elif name == "timing" and method == "POST":
                payload = {"jobStateTimeLimitScale": self._set_time_limit_scale(spec())}
            elif name == "reset" and method == "POST":
                self.reset()
                payload = {"reset": True}
            else:
                start_response("404 Not Found", [("Content-Type", "application/json")])
                return [json.dumps({"message": f"no control endpoint {method} {name}"}).encode()]
        except (ValueError, TypeError) as exc:
            start_response("400 Bad Request", [("Content-Type", "application/json")])
            return [json.dumps({"message": str(exc)}).encode()]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(payload).encode()]

    def _set_time_limit_scale(self, spec: dict[str, Any]) -> float:
        """Shorten jobStateTimeLimitActions' minutes to seconds in tests: ``{"jobStateTimeLimitScale": 0.01}``."""
        scale = float(spec.get("jobStateTimeLimitScale", 1.0))
        if set(spec) - {"jobStateTimeLimitScale"} or not 0 < scale <= 1:
            raise ValueError('timing takes {"jobStateTimeLimitScale": a number in (0, 1]}')
        with self.lock:
            self.time_limit_scale = scale
            for backend in self.batch.values():
                backend.time_limit_scale = scale
        return scale

    def _job_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self.lock:
            for backend in self.batch.values():
                for job in backend.jobs.values():
                    counts[job.status] = counts.get(job.status, 0) + 1
        return counts


def _list_running_tasks_by_default(environ: dict[str, Any], body: bytes) -> None:
    """ECS ListTasks without ``desiredStatus``: "The default status filter is RUNNING" (API reference); moto's
    lists every task, so stopped Batch tasks would stay listed."""
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return  # moto answers the malformed request itself
    if isinstance(request, dict) and "desiredStatus" not in request:
        body = json.dumps({**request, "desiredStatus": "RUNNING"}).encode()
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        environ["emulator.body"] = body


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the body once and put it back, so moto can read it again."""
    if "emulator.body" in environ:
        return environ["emulator.body"]
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length:
        body = environ["wsgi.input"].read(length)
    elif environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
        body = environ["wsgi.input"].read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    environ.pop("wsgi.input_terminated", None)
    environ["emulator.body"] = body
    return body


def _error(start_response: StartResponse, service: str, status: int, code: str, message: str) -> list[bytes]:
    if service in ("s3", "ec2", "sts", "iam", "cloudformation"):
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>'
            f"<Message>{message}</Message></Error><RequestId>emulator</RequestId></ErrorResponse>"
        )
        if service == "s3":
            body = f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>emulator</RequestId></Error>"
        elif service == "ec2":
            body = (
                f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
                "<RequestID>emulator</RequestID></Response>"
            )
        start_response(f"{status} Error", [("Content-Type", "text/xml")])
        return [body.encode()]
    headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code)]
    start_response(f"{status} Error", [*headers, *batch_responses.request_id().items()])
    return [json.dumps({"__type": code, "message": message}).encode()]
