"""BatchRunnerOperator: a task's shell commands in a container of an AWS Batch job.

The operator only orchestrates: the job is built by ``job_spec``, judged by ``outcome``, and every
AWS call goes through ``BatchRunnerHook``.
"""

from __future__ import annotations

import glob
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.links.batch import BatchJobDetailsLink
from airflow.providers.amazon.aws.links.logs import CloudWatchEventsLink
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import AirflowException, conf

from airflow_batch_runner import (
    arguments,
    array_spec,
    asset_events,
    container_properties,
    container_settings,
    job_spec,
    layout,
    outcome,
    resume,
    shapes,
    staging,
    task_log,
    validation,
)
from airflow_batch_runner.hooks.batch_runner import BatchRunnerHook, ConnectionOverrides, SubmitRefused
from airflow_batch_runner.job_spec import JobSpec
from airflow_batch_runner.layout import OUTPUT_DIR, WORKING_DIR, TaskIdentity
from airflow_batch_runner.lifecycle import Limits, verdict_from_event
from airflow_batch_runner.masking import (
    CREDENTIAL_FIELDS,
    can_seal,
    conceal,
    conceal_credentials,
    known_secrets,
    mask_credentials,
    redact,
    redact_value,
    reveal,
)
from airflow_batch_runner.operators import lineage_view
from airflow_batch_runner.operators.worker_wait import wait_for_job
from airflow_batch_runner.results import Collected
from airflow_batch_runner.shapes import Ending, JobShape
from airflow_batch_runner.shapes.single import SingleJob
from airflow_batch_runner.task_log import MainLines
from airflow_batch_runner.triggers import log_marker
from airflow_batch_runner.triggers.batch_runner import BatchRunnerTrigger, overrides_dict

if TYPE_CHECKING:
    from airflow.sdk import Context, XComArg

# Our deadline fires this long before Airflow's execution_timeout would, so the task fails with the
# job's mapped exit code rather than a bare AirflowTaskTimeout.
EXECUTION_TIMEOUT_MARGIN = 2.0
# After rendering, a command that uses the output dir names its path or its variable.
OUTPUT_DIR_MARKERS = (OUTPUT_DIR, "OUTPUT_DIR")


# Durations: a timedelta or seconds (a rendered string of a number too), each positive.
DURATIONS = ("wait_until_completion", "max_runnable_time", "completion_check_interval", "sts_role_session_duration")
# What the job asks of its task and main container beyond resources (see container_settings).
CONTAINER_SETTINGS = ("ephemeral_storage", "cpu_architecture", "shared_memory", "init_process", "tmpfs", "ulimits",
                      "gpus", "repository_credentials", "consumable_resources", "container_properties",
                      "volumes")


def _copied(value: Any) -> Any:
    """A dict written in the DAG as a copy of its own (rendering never changes the caller's); anything else as
    given (an XComArg, a template, a value to refuse once checked)."""
    return dict(value) if type(value) is dict else value


@dataclass
class _Run:
    """What one execution tracks about its job."""

    job_id: str
    job_name: str
    bucket_path: str | None
    deadline: float | None
    log_stream: str | None = None  # the stream read and linked; None: the log link opens the log group's search
    main: MainLines = field(default_factory=MainLines)  # its last lines, and the outputs and metrics it printed
    shape: JobShape = field(default_factory=SingleJob)  # one job, an array, ...


class BatchRunnerOperator(AwsBaseOperator[BatchRunnerHook]):
    """
    Run shell commands in a container of an AWS Batch job (ECS on Fargate or EC2).

    Input files are staged through ``bucket`` into the working directory, declared output files and
    everything written to the output directory are collected back to S3, and the XCom
    ``return_value`` maps each output name to its ``s3://`` URI.

    Every templated argument takes a literal (checked when the task is built), a Jinja string or an XComArg
    (checked once rendered, in ``execute``, before any AWS call): the collections (``commands``, ``input_files``,
    ...) and the values a user might compute (``resources``, ``sidecar_resources``, ``retry_strategy``, the
    durations), where a rendered string of a number counts as the number.

    :param compute_environment_arn: ECS compute environment (EC2, SPOT, FARGATE, FARGATE_SPOT).
    :param commands: shell commands, run in order in the working dir; the first failure fails the job.
    :param container_image: the image of the main container.
    :param input_files: name -> content, or name -> ``s3://`` URI copied server-side.
    :param output_files: names or globs relative to the working dir, collected after success; each
        must have been written (a directory: with every file in it), or the job fails naming it.
    :param env: environment variables of the main container; names ``[A-Za-z_][A-Za-z0-9_]*``, not
        ``AWS_BATCH*`` nor the runner's own (``WORKING_DIR``, ``OUTPUT_DIR``, ``BUCKET_PATH``, ``OUTPUTS_FILE``).

    :param project_files: globs relative to the DAG file's folder, uploaded into the working dir.
    :param bucket: S3 bucket for the per-run bucket path; required with files or the output dir.
    :param resources: ``{"request": {"cpu": "1", "memory": "2048"}}`` for the whole job.
    :param job_queue_arn: queue to submit to; without it a queue is created for the compute
        environment and reused.
    :param execution_role_arn: ECS execution role (required on Fargate).
    :param task_role_arn: the container's own AWS identity.
    :param wait_until_completion: how long to wait for the job (``execution_timeout`` wins).
    :param completion_check_interval: seconds (or timedelta) between status checks.
    :param delete: remove what this run alone created (the staged inputs) when the task ends.
    :param resume: on a retry, reattach to this task instance's job instead of submitting again.
    :param access_key_id: explicit AWS access key (masked); ``aws_conn_id`` is the recommended way.
    :param secret_key_id: explicit AWS secret key (masked).
    :param session_token: explicit AWS session token (masked).
    :param endpoint_override: endpoint for every AWS client of the task (Batch, S3, Logs, STS).
    :param sts_role_arn: role to assume on top of the base credentials.
    :param sts_role_external_id: external id for the assume-role call (masked, like the keys).
    :param sts_role_session_name: session name for the assume-role call.
    :param sts_role_session_duration: assumed role session duration (default 15 minutes).
    :param sts_endpoint_override: STS endpoint for the assume-role call.
    :param max_runnable_time: seconds (or timedelta) a job may wait in RUNNABLE before it is terminated and the
        task fails with exit code 3 and Batch's status reason; None waits until the deadline.
    :param tags: the job's own tags, beside the runner's (``airflow:*``, which win on their keys).
    :param propagate_tags: copy the job's tags to its ECS task (cost allocation); default True.
    :param share_identifier: the job's share on a fair-share queue (``job_queue_arn`` with a scheduling policy).
    :param scheduling_priority: the job's scheduling priority on a fair-share queue (0-9999).
    :param spot_retries: retry the job in AWS this many times when a Spot reclaim ends an attempt (EC2
        ``Host EC2*``, Fargate ``Your Spot Task was interrupted.``), never after any other end.
    :param retry_strategy: AWS Batch's own ``retryStrategy`` for the job, instead of ``spot_retries``.
    :param sidecar_image: the AWS CLI image of the inputs and outputs sidecars (e.g. an ECR pull-through
        cache of ``public.ecr.aws/aws-cli/aws-cli``); its entry point must be ``aws``.
    :param sidecar_resources: each sidecar's ``{"request": {"cpu": ..., "memory": ...}}``, taken out of
        ``resources``; default 0.125 vCPU and 128 MiB (an eighth of smaller jobs).
    :param array_size: run the commands as an AWS Batch array job of this many children (2 to 10,000);
        each reads its index from ``AWS_BATCH_JOB_ARRAY_INDEX``.
    :param array_input_files: one ``{name: content or s3:// URI}`` per child, staged into that child's
        working dir beside the shared ``input_files``; its length is the array's size.
    :param allowed_failures: children that may fail with the task still succeeding: a count, or a
        fraction of the size (default 0). At least one child must succeed, and a task that ended the
        array itself (killed, past its deadline, RUNNABLE too long) fails whatever is allowed.
    :param ephemeral_storage: GiB of ephemeral storage for the job's task, 21 to 200 (Fargate only).
    :param cpu_architecture: ``"X86_64"`` or ``"ARM64"``, the Fargate task's runtime platform (Fargate only).
    :param shared_memory: MiB of ``/dev/shm`` in the main container (EC2 only).
    :param init_process: run an init process in the main container that forwards signals and reaps processes.
    :param tmpfs: tmpfs mounts of the main container, as AWS's ``Tmpfs`` (``[{"containerPath": "/scratch",
        "size": 1024}]``, size in MiB; EC2 only).
    :param ulimits: ulimits of the main container, as AWS's ``Ulimit`` (``[{"name": "nofile", "softLimit": 4096,
        "hardLimit": 8192}]``, -1 for unlimited).
    :param gpus: physical GPUs reserved for the main container, at least 1 (EC2 only).
    :param repository_credentials: the ARN of a Secrets Manager secret with the username and password of the private
        registry of ``container_image`` (needs ``execution_role_arn``).
    :param consumable_resources: ``{"licence-x": 1}``: consumable resources (name or ARN) and the quantity the job
        holds while it runs, at most 5; the job waits RUNNABLE until they are available.
    :param container_properties: the escape hatch: AWS Batch container properties merged into the main container
        (``secrets``, ``user``, ``privileged``, ``readonlyRootFilesystem``, ``startTimeout``, ``stopTimeout``);
        what the runner owns or another argument covers is refused, naming the argument to use.
    :param volumes: mounts of the main container: EFS file systems (``{"containerPath": "/data", "efs":
        {"fileSystemId": "fs-..."}}``) and, on EC2, host paths (``{"containerPath": ..., "hostPath": ...}``).
    """

    aws_hook_class = BatchRunnerHook
    template_fields: Sequence[str] = aws_template_fields(
        "compute_environment_arn", "commands", "container_image", "input_files", "output_files", "env",
        "bucket", "job_queue_arn", "execution_role_arn", "task_role_arn", "endpoint_override", "sidecar_image",
        "tags", "share_identifier",
        "access_key_id", "secret_key_id", "session_token",
        "sts_role_arn", "sts_role_external_id", "sts_role_session_name", "sts_endpoint_override",
        "array_size", "array_input_files",
        # ``resources`` is kept as batch_resources: BaseOperator.resources is Airflow's own (executor) notion.
        "batch_resources", "sidecar_resources", "retry_strategy", "spot_retries", "scheduling_priority",
        "allowed_failures", *DURATIONS, *CONTAINER_SETTINGS,
    )
    template_fields_renderers = {"commands": "bash", "input_files": "json", "env": "json", "batch_resources": "json",
                                 "sidecar_resources": "json", "retry_strategy": "json", "tmpfs": "json",
                                 "ulimits": "json", "consumable_resources": "json",
                                 "container_properties": "json", "volumes": "json"}
    operator_extra_links = (BatchJobDetailsLink(), CloudWatchEventsLink())
    ui_color = "#f9c915"

    def __init__(
        self,
        *,
        compute_environment_arn: str,
        commands: Sequence[str | XComArg] | str | XComArg,
        container_image: str = "ubuntu:24.04",
        input_files: Mapping[str, str | XComArg] | str | XComArg | None = None,
        output_files: Sequence[str | XComArg] | str | XComArg | None = None,
        env: Mapping[str, str | XComArg] | str | XComArg | None = None,
        project_files: Sequence[str] | None = None,
        bucket: str | None = None,
        resources: Mapping[str, Mapping[str, str | float]] | str | XComArg | None = None,
        job_queue_arn: str | None = None,
        execution_role_arn: str | None = None,
        task_role_arn: str | None = None,
        wait_until_completion: timedelta | float | str | XComArg = timedelta(hours=1),
        max_runnable_time: timedelta | float | str | XComArg | None = None,
        completion_check_interval: timedelta | float | str | XComArg = timedelta(seconds=5),
        delete: bool = True,
        resume: bool = True,
        access_key_id: str | None = None,
        secret_key_id: str | None = None,
        session_token: str | None = None,
        endpoint_override: str | None = None,
        sts_role_arn: str | None = None,
        sts_role_external_id: str | None = None,
        sts_role_session_name: str | None = None,
        sts_role_session_duration: timedelta | float | str | XComArg = timedelta(minutes=15),
        sts_endpoint_override: str | None = None,
        tags: Mapping[str, str] | None = None,
        propagate_tags: bool = True,
        share_identifier: str | None = None,
        scheduling_priority: int | None = None,
        spot_retries: int = 0,
        retry_strategy: Mapping[str, Any] | str | XComArg | None = None,
        sidecar_image: str = job_spec.AWS_CLI_IMAGE,
        sidecar_resources: Mapping[str, Mapping[str, str | float]] | str | XComArg | None = None,
        array_size: int | str | XComArg | None = None,
        array_input_files: Sequence[Mapping[str, str]] | str | XComArg | None = None,
        allowed_failures: int | float = 0,
        ephemeral_storage: int | str | XComArg | None = None,
        cpu_architecture: str | None = None,
        shared_memory: int | str | XComArg | None = None,
        init_process: bool | str | XComArg | None = None,
        tmpfs: Sequence[Mapping[str, Any]] | str | XComArg | None = None,
        ulimits: Sequence[Mapping[str, Any]] | str | XComArg | None = None,
        gpus: int | str | XComArg | None = None,
        repository_credentials: str | None = None,
        consumable_resources: Mapping[str, int | str] | str | XComArg | None = None,
        container_properties: Mapping[str, Any] | str | XComArg | None = None,
        volumes: Sequence[Mapping[str, Any]] | str | XComArg | None = None,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # Read when the task is built, not when this module is imported.
        self.deferrable = (
            conf.getboolean("operators", "default_deferrable", fallback=False) if deferrable is None else deferrable
        )
        self.compute_environment_arn = compute_environment_arn
        # Literals are put in shape and checked now; XComArgs (and templates of a mapping) once rendered.
        self.commands = arguments.at_construction(commands, arguments.commands)
        if not arguments.resolved_later(self.commands):
            validation.check_commands(self.commands)
        self.container_image = container_image
        self.input_files = arguments.at_construction(input_files, arguments.input_files, templates_later=True)
        self.output_files = arguments.at_construction(output_files, arguments.output_files)
        self.env = arguments.at_construction(env, arguments.env, templates_later=True)
        self.project_files = list(project_files or [])
        self.bucket = bucket
        # Stored apart from BaseOperator.resources, which is Airflow's own (executor) notion.
        if resources is None or (isinstance(resources, Mapping) and not resources):
            resources = validation.DEFAULT_RESOURCES
        self.batch_resources = _copied(resources)
        self.tags = arguments.at_construction(tags, arguments.tags, templates_later=True)
        self.propagate_tags = propagate_tags
        self.share_identifier = share_identifier
        self.scheduling_priority: Any = scheduling_priority
        self._scheduling_policy: str | None = None
        self.spot_retries: Any = spot_retries
        self.retry_strategy = _copied(retry_strategy)
        self.sidecar_image = sidecar_image
        self.sidecar_resources = _copied(sidecar_resources)
        self.job_queue_arn = job_queue_arn
        self.execution_role_arn = execution_role_arn
        self.task_role_arn = task_role_arn
        self.wait_until_completion: Any = wait_until_completion
        self.max_runnable_time: Any = max_runnable_time
        self.completion_check_interval: Any = completion_check_interval
        self.delete = delete
        self.resume = resume
        # Plain values stay out of the serialized DAG (see masking.Concealed); rendering gives them back.
        self.access_key_id = conceal(access_key_id)
        self.secret_key_id = conceal(secret_key_id)
        self.session_token = conceal(session_token)
        self.endpoint_override = endpoint_override
        self.sts_role_arn = sts_role_arn
        self.sts_role_external_id = conceal(sts_role_external_id)
        self.sts_role_session_name = sts_role_session_name
        self.sts_role_session_duration: Any = sts_role_session_duration
        self.sts_endpoint_override = sts_endpoint_override
        self.array_size = array_size
        self.array_input_files = array_input_files
        self.allowed_failures: Any = allowed_failures
        self.ephemeral_storage: Any = ephemeral_storage
        self.cpu_architecture: Any = cpu_architecture
        self.shared_memory: Any = shared_memory
        self.init_process: Any = init_process
        self.tmpfs: Any = tmpfs
        self.ulimits: Any = ulimits
        self.gpus: Any = gpus
        self.repository_credentials: Any = repository_credentials
        self.consumable_resources: Any = consumable_resources
        self.container_properties: Any = container_properties
        self.volumes: Any = volumes
        self._settings = container_settings.ContainerSettings()
        self._resources: job_spec.Resources | None = None
        self._sidecar_resources: job_spec.Resources | None = None
        self._retry_strategy: dict[str, Any] | None = None
        self._shape_values(at_construction=True)
        self._check_credentials()
        self._check_files_need_bucket(raw=True)
        self._submission_id = uuid.uuid4().hex[:12]
        self._run: _Run | None = None
        self._ended: Mapping[str, Any] | None = None  # the job's last DescribeJobs entry, once it ended
        self._result: dict[str, Any] | None = None  # the XCom, once the job succeeded
        self._killed = False
        self._started = time.time()

    @classmethod
    def partial(cls, **kwargs: Any) -> Any:
        """``BaseOperator.partial``, with plain credential values kept out of the serialized DAG as in ``__init__``."""
        return super().partial(**conceal_credentials(kwargs))

    # Rendering

    def _do_render_template_fields(
        self, parent: Any, template_fields: Iterable[str], context: Context, jinja_env: Any, seen_oids: set[int]
    ) -> None:
        """Render ``bucket`` first: the bucket path (a template variable itself) is built from it.
        Input file contents keep their last newline (Jinja drops it by default). Overridden here rather than
        ``render_template_fields``, which a mapped task's rendering does not call."""
        if parent is not self:  # an object nested in a templated field
            super()._do_render_template_fields(parent, template_fields, context, jinja_env, seen_oids)
            return
        jinja_env = jinja_env.overlay(keep_trailing_newline=True)
        identity = self._identity(context)
        self.bucket = self.render_template(self.bucket, context, jinja_env)
        bucket_path = identity.bucket_path(self.bucket, self._submission_id) if self.bucket else None
        variables = {"working_dir": WORKING_DIR, "output_dir": OUTPUT_DIR, "bucket_path": bucket_path}
        for kestra, airflow_name in layout.TEMPLATE_ALIASES.items():
            variables[kestra] = variables[airflow_name]
        context.update(variables)  # type: ignore[typeddict-item]
        for name in ("input_files", "array_input_files"):  # file names written in the DAG are templates too
            setattr(self, name, arguments.render_names(
                getattr(self, name), lambda text: self.render_template(text, context, jinja_env), seen_oids))
        super()._do_render_template_fields(parent, template_fields, context, jinja_env, seen_oids)
        mask_credentials(getattr(self, name) for name in CREDENTIAL_FIELDS)

    @property
    def _hook_parameters(self) -> dict[str, Any]:
        return {**super()._hook_parameters, "overrides": self._overrides, "caller": type(self).__name__}

    @property
    def _overrides(self) -> ConnectionOverrides:
        return ConnectionOverrides(
            access_key_id=reveal(self.access_key_id),
            secret_key_id=reveal(self.secret_key_id),
            session_token=reveal(self.session_token),
            endpoint_override=self.endpoint_override,
            sts_role_arn=self.sts_role_arn,
            sts_role_external_id=reveal(self.sts_role_external_id),
            sts_role_session_name=self.sts_role_session_name,
            sts_role_session_duration=self.sts_role_session_duration if self.sts_role_arn else None,
            sts_endpoint_override=self.sts_endpoint_override,
        )

    # Validation: everything that needs no AWS call

    @staticmethod
    def _identity(context: Context) -> TaskIdentity:
        ti = context["ti"]
        map_index = getattr(ti, "map_index", -1)
        return TaskIdentity(
            dag_id=ti.dag_id,
            task_id=ti.task_id,
            run_id=ti.run_id,
            map_index=-1 if map_index is None else int(map_index),
            try_number=int(getattr(ti, "try_number", 1) or 1),
        )

    def _check_credentials(self) -> None:
        if bool(self.access_key_id) != bool(self.secret_key_id):
            raise ValueError("access_key_id and secret_key_id go together: give both or neither")
        if self.session_token and not self.access_key_id:
            raise ValueError(
                "session_token goes with access_key_id and secret_key_id (temporary credentials): give all "
                "three, or put the token in the Airflow connection"
            )

    def _shape_rendered_arguments(self) -> None:
        """The rendered values (XComArgs resolved) in the shapes the task works with, or a ValueError naming
        the argument."""
        self.commands = arguments.commands(self.commands)
        self.input_files = arguments.input_files(self.input_files)
        self.output_files = arguments.output_files(self.output_files)
        self.env = arguments.env(self.env)
        self.tags = arguments.tags(self.tags)
        self._shape_values()

    def _shape_values(self, at_construction: bool = False) -> None:
        """``resources``, ``sidecar_resources``, ``retry_strategy`` and the durations in the shapes the task works
        with, or a ValueError naming the argument. When the task is built, those written as literals (a DAG with
        a wrong one does not parse); the rest once rendered, in ``execute``."""

        def now(value: Any) -> bool:
            return not at_construction or arguments.known_now(value)

        if now(self.batch_resources):
            self._resources = validation.parse_resources(self.batch_resources)
        if self.sidecar_resources is not None and now(self.sidecar_resources):
            self._sidecar_resources = validation.parse_resources(self.sidecar_resources, "sidecar_resources")
        if now(self.spot_retries):
            self.spot_retries = arguments.whole_number(self.spot_retries, "spot_retries")
            if now(self.retry_strategy):
                strategy = arguments.retry_strategy(self.retry_strategy)
                self._retry_strategy = validation.retry_strategy_for(self.spot_retries, strategy)
            else:
                validation.retry_strategy_for(self.spot_retries, None)  # spot_retries is known: checked now
        if self.scheduling_priority is not None and now(self.scheduling_priority):
            self.scheduling_priority = arguments.whole_number(self.scheduling_priority, "scheduling_priority")
            validation.check_scheduling_priority(self.scheduling_priority)
        if now(self.allowed_failures):
            allowed = arguments.count_or_fraction(self.allowed_failures)
            self.allowed_failures = array_spec.check_allowed_failures(allowed)
        for name in DURATIONS:
            value = getattr(self, name)
            if value is not None and now(value):
                setattr(self, name, arguments.seconds(value, name))
        if now(self.sts_role_session_duration):
            self.sts_role_session_duration = int(self.sts_role_session_duration)
        given = {name: getattr(self, name) for name in CONTAINER_SETTINGS}
        if all(now(value) for value in given.values()):
            self._settings = container_settings.parse(**given)
        else:  # those known now are checked now
            container_settings.parse(**{name: value for name, value in given.items() if now(value)})

    def _check_files_need_bucket(self, raw: bool = False) -> None:
        """``raw``: when the task is built, where a value known only once rendered cannot tell yet."""
        if self.bucket:
            return

        def given(value: Any) -> bool:
            return bool(value) and not (raw and (arguments.resolved_later(value) or arguments.is_template(value)))

        needs = []
        if given(self.input_files):
            needs.append("input_files")
        if given(self.output_files):
            needs.append("output_files")
        if self.project_files:
            needs.append("project_files")
        if self.array_size not in (None, "") or self.array_input_files not in (None, ""):
            needs.append("an array job (array_size or array_input_files: each child's outputs and the manifest)")
        if not raw and any(marker in command for command in self.commands for marker in OUTPUT_DIR_MARKERS):
            needs.append("the output dir (used in commands)")
        if needs:
            raise ValueError(
                f"bucket is required with {', '.join(needs)}: files travel through S3. "
                "Pass bucket='my-bucket' (an S3 bucket the job's task role can read and write)."
            )

    def _checked_names(self) -> tuple[dict[str, str], tuple[str, ...]]:
        inputs = validation.check_input_files(self.input_files)
        outputs = tuple(validation.check_relative_name(name, "output_files") for name in self.output_files)
        return inputs, outputs

    def _project_file_paths(self) -> dict[str, Path]:
        if not self.project_files:
            return {}
        base = Path(self.dag.fileloc).parent if self.has_dag() and self.dag.fileloc else Path.cwd()
        found: dict[str, Path] = {}
        for pattern in self.project_files:
            validation.check_relative_name(pattern, "project_files")
            matches = [Path(p) for p in glob.glob(str(base / pattern), recursive=True) if Path(p).is_file()]
            if not matches:
                raise ValueError(f"project_files: {pattern!r} matches no file under {base}")
            for path in matches:
                found[path.relative_to(base).as_posix()] = path
        return found

    # Execution

    @property
    def _limit(self) -> str:
        return f"{self._timeout_seconds:g} s"

    @property
    def _timeout_seconds(self) -> float:
        if self.execution_timeout:
            return self.execution_timeout.total_seconds()
        return float(self.wait_until_completion)

    def _deadline(self, first_submission: float) -> float:
        """Fixed at the first submission and kept across reattach; execution_timeout also bounds this try."""
        deadline = first_submission + self._timeout_seconds
        if self.execution_timeout:
            deadline = min(deadline, self._started + self._timeout_seconds - EXECUTION_TIMEOUT_MARGIN)
        return deadline

    def execute(self, context: Context) -> dict[str, Any]:
        self._started = time.time()
        identity = self._identity(context)
        self._check_credentials()  # again, rendered: a template may have given an empty value
        self._shape_rendered_arguments()
        self._check_files_need_bucket()
        commands = validation.check_commands(self.commands)
        image = validation.check_image(self.container_image)
        inputs, output_patterns = self._checked_names()
        # The container's OpenLineage identity when the provider is on; the user's own names win.
        env = {**lineage_view.container_env(self, context), **validation.check_env(self.env)}
        shape = shapes.resolve(self.array_size, self.array_input_files, self.allowed_failures)
        shape.check()
        project = self._project_file_paths()
        validation.check_staged_names({"input_files": inputs, "project_files": project}, shape.child_input_names)
        platform = validation.compute_environment_platform(
            self.hook.describe_compute_environment(self.compute_environment_arn), self.compute_environment_arn
        )
        if platform == "FARGATE":
            if not self.execution_role_arn:
                raise ValueError(
                    "execution_role_arn is required on a Fargate compute environment: ECS needs it to pull "
                    "the image and send logs. Pass the ARN of a role with AmazonECSTaskExecutionRolePolicy."
                )
            validation.check_fargate_resources(self._checked_resources)
        container_settings.check_platform(self._settings, platform, self.compute_environment_arn)
        container_settings.check_execution_role(self._settings, self.execution_role_arn)
        container_properties.check_env(self._settings.container_properties, env)
        queue = self._resolve_queue()
        validation.check_fair_share(self.share_identifier or None, self.scheduling_priority, self._scheduling_policy)
        # With inputs to stage, the first upload finds a missing bucket (and creates nothing) on its own.
        if self.bucket and not (inputs or project) and not self.hook.bucket_exists(self.bucket):
            raise ValueError(f"bucket {self.bucket!r} does not exist or is not accessible with these credentials")

        bucket_path = identity.bucket_path(self.bucket, self._submission_id) if self.bucket else None
        spec = JobSpec(
            image=image,
            commands=commands,
            platform=platform,
            resources=self._checked_resources,
            env=env,
            bucket_path=bucket_path,
            has_inputs=bool(inputs or project),
            output_patterns=output_patterns,
            execution_role_arn=self.execution_role_arn,
            task_role_arn=self.task_role_arn,
            region=self.hook.conn_region_name,
            retry_strategy=self._retry_strategy,
            tags=validation.check_tags(self.tags, identity.tags(),
                                     job_spec.DEFINITION_TAGS if self.propagate_tags else None),
            propagate_tags=self.propagate_tags,
            share_identifier=self.share_identifier or None,
            scheduling_priority=self.scheduling_priority,
            sidecar_image=validation.check_image(self.sidecar_image, "sidecar_image"),
            sidecar_resources=self._sidecar_resources,
            settings=self._settings,
        )
        # Commands too long for the SubmitJob request travel as a staged script; too big an env fails here.
        attempt_seconds = int(self._timeout_seconds)
        spec = shape.fit_to_limits(spec, identity, queue, attempt_seconds)
        containers = shape.container_names(spec)
        validation.check_sidecar_resources(spec.resources, spec.sidecar_resources, len(containers) - 1)
        store = context.get("task_state_store") if self.resume else None
        existing = resume.find_existing_job(self.hook, store, identity, queue) if self.resume else None
        if existing is not None:
            self._run = self._reattach(existing)
        else:
            self._run = self._submit(spec, identity, queue, inputs, project, shape)
            resume.remember_job(store, self._run.job_id)
        if self._killed:
            # Killed while submitting: on_kill had no job to stop then (Airflow lets the task go on).
            self.on_kill()
            raise AirflowException(f"Task killed while submitting AWS Batch job {self._run.job_id}; it was terminated")
        if identity.try_number > 1 and self.delete and self.bucket:
            removed = staging.delete_stale_inputs(self.hook, identity.task_prefix(self.bucket), self._run.bucket_path)
            if removed:
                self.log.info("Deleted %d input file(s) staged by earlier tries", removed)
        self._persist_links(context, existing.log_stream if existing else None)
        if self.deferrable and self._credentials_can_reach_the_triggerer():
            log_marker.prepare(context)
            self._defer()
        return self._wait_and_finish(context)

    @property
    def _checked_resources(self) -> job_spec.Resources:
        assert self._resources is not None, "execute shapes resources first"
        return self._resources

    def _credentials_can_reach_the_triggerer(self) -> bool:
        """Explicit credentials reach the triggerer only sealed with Airflow's Fernet key: Airflow stores a
        deferred task's trigger kwargs as they are sent. Without a key, the worker waits for the job itself."""
        if not any(getattr(self, name) for name in CREDENTIAL_FIELDS) or can_seal():
            return True
        self.log.warning(
            "deferrable=True, but [core] fernet_key is not set (or not a valid key), and Airflow would store the "
            "explicit credentials in clear with the trigger: waiting in the worker instead. Set [core] fernet_key "
            "(the same on workers and triggerers), or use aws_conn_id instead of access_key_id / secret_key_id / "
            "session_token / sts_role_external_id."
        )
        return False

    def _defer(self) -> None:
        """Free the worker slot: the triggerer waits, and execute_complete finishes as execute would."""
        run = self._run
        assert run is not None
        self.defer(
            trigger=BatchRunnerTrigger(
                job_id=run.job_id,
                deadline=run.deadline,
                limit=self._limit,
                poll_interval=self.completion_check_interval,
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                verify=self.verify,
                botocore_config=self.botocore_config,
                overrides=overrides_dict(self._overrides),
                delete_inputs_of=run.bucket_path if self.delete else None,
                max_runnable_time=self.max_runnable_time,
                secrets=known_secrets(),
                carry=self._carry(),
            ),
            method_name="execute_complete",
            kwargs={"bucket_path": run.bucket_path},
        )

    def _carry(self) -> dict[str, Any]:
        """What this execution knows that the resumed one needs (a subclass's own state): the trigger hands it
        back in its event, so it reaches ``execute_complete`` however the task is resumed (``dag.test()`` keeps
        only the event)."""
        return {}

    def _restore(self, carried: Mapping[str, Any]) -> None:
        """Take back what ``_carry`` gave, in the resumed execution."""

    def execute_complete(self, context: Context, event: dict[str, Any], bucket_path: str | None = None) -> Any:
        event = redact_value(event)  # masked by the triggerer too, with what it was told; this process knows more
        self._restore(event.get("carry") or {})
        self._shape_values()  # rendered again for this execution: the durations as execute had them
        # The job's last lines (and what the trigger said after its end): the trigger left them to this log.
        task_log.replay(self.log, event.get("held_log"))
        log_marker.clear(context)
        if event.get("status") != "done":
            # The job may still run (AWS unreachable, not finished): its inputs stay, and a retry
            # reattaches to it and cleans up at its end.
            raise AirflowException(f"Waiting for AWS Batch job {event.get('job_id')} failed: {event.get('message')}")
        description = event["description"]
        state = outcome.job_state(description)
        verdict = verdict_from_event(event, state, time.time())  # the trigger decided; never again here
        main = MainLines(results=Collected.from_dict(event.get("results"), clean=redact_value),
                         last=list(event.get("last_lines") or []))
        self._run = _Run(state.job_id, state.job_name, bucket_path, None, main=main,
                         shape=shapes.of_job(state, self.allowed_failures))
        if state.log_stream:
            self._persist_logs_link(context, state.log_stream)
        return self._finish(context, state, verdict, description)

    def _resolve_queue(self) -> str:
        if self.job_queue_arn:
            queue = self.hook.describe_job_queue(self.job_queue_arn)
            if queue is None:
                raise ValueError(f"job_queue_arn {self.job_queue_arn!r} does not exist in this account and region")
            if queue.get("state") != "ENABLED" or queue.get("status") not in ("VALID", "UPDATING"):
                raise ValueError(
                    f"job_queue_arn {self.job_queue_arn!r} is {queue.get('state')}/{queue.get('status')}; "
                    "it must be ENABLED and VALID"
                )
            self._scheduling_policy = queue.get("schedulingPolicyArn")
            return str(queue["jobQueueArn"])
        return job_spec.queue_name_for(self.compute_environment_arn)

    def _reattach(self, state: outcome.JobState) -> _Run:
        self.log.info("Reattaching to AWS Batch job %s (%s) of an earlier try", state.job_id, state.status)
        created = (state.created_at or time.time() * 1000) / 1000
        return _Run(state.job_id, state.job_name, state.bucket_path, self._deadline(created),
                    shape=shapes.of_job(state, self.allowed_failures))

    def _submit(
        self, spec: JobSpec, identity: TaskIdentity, queue: str, inputs: Mapping[str, str],
        project: Mapping[str, Path], shape: JobShape,
    ) -> _Run:
        if spec.staged_commands:
            inputs = {**inputs, layout.STAGED_SCRIPT: job_spec.staged_script(spec.commands)}
        attempt_seconds = int(self._timeout_seconds)
        request = shape.submit_request(spec, identity, queue, attempt_seconds)
        definition = shape.job_definition(spec)
        staged = bool(spec.bucket_path and (inputs or project or shape.child_input_names))
        try:
            shape.stage(self.hook, spec, inputs, project, self.log)
            try:
                response = self.hook.submit_job(request)
            except SubmitRefused as refused:
                # Only the first run of a new configuration gets here: make what is missing, try again.
                self.log.info("SubmitJob refused (%s); ensuring job definition and queue", refused)
                self.hook.ensure_job_definition(definition)
                if not self.job_queue_arn:
                    self.hook.ensure_job_queue(queue, self.compute_environment_arn)
                response = self.hook.submit_job(request)
        except BaseException:
            if staged:
                self._cleanup(spec.bucket_path, shape)
            raise
        self.log.info("Submitted AWS Batch job %s (%s)%s", response["jobName"], response["jobId"], shape.described())
        return _Run(response["jobId"], response["jobName"], spec.bucket_path, self._deadline(time.time()), shape=shape)

    def _persist_links(self, context: Context, log_stream: str | None) -> None:
        """Both links before the wait. AWS names the log stream only when the job's containers start;
        until then the log link opens the search of the log group, and the stream replaces it once known."""
        assert self._run is not None
        BatchJobDetailsLink.persist(
            context=context, operator=self, region_name=self.hook.conn_region_name,
            aws_partition=self.hook.conn_partition, job_id=self._run.job_id,
        )
        self._persist_logs_link(context, log_stream)

    def _persist_logs_link(self, context: Context, stream: str | None) -> None:
        assert self._run is not None
        CloudWatchEventsLink.persist(
            context=context, operator=self, region_name=self.hook.conn_region_name,
            aws_partition=self.hook.conn_partition, awslogs_region=self.hook.conn_region_name,
            awslogs_group=layout.LOG_GROUP, awslogs_stream_name=stream or "",
        )
        self._run.log_stream = stream

    def _wait_and_finish(self, context: Context) -> dict[str, Any]:
        run = self._run
        assert run is not None
        description, step = wait_for_job(
            self.hook, run.job_id, run.shape.followed_children, self.completion_check_interval,
            self._limits(run.deadline), self.log, self._log_lines, run.log_stream,
            on_log_stream=lambda stream: self._persist_logs_link(context, stream),
        )
        return self._finish(context, step.state, step.verdict, description)

    def _limits(self, deadline: float | None) -> Limits:
        return Limits(deadline=deadline, limit=self._limit, max_runnable_time=self.max_runnable_time)

    def _log_lines(self, lines: list[str], stream: str | None = None) -> None:
        run = self._run
        assert run is not None
        run.main.show(self.log, lines, stream)

    def _finish(
        self, context: Context, state: outcome.JobState, verdict: outcome.Verdict, description: Mapping[str, Any]
    ) -> dict[str, Any]:
        run = self._run
        assert run is not None
        end = Ending(self.hook, self.log, self._limit, run.main, self._killed,
                     cleanup=lambda bucket_path: self._cleanup(bucket_path, run.shape))
        self._ended = description
        result = run.shape.finish(end, state, verdict, description, state.bucket_path or run.bucket_path)
        self._result = result
        asset_events.emit(context, self.outlets, result, self.log)  # outlets=[AssetAlias(...)]: one per file
        return result

    def _cleanup(self, bucket_path: str | None, shape: JobShape) -> None:
        """``delete`` removes the staged inputs: this run's alone, never what XCom points to.

        A failure here never replaces what happened to the job (its failure, exit codes and status are what
        callbacks and retries need; after a success the outputs stay in the XCom): it is a warning.
        """
        if not (self.delete and bucket_path):
            return
        try:
            removed = shape.delete_inputs(self.hook, bucket_path)
        except Exception as exc:
            self.log.warning(
                "Could not delete the staged inputs under %s (%s); the job's outcome stands. Delete them "
                "yourself, or give the task's credentials s3:ListBucket and s3:DeleteObject on the bucket "
                "(delete=False keeps them on purpose)", bucket_path, redact(str(exc)),
            )
            return
        if removed:
            self.log.info("Deleted %d staged input file(s)", removed)

    # OpenLineage: the provider calls these when it is installed and enabled; nothing here imports it otherwise.

    def get_openlineage_facets_on_start(self) -> Any:
        """The S3 objects the job will read that exist before it (the ``s3://`` inputs); no job yet."""
        from airflow_batch_runner import lineage_facets

        return lineage_facets.operator_lineage(lineage_view.job_files(self, None), None, None)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """What the job read (its staged inputs too) and wrote, and the job's run facet."""
        from airflow_batch_runner import lineage_facets

        files = lineage_view.job_files(self, self._run.bucket_path if self._run else None)
        console = lineage_view.console_url(self, self._ended["jobId"]) if self._ended else None
        return lineage_facets.operator_lineage(files, self._ended, console)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        """As on completion: a failed job wrote no collected file; its inputs and run facet stand."""
        return self.get_openlineage_facets_on_complete(task_instance)

    def on_kill(self) -> None:
        self._killed = True
        if self._run is not None:
            self.log.info("Task killed: terminating AWS Batch job %s", self._run.job_id)
            self.hook.terminate(self._run.job_id, outcome.KILL_REASON)
            self._cleanup(self._run.bucket_path, self._run.shape)

