"""Pure: one task, one AWS Batch array job of N children.

Builds on ``job_spec``: the same containers, plus what lets each child stage its own files. The only
thing that tells the children apart on AWS is ``AWS_BATCH_JOB_ARRAY_INDEX`` in their environment,
and AWS Batch runs the AWS CLI image's entry point (``aws``) with no shell: its arguments cannot
name the index. So a ``prep`` container (the main image, ``/bin/sh``) writes two AWS CLI aliases
with the child's index into the sidecars' ``$HOME/.aws/cli/alias``, and the sidecars run them:

``prep`` -> ``inputs`` (shared files) -> ``child-inputs`` (this child's) -> ``main`` -> ``outputs``.

Layout under the bucket path (see ``layout``): ``inputs/`` shared, ``children/<index>/inputs/`` each
child's own, ``children/<index>/work/`` and ``children/<index>/output/`` each child's outputs, ``manifest.json``.
The children's end (success rule, manifest, XCom) is ``array_outcome``'s.
"""

from __future__ import annotations

import hashlib
import json
import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_batch_runner import job_spec, validation
from airflow_batch_runner.job_spec import JobSpec
from airflow_batch_runner.layout import (
    CHILDREN_PREFIX,
    DIR_OUTPUT_PREFIX,
    INPUTS,
    INPUTS_PREFIX,
    MAIN,
    OUTPUTS,
    OUTPUTS_FILE_KEY,
    VOLUME_ROOT,
    WORK_OUTPUT_PREFIX,
    WORKING_DIR,
    TaskIdentity,
)

MIN_SIZE = 2  # AWS Batch: arrayProperties.size is 2 to 10,000
MAX_SIZE = 10_000
PREP = "prep"
CHILD_INPUTS = "child-inputs"
INDEX_VARIABLE = "AWS_BATCH_JOB_ARRAY_INDEX"
SIDECAR_HOME = f"{VOLUME_ROOT}/.home"
ALIAS_FILE = f"{SIDECAR_HOME}/.aws/cli/alias"
STAGE_IN = "stage-child-inputs"
STAGE_OUT = "stage-child-outputs"


@dataclass(frozen=True)
class ArraySpec:
    """The array's size, each child's own input files (empty, or one mapping per child), the success rule."""

    size: int
    child_inputs: tuple[Mapping[str, str], ...] = ()
    allowed_failures: int | float = 0

    @property
    def has_child_inputs(self) -> bool:
        return any(self.child_inputs)

    @property
    def allowed(self) -> int:
        return allowed_count(self.allowed_failures, self.size)


# Validation


def check_allowed_failures(value: Any) -> int | float:
    """A count (int >= 0) or a fraction of the children (float from 0 to 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"allowed_failures must be a count (e.g. 3) or a fraction (e.g. 0.05); got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"allowed_failures must be 0 or more; got {value}")
        return value
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"allowed_failures as a fraction must be from 0.0 to 1.0; got {value}")
    return value


def allowed_count(allowed: int | float, size: int) -> int:
    """How many failed children the task tolerates: a count as is, a fraction of the size rounded down."""
    return allowed if isinstance(allowed, int) else math.floor(allowed * size + 1e-9)


def resolve(array_size: Any, array_input_files: Any, allowed_failures: Any) -> ArraySpec | None:
    """The rendered arguments -> an ArraySpec, None for a single job, or a ValueError naming the argument."""
    if array_size in (None, "") and array_input_files in (None, ""):
        return None
    allowed = check_allowed_failures(allowed_failures)
    child_inputs: tuple[Mapping[str, str], ...] = ()
    if array_input_files not in (None, ""):
        if isinstance(array_input_files, str | bytes) or not isinstance(array_input_files, Sequence):
            raise ValueError(
                "array_input_files must be a list with one {name: content or s3:// URI} mapping per child; "
                f"got {type(array_input_files).__name__}"
            )
        child_inputs = tuple(_check_child_files(i, item) for i, item in enumerate(array_input_files))
    size = _check_size(array_size, child_inputs)
    return ArraySpec(size=size, child_inputs=child_inputs, allowed_failures=allowed)


def _check_child_files(index: int, item: Any) -> dict[str, str]:
    if not isinstance(item, Mapping):
        raise ValueError(f"array_input_files[{index}] must be a mapping of file name to content or s3:// URI; "
                         f"got {item!r}")
    return validation.check_input_files(item, f"array_input_files[{index}]")


def _check_size(array_size: Any, child_inputs: tuple[Mapping[str, str], ...]) -> int:
    if array_size in (None, ""):
        size = len(child_inputs)
    else:
        try:
            size = int(str(array_size).strip()) if not isinstance(array_size, int) else array_size
        except ValueError as exc:
            raise ValueError(f"array_size must be a whole number; got {array_size!r}") from exc
        if child_inputs and size != len(child_inputs):
            raise ValueError(
                f"array_size ({size}) and the length of array_input_files ({len(child_inputs)}) differ; "
                "give one of them, or make them agree"
            )
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(
            f"an array job has {MIN_SIZE} to {MAX_SIZE} children (AWS Batch's limits); got {size}. "
            "For one item run a single job (no array_size); for more, split the items over mapped tasks"
        )
    return size


# Building


def container_names(spec: JobSpec, array: ArraySpec) -> list[str]:
    names = [PREP]
    if spec.has_inputs:
        names.append(INPUTS)
    if array.has_child_inputs:
        names.append(CHILD_INPUTS)
    names.append(MAIN)
    if spec.has_outputs:
        names.append(OUTPUTS)
    return names


def _shares(spec: JobSpec, names: Sequence[str]) -> dict[str, job_spec.Resources]:
    """As for one job: every container but main takes a sidecar's share, main the rest."""
    shares = job_spec.split_resources(spec, [n for n in names if n != MAIN])
    return {name: shares[name] for name in names}


def build_job_definition(spec: JobSpec, array: ArraySpec) -> dict[str, Any]:
    """The single job's definition with the array's containers in a chain, each depending on the previous."""
    base = job_spec.build_job_definition(spec)
    names = container_names(spec, array)
    by_name = {c["name"]: c for c in base["ecsProperties"]["taskProperties"][0]["containers"]}
    template = by_name[OUTPUTS if OUTPUTS in by_name else MAIN]
    shares = _shares(spec, names)
    containers = []
    for position, name in enumerate(names):
        container = dict(by_name.get(name) or template)
        container["name"] = name
        container["image"] = spec.image if name in (PREP, MAIN) else spec.sidecar_image
        if name == PREP and spec.settings.repository_credentials is not None:  # the main image: its registry's
            container["repositoryCredentials"] = {"credentialsParameter": spec.settings.repository_credentials}
        container["essential"] = position == len(names) - 1
        container["resourceRequirements"] = job_spec.requirements(shares[name])
        container["command"] = ["/bin/sh", "-c", "true"] if name in (PREP, MAIN) else ["--version"]
        container.pop("dependsOn", None)
        if position:
            container["dependsOn"] = [{"containerName": names[position - 1], "condition": "SUCCESS"}]
        containers.append(container)
    base["ecsProperties"]["taskProperties"][0]["containers"] = containers
    body = {k: v for k, v in base.items() if k not in ("jobDefinitionName", "tags")}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:20]
    base["jobDefinitionName"] = f"{job_spec.DEFINITION_PREFIX}-array-{digest}"
    # The stream prefix names the definition, as for one job.
    for container in containers:
        container["logConfiguration"] = job_spec.log_configuration(base["jobDefinitionName"], spec.region)
    return base


def definition_name(spec: JobSpec, array: ArraySpec) -> str:
    return str(build_job_definition(spec, array)["jobDefinitionName"])


def prep_script(spec: JobSpec, array: ArraySpec) -> str:
    """Writes the sidecars' AWS CLI aliases, each naming this child's prefix through its index."""
    assert spec.bucket_path is not None
    index = f'"${INDEX_VARIABLE}"'
    lines = ["[toplevel]"]
    words: list[str] = []
    if array.has_child_inputs:
        words.append(shlex.quote(f"{STAGE_IN} = s3 cp --recursive --only-show-errors "
                                  f"{spec.bucket_path}{CHILDREN_PREFIX}")
                      + index + shlex.quote(f"/{INPUTS_PREFIX} {WORKING_DIR}/"))
    if spec.has_outputs:
        includes = "".join(f" --include {shlex.quote(WORK_OUTPUT_PREFIX + p)}" for p in spec.output_patterns)
        words.append(shlex.quote(f"{STAGE_OUT} = s3 cp --recursive --only-show-errors {VOLUME_ROOT}/ "
                                 f"{spec.bucket_path}{CHILDREN_PREFIX}")
                     + index + shlex.quote(f"/ --exclude '*'{includes} --include '{DIR_OUTPUT_PREFIX}*' "
                                           f"--include {OUTPUTS_FILE_KEY}"))
    alias_dir = ALIAS_FILE.rsplit("/", 1)[0]
    return "\n".join([
        f'case "${INDEX_VARIABLE}" in ""|*[!0-9]*) echo "airflow-batch-runner: {INDEX_VARIABLE} is not set" >&2; '
        "exit 1;; esac",
        f'mkdir -p "$WORKING_DIR" "$OUTPUT_DIR" {alias_dir}',
        f"printf '%s\\n' {shlex.quote(lines[0])} {' '.join(words)} > {ALIAS_FILE}",
    ])


def build_submit_request(
    spec: JobSpec, array: ArraySpec, identity: TaskIdentity, job_queue: str, attempt_duration_seconds: int | None
) -> dict[str, Any]:
    """One SubmitJob for every child: the single job's request with the array's containers and size."""
    request = job_spec.build_submit_request(spec, identity, job_queue, attempt_duration_seconds)
    names = container_names(spec, array)
    shares = _shares(spec, names)
    single = {c["name"]: c for c in request["ecsPropertiesOverride"]["taskProperties"][0]["containers"]}
    environment = single[MAIN]["environment"]
    commands = {
        PREP: ["/bin/sh", "-c", prep_script(spec, array)],
        CHILD_INPUTS: [STAGE_IN],
        OUTPUTS: [STAGE_OUT],
    }
    overrides = []
    for name in names:
        override: dict[str, Any] = {
            "name": name,
            "command": commands.get(name) or single[name]["command"],
            "resourceRequirements": job_spec.requirements(shares[name]),
        }
        if name == MAIN:
            override["resourceRequirements"] += spec.settings.main_requirements()
        if name in (PREP, MAIN):
            override["environment"] = environment
        elif name in (CHILD_INPUTS, OUTPUTS):
            override["environment"] = [{"name": "HOME", "value": SIDECAR_HOME}]
        overrides.append(override)
    request["ecsPropertiesOverride"] = {"taskProperties": [{"containers": overrides}]}
    request["jobDefinition"] = definition_name(spec, array)
    request["arrayProperties"] = {"size": array.size}
    return request


def fit_to_limits(
    spec: JobSpec, array: ArraySpec, identity: TaskIdentity, job_queue: str, attempt_duration_seconds: int | None
) -> JobSpec:
    """``job_spec.fit_to_limits`` for the array's own SubmitJob request, the one submitted: its ``prep``
    container carries the environment beside ``main``, and the output patterns in its script."""
    return job_spec.fit_to_limits(
        spec, identity, job_queue, attempt_duration_seconds,
        build=lambda candidate: build_submit_request(candidate, array, identity, job_queue, attempt_duration_seconds),
    )
