"""Every AWS call of the runner, on the Amazon provider's hooks (Batch, S3, CloudWatch Logs)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import boto3
from airflow.providers.amazon.aws.hooks.batch_client import BatchClientHook
from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook
from airflow.providers.amazon.aws.hooks.s3 import NO_ACL, S3Hook
from airflow.providers.amazon.aws.hooks.sqs import SqsHook
from airflow.providers.amazon.aws.utils.connection_wrapper import AwsConnectionWrapper
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import ClientError
from botocore.loaders import Loader, create_loader

from airflow_batch_runner.job_spec import QUEUE_TIME_LIMIT_ACTIONS
from airflow_batch_runner.layout import LOG_GROUP, bucket_and_key
from airflow_batch_runner.log_positions import ingestion_lag

THROTTLING_CODES = frozenset(
    {"TooManyRequestsException", "ThrottlingException", "Throttling", "RequestLimitExceeded", "SlowDown",
     "ProvisionedThroughputExceededException", "RequestThrottled"}
)
# Throttling is routine at scale: retry with backoff and jitter well past botocore's default of 3.
DEFAULT_RETRIES: Any = {"mode": "standard", "total_max_attempts": 10}
SINGLE_TRY: Any = {"mode": "standard", "total_max_attempts": 1}
MAX_LOG_STREAMS_PER_CALL = 100  # FilterLogEvents' logStreamNames limit
MAX_LOG_PAGES_PER_READ = 10  # GetLogEvents pages per read of one stream; the rest comes with the next read
QUEUE_READY_TIMEOUT = 300.0
QUEUE_POLL_SECONDS = 1.0
DESCRIBE_BATCH = 100
SESSION_KWARGS_CREDENTIALS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")


@dataclass(frozen=True)
class ConnectionOverrides:
    """Kestra-style explicit credentials, endpoint and assume-role, layered on the Airflow connection."""

    access_key_id: str | None = None
    secret_key_id: str | None = None
    session_token: str | None = None
    endpoint_override: str | None = None
    sts_role_arn: str | None = None
    sts_role_external_id: str | None = None
    sts_role_session_name: str | None = None
    sts_role_session_duration: int | None = None
    sts_endpoint_override: str | None = None

    def __repr__(self) -> str:  # never print a secret
        return f"ConnectionOverrides(endpoint_override={self.endpoint_override!r}, sts_role_arn={self.sts_role_arn!r})"

    def __bool__(self) -> bool:
        return any(getattr(self, name) for name in self.__dataclass_fields__)

    def apply(self, base: AwsConnectionWrapper) -> AwsConnectionWrapper:
        extra = dict(base.extra_config)
        login, password = base.aws_access_key_id, base.aws_secret_access_key
        if self.access_key_id:
            login, password = self.access_key_id, self.secret_key_id
            extra.pop("aws_session_token", None)
            # The provider also reads credentials from a profile and from the deprecated session_kwargs:
            # none of the connection's may pair with the explicit keys.
            extra.pop("profile_name", None)
            if "session_kwargs" in extra:
                extra["session_kwargs"] = {k: v for k, v in (extra["session_kwargs"] or {}).items()
                                           if k not in SESSION_KWARGS_CREDENTIALS}
            if self.session_token:
                extra["aws_session_token"] = self.session_token
        elif base.aws_session_token:
            extra["aws_session_token"] = base.aws_session_token
        if self.endpoint_override:
            extra["endpoint_url"] = self.endpoint_override
        # Assume-role calls go where every other call of the task goes, unless told otherwise
        # (the Amazon provider alone would send them to the public STS endpoint).
        own_sts = ((extra.get("service_config") or {}).get("sts") or {}).get("endpoint_url")
        sts_endpoint = self.sts_endpoint_override or own_sts or self.endpoint_override or base.endpoint_url
        if sts_endpoint:
            service_config = dict(extra.get("service_config") or {})
            service_config["sts"] = {**service_config.get("sts", {}), "endpoint_url": sts_endpoint}
            extra["service_config"] = service_config
        if self.sts_role_arn:
            extra["role_arn"] = self.sts_role_arn
            extra["assume_role_method"] = "assume_role"
            kwargs: dict[str, Any] = {"RoleSessionName": self.sts_role_session_name or "airflow-batch-runner"}
            if self.sts_role_external_id:
                kwargs["ExternalId"] = self.sts_role_external_id
            if self.sts_role_session_duration:
                kwargs["DurationSeconds"] = int(self.sts_role_session_duration)
            extra["assume_role_kwargs"] = kwargs
        meta = AwsConnectionWrapper.from_connection_metadata(
            conn_id=base.conn_id if isinstance(base.conn_id, str) else None,
            login=login,
            password=password,
            extra=extra,
        )
        return AwsConnectionWrapper(
            conn=meta, region_name=base.region_name, botocore_config=base.botocore_config, verify=base.verify
        )


class _Shared:
    """What the Batch, S3 and Logs hooks of one task share: the resolved connection and the boto3
    sessions (a new session re-reads botocore's data, about 70 ms a client)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.conn_config: AwsConnectionWrapper | None = None
        self.sessions: dict[str | None, boto3.session.Session] = {}
        self.client_config: Config | None = None
        self.caller: str | None = None


class _WithOverrides:
    """Mixin for AwsBaseHook subclasses: the connection config with the task's overrides applied,
    shared with the sibling hooks, and one boto3 session per region for all of them."""

    overrides: ConnectionOverrides
    shared: _Shared

    @cached_property
    def conn_config(self) -> AwsConnectionWrapper:
        with self.shared.lock:
            if self.shared.conn_config is None:
                base: AwsConnectionWrapper = super().conn_config  # type: ignore[misc]
                self.shared.conn_config = self.overrides.apply(base) if self.overrides else base
            return self.shared.conn_config

    def _get_config(self, config: Config | None = None) -> Config:
        # The provider builds a user agent per client by inspecting the call stack (tens of ms on the
        # path to SubmitJob); the task's clients share one.
        if config is not None:
            return super()._get_config(config)  # type: ignore[misc]
        with self.shared.lock:
            if self.shared.client_config is None:
                self.shared.client_config = super()._get_config()  # type: ignore[misc]
            return self.shared.client_config

    def _get_caller(self, target_function_name: str = "execute") -> str:
        # The user agent names the operator; the provider finds it with inspect.stack(), which reads
        # the source of every frame (about 25 ms before our first call). Whoever builds us knows it.
        return self.shared.caller or super()._get_caller(target_function_name)  # type: ignore[misc]

    def get_session(self, region_name: str | None = None, deferrable: bool = False) -> boto3.session.Session:
        if deferrable:
            return super().get_session(region_name=region_name, deferrable=deferrable)  # type: ignore[misc]
        with self.shared.lock:
            if region_name not in self.shared.sessions:
                session = super().get_session(region_name=region_name)  # type: ignore[misc]
                share_service_models(session)
                lifetime = (self.conn_config.assume_role_kwargs or {}).get("DurationSeconds")
                if self.conn_config.role_arn and lifetime:
                    refresh_within_lifetime(session, float(lifetime))
                self.shared.sessions[region_name] = session
            return self.shared.sessions[region_name]


_LOADERS: dict[str | None, Loader] = {}
_LOADERS_LOCK = threading.Lock()


def share_service_models(session: boto3.session.Session) -> None:
    """Let the session's clients read botocore's API models through one loader per process.

    Each new botocore session parses the models again (about 30 ms a client, 0.1 s for a task's Batch, S3
    and Logs clients); a worker or a triggerer that runs many tasks parses them once. The loader reads
    the same search path the session's own would (``AWS_DATA_PATH`` included), so custom models still apply.
    """
    core = session._session  # boto3 exposes its botocore session only under this name
    data_path = core.get_config_variable("data_path")
    with _LOADERS_LOCK:
        loader = _LOADERS.get(data_path)
        if loader is None:
            loader = _LOADERS[data_path] = create_loader(data_path)
    core.register_component("data_loader", loader)


def refresh_within_lifetime(session: boto3.session.Session, lifetime: float) -> None:
    """Scale botocore's refresh windows to short assumed-role sessions.

    botocore refreshes assumed-role credentials in the background once they have 15 minutes left, and
    blocks every call to refresh them once they have 10: a session of the operator's default 15 minutes
    would be assumed again before nearly every call. Refresh at a third and a sixth of the lifetime.
    """
    credentials = session.get_credentials()
    if not isinstance(credentials, RefreshableCredentials):
        return
    # No public setter; these are the constructor's advisory_timeout / mandatory_timeout.
    windows: Any = credentials
    if hasattr(windows, "_advisory_refresh_timeout") and hasattr(windows, "_mandatory_refresh_timeout"):
        windows._advisory_refresh_timeout = min(windows._advisory_refresh_timeout, lifetime / 3)
        windows._mandatory_refresh_timeout = min(windows._mandatory_refresh_timeout, lifetime / 6)


class _S3(_WithOverrides, S3Hook):
    def __init__(self, overrides: ConnectionOverrides, shared: _Shared, **kwargs: Any) -> None:
        self.overrides, self.shared = overrides, shared
        super().__init__(**kwargs)


class _Logs(_WithOverrides, AwsLogsHook):
    def __init__(self, overrides: ConnectionOverrides, shared: _Shared, **kwargs: Any) -> None:
        self.overrides, self.shared = overrides, shared
        super().__init__(**kwargs)


class _Sqs(_WithOverrides, SqsHook):
    def __init__(self, overrides: ConnectionOverrides, shared: _Shared, **kwargs: Any) -> None:
        self.overrides, self.shared = overrides, shared
        super().__init__(**kwargs)


def with_default_retries(config: Config | dict[str, Any] | None) -> Config:
    """The user's botocore config, with our retry policy unless it sets its own."""
    if config is None:
        return Config(retries=DEFAULT_RETRIES)
    if isinstance(config, dict):
        config = Config(**config)
    if getattr(config, "retries", None):
        return config
    return config.merge(Config(retries=DEFAULT_RETRIES))


@contextmanager
def _not_found(uri: str) -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("NoSuchBucket", "NoSuchKey", "404", "NotFound"):
            raise NotFound(f"{code}: {uri}") from exc
        raise


def _unless_missing(call: Any, **kwargs: Any) -> dict[str, Any] | None:
    """A CloudWatch Logs answer, or None when the log group or stream does not exist (yet): no lines."""
    try:
        return dict(call(**kwargs))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise


def is_throttling(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in THROTTLING_CODES


class NotFound(Exception):
    """An S3 bucket or object the task names does not exist."""


class SubmitRefused(Exception):
    """SubmitJob said no for a reason we can repair (a missing definition or queue)."""


class BatchRunnerHook(_WithOverrides, BatchClientHook):
    """Batch calls, plus S3 staging and log reading through sibling hooks on the same connection."""

    def __init__(
        self, *args: Any, overrides: ConnectionOverrides | None = None, caller: str | None = None, **kwargs: Any
    ) -> None:
        self.overrides = overrides or ConnectionOverrides()
        self.shared = _Shared()
        self.shared.caller = caller
        kwargs["config"] = with_default_retries(kwargs.get("config"))
        super().__init__(*args, **kwargs)

    def _sibling_kwargs(self) -> dict[str, Any]:
        return {
            "aws_conn_id": self.aws_conn_id,
            "region_name": self._region_name,
            "verify": self._verify,
            "config": self._config,
        }

    @cached_property
    def s3(self) -> S3Hook:
        return _S3(self.overrides, self.shared, **self._sibling_kwargs())

    @cached_property
    def logs(self) -> AwsLogsHook:
        return _Logs(self.overrides, self.shared, **self._sibling_kwargs())

    @cached_property
    def sqs(self) -> SqsHook:
        return _Sqs(self.overrides, self.shared, **self._sibling_kwargs())

    @property
    def batch(self) -> Any:
        return self.client

    # Compute environments and queues

    def describe_compute_environment(self, arn: str) -> dict[str, Any] | None:
        found = self.batch.describe_compute_environments(computeEnvironments=[arn])["computeEnvironments"]
        return found[0] if found else None

    def describe_job_queue(self, queue: str) -> dict[str, Any] | None:
        found = self.batch.describe_job_queues(jobQueues=[queue])["jobQueues"]
        return found[0] if found else None

    def ensure_job_queue(self, name: str, compute_environment_arn: str) -> str:
        """Create the queue for a compute environment once; parallel tasks racing to create it all win."""
        queue = self.describe_job_queue(name)
        if queue is None:
            try:
                self.batch.create_job_queue(
                    jobQueueName=name,
                    state="ENABLED",
                    priority=1,
                    computeEnvironmentOrder=[{"order": 1, "computeEnvironment": compute_environment_arn}],
                    tags={"airflow:managed-by": "airflow-batch-runner"},
                    jobStateTimeLimitActions=[dict(action) for action in QUEUE_TIME_LIMIT_ACTIONS],
                )
                self.log.info("Created job queue %s for %s", name, compute_environment_arn)
            except ClientError as exc:
                if "already exists" not in str(exc):
                    raise
        deadline = time.monotonic() + QUEUE_READY_TIMEOUT
        while True:
            queue = self.describe_job_queue(name)
            if queue and queue["status"] == "VALID" and queue["state"] == "ENABLED":
                return str(queue["jobQueueArn"])
            if queue and queue["state"] != "ENABLED":
                raise ValueError(f"job queue {name} exists but is {queue['state']}; enable it or pass job_queue_arn")
            if time.monotonic() > deadline:
                raise TimeoutError(f"job queue {name} did not become VALID within {QUEUE_READY_TIMEOUT:.0f} s")
            time.sleep(QUEUE_POLL_SECONDS)

    # Job definitions and jobs

    def ensure_job_definition(self, request: Mapping[str, Any]) -> str:
        """Reuse an ACTIVE revision of the content-hashed definition; register one otherwise."""
        name = request["jobDefinitionName"]
        found = self.batch.describe_job_definitions(jobDefinitionName=name, status="ACTIVE")["jobDefinitions"]
        if found:
            return str(max(found, key=lambda d: d["revision"])["jobDefinitionArn"])
        self.log.info("Registering job definition %s", name)
        return str(self.batch.register_job_definition(**request)["jobDefinitionArn"])

    def submit_job(self, request: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return dict(self.batch.submit_job(**request))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ClientException":
                raise SubmitRefused(str(exc)) from exc
            raise

    def describe_jobs(self, job_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(job_ids)
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), DESCRIBE_BATCH):
            for job in self.batch.describe_jobs(jobs=ids[start : start + DESCRIBE_BATCH])["jobs"]:
                found[job["jobId"]] = job
        return found

    def find_jobs_by_name(self, queue: str, job_name: str) -> list[dict[str, Any]]:
        """Every job of that name on the queue, any status, every page, newest first."""
        jobs: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"jobQueue": queue, "filters": [{"name": "JOB_NAME", "values": [job_name]}]}
        while True:
            page = self.batch.list_jobs(**kwargs)
            jobs.extend(j for j in page["jobSummaryList"] if j["jobName"] == job_name)
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        return sorted(jobs, key=lambda j: j.get("createdAt", 0), reverse=True)

    def list_array_children(self, array_job_id: str, statuses: Iterable[str]) -> list[dict[str, Any]]:
        """An array job's children in these statuses (ListJobs by arrayJobId, every page of 1,000)."""
        children: list[dict[str, Any]] = []
        for status in statuses:
            kwargs: dict[str, Any] = {"arrayJobId": array_job_id, "jobStatus": status, "maxResults": 1000}
            while True:
                page = self.batch.list_jobs(**kwargs)
                children.extend(page["jobSummaryList"])
                if not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]
        return children

    def runnable_child_reason(self, array_job_id: str) -> str | None:
        """Why one of an array job's RUNNABLE children waits (ListJobs by arrayJobId, one summary)."""
        page = self.batch.list_jobs(arrayJobId=array_job_id, jobStatus="RUNNABLE", maxResults=1)
        summaries = page["jobSummaryList"]
        return summaries[0].get("statusReason") if summaries else None

    def running_array_children(
        self, array_job_id: str, enough: Callable[[list[dict[str, Any]]], bool], page_size: int = 100
    ) -> list[dict[str, Any]]:
        """An array job's RUNNING children (ListJobs by arrayJobId), a page at a time until ``enough`` of
        them are listed or none is left: a sampling of the children to follow, not every one."""
        children: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"arrayJobId": array_job_id, "jobStatus": "RUNNING", "maxResults": page_size}
        while True:
            page = self.batch.list_jobs(**kwargs)
            children.extend(page["jobSummaryList"])
            if not page.get("nextToken") or enough(children):
                return children
            kwargs["nextToken"] = page["nextToken"]

    def job_tags(self, job_arn: str) -> dict[str, str]:
        return dict(self.batch.list_tags_for_resource(resourceArn=job_arn).get("tags", {}))

    def terminate(self, job_id: str, reason: str) -> None:
        self.batch.terminate_job(jobId=job_id, reason=reason[:1024])

    # SQS: the queue EventBridge fills with Batch's events (triggers/events.py)

    def receive_events(self, queue_url: str, wait_seconds: int, visibility: int) -> list[dict[str, Any]]:
        """Up to 10 messages (long polling for ``wait_seconds``), each hidden from other readers for
        ``visibility`` seconds unless deleted or released."""
        client: Any = self.sqs.conn
        answer = client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                               WaitTimeSeconds=wait_seconds, VisibilityTimeout=visibility)
        return list(answer.get("Messages", []))

    def delete_events(self, queue_url: str, receipt_handles: Iterable[str]) -> None:
        handles = list(receipt_handles)
        for start in range(0, len(handles), 10):  # DeleteMessageBatch takes 10 entries
            entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles[start : start + 10])]
            client: Any = self.sqs.conn
            client.delete_message_batch(QueueUrl=queue_url, Entries=entries)

    def release_events(self, queue_url: str, receipt_handles: Iterable[str], visibility: int) -> None:
        """Messages left for another reader: visible again after ``visibility`` seconds."""
        handles = list(receipt_handles)
        for start in range(0, len(handles), 10):
            entries = [{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": visibility}
                       for i, h in enumerate(handles[start : start + 10])]
            client: Any = self.sqs.conn
            client.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)

    # S3: staging and outputs

    def upload_text(self, uri: str, content: str) -> None:
        """One PutObject: an input file's content is small, and S3Hook.load_string would start a
        multipart transfer manager (a thread pool) for it on the path to SubmitJob."""
        bucket, key = bucket_and_key(uri)
        client: Any = self.s3.conn
        with _not_found(uri):
            client.put_object(Bucket=bucket, Key=key, Body=content.encode("utf-8"))

    def upload_file(self, uri: str, path: str) -> None:
        bucket, key = bucket_and_key(uri)
        with _not_found(uri):
            self.s3.load_file(path, key=key, bucket_name=bucket, replace=True)

    def copy(self, source_uri: str, dest_uri: str) -> None:
        """Server-side copy: an upstream output passes on without going through the worker."""
        with _not_found(source_uri):
            # No ACL: buckets with ACLs disabled (the default for new buckets) refuse a canned one.
            self.s3.copy_object(source_bucket_key=source_uri, dest_bucket_key=dest_uri, acl_policy=NO_ACL)

    def read_text(self, uri: str, max_bytes: int) -> str | None:
        """An object's text, at most ``max_bytes`` and one byte more (so a caller sees it is larger);
        None when it does not exist."""
        bucket, key = bucket_and_key(uri)
        client: Any = self.s3.conn
        try:
            with _not_found(uri):
                body = client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{max_bytes}")["Body"].read()
        except NotFound:
            return None
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":  # an empty object
                return ""
            raise
        return str(body.decode("utf-8", errors="replace"))

    def list_objects(self, prefix_uri: str) -> list[str]:
        bucket, prefix = bucket_and_key(prefix_uri)
        return [str(key) for key in self.s3.list_keys(bucket_name=bucket, prefix=prefix)]

    def delete_prefix(self, prefix_uri: str) -> int:
        bucket, prefix = bucket_and_key(prefix_uri)
        keys = self.s3.list_keys(bucket_name=bucket, prefix=prefix)
        self.delete_keys(bucket, keys)
        return len(keys)

    def delete_keys(self, bucket: str, keys: list[str]) -> None:
        if keys:
            self.s3.delete_objects(bucket=bucket, keys=keys)

    def bucket_exists(self, bucket: str) -> bool:
        return bool(self.s3.check_for_bucket(bucket))

    # CloudWatch Logs

    def read_log_lines(self, stream: str, token: str | None) -> tuple[list[str], str | None, float]:
        """New lines of a stream after ``token``, the token to continue from, and the largest ingestion
        lag (s) among them. Each call is tried once (the worker's log follower backs off on its own); a
        stream not created yet has no lines."""
        lines: list[str] = []
        lag = 0.0
        for _ in range(MAX_LOG_PAGES_PER_READ):
            kwargs: dict[str, Any] = {"logGroupName": LOG_GROUP, "logStreamName": stream, "startFromHead": True}
            if token:
                kwargs["nextToken"] = token
            page = _unless_missing(self._logs_single_try.get_log_events, **kwargs)
            if page is None:
                break
            new_token = page.get("nextForwardToken")
            lines.extend(e["message"] for e in page.get("events", []))
            lag = max(lag, ingestion_lag(page.get("events", [])))
            if not page.get("events") or new_token == token:
                token = new_token or token
                break
            token = new_token
        return lines, token, lag

    def last_log_lines(self, stream: str, count: int) -> list[str]:
        """The last ``count`` lines of a stream, in order (none when it does not exist)."""
        client: Any = self.logs.conn
        page = _unless_missing(
            client.get_log_events, logGroupName=LOG_GROUP, logStreamName=stream, startFromHead=False, limit=count
        )
        return [e["message"] for e in (page or {}).get("events", [])]

    @cached_property
    def _logs_single_try(self) -> Any:
        """A Logs client whose calls are tried once: the log readers keep their own backoff and budget,
        and a call they make must never sit in botocore's retries while a job's end waits."""
        return self.logs.get_client_type(
            region_name=self.logs.region_name, config=self.logs.config.merge(Config(retries=SINGLE_TRY))
        )

    def filter_log_events_page(
        self, streams: Iterable[str], start_time: int, token: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One FilterLogEvents call over up to 100 streams from ``start_time`` (ms): a page of events and
        the token of the next page (None: no more). A log group that does not exist yet has no events."""
        names = sorted(set(streams))
        if len(names) > MAX_LOG_STREAMS_PER_CALL:
            raise ValueError(f"FilterLogEvents takes at most {MAX_LOG_STREAMS_PER_CALL} streams; got {len(names)}")
        kwargs: dict[str, Any] = {"logGroupName": LOG_GROUP, "logStreamNames": names, "startTime": start_time}
        if token:
            kwargs["nextToken"] = token
        page = _unless_missing(self._logs_single_try.filter_log_events, **kwargs)
        if page is None:
            return [], None
        return list(page.get("events", [])), page.get("nextToken") or None
