"""Pure: where a task's files and names live, in S3 and in the container.

The job's volume and its directories, the containers' names, the bucket path's prefixes (staged inputs,
collected outputs, an array's children, the manifest), the log group, the task's identity (run key, job name,
tags, S3 prefixes), and the helpers that read a key or a URI of that layout. No boto3, no Airflow runtime.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

VOLUME_NAME = "airflow-batch"
VOLUME_ROOT = "/airflow-batch"
WORKING_DIR = f"{VOLUME_ROOT}/work"
OUTPUT_DIR = f"{VOLUME_ROOT}/output"
INPUTS_PREFIX = "inputs/"
# Output files land under these prefixes of the bucket path, mirroring the volume.
WORK_OUTPUT_PREFIX = "work/"
DIR_OUTPUT_PREFIX = "output/"
# Values for the XCom's outputs and metrics too big for a log line (see results.py); collected with the files.
OUTPUTS_FILE_KEY = "outputs.json"
OUTPUTS_FILE = f"{VOLUME_ROOT}/{OUTPUTS_FILE_KEY}"
BUCKET_PREFIX = "airflow-batch-runner"
MAIN = "main"
INPUTS = "inputs"
OUTPUTS = "outputs"
LOG_GROUP = "/aws/batch/job"
# Kestra spellings of the template variables, beside the Airflow ones.
TEMPLATE_ALIASES = {"workingDir": "working_dir", "outputDir": "output_dir", "bucketPath": "bucket_path"}
# The environment variables the runner sets in the main container.
RUNNER_ENV = ("WORKING_DIR", "OUTPUT_DIR", "BUCKET_PATH", "OUTPUTS_FILE")
# Long commands travel as this script: staged under inputs/ (so the inputs sidecar copies it into the
# working dir) and moved out of the working dir by the main container before it runs.
RUNNER_DIR = ".airflow-batch-runner"
STAGED_SCRIPT = f"{RUNNER_DIR}/commands.sh"
SCRIPT_PATH = f"{VOLUME_ROOT}/commands.sh"
SLUG_RE = re.compile(r"[^A-Za-z0-9_-]+")
SEGMENT_RE = re.compile(r"[^A-Za-z0-9._=-]+")
# An array job's children, each under the bucket path: ``children/<index>/inputs/`` its own input files,
# ``children/<index>/work/`` and ``children/<index>/output/`` its outputs; the manifest beside them.
CHILDREN_PREFIX = "children/"
MANIFEST_KEY = "manifest.json"


@dataclass(frozen=True)
class TaskIdentity:
    dag_id: str
    task_id: str
    run_id: str
    map_index: int = -1
    try_number: int = 1

    @property
    def run_key(self) -> str:
        """Stable across tries of one task instance: finds the job again after a lost worker."""
        raw = "\x00".join((self.dag_id, self.task_id, self.run_id, str(self.map_index)))
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    @property
    def job_name(self) -> str:
        slug = SLUG_RE.sub("-", f"{self.dag_id}-{self.task_id}").strip("-_")[:100] or "task"
        if not slug[0].isalnum():
            slug = f"t{slug}"
        return f"{slug}-{self.run_key}"

    def tags(self) -> dict[str, str]:
        return {
            "airflow:dag_id": self.dag_id[:256],
            "airflow:task_id": self.task_id[:256],
            "airflow:run_id": self.run_id[:256],
            "airflow:map_index": str(self.map_index),
            "airflow:try_number": str(self.try_number),
            "airflow:run_key": self.run_key,
        }

    def task_prefix(self, bucket: str) -> str:
        """Where every submission of this task instance keeps its files."""
        segments = [self.dag_id, self.run_id, self.task_id, str(self.map_index)]
        path = "/".join(SEGMENT_RE.sub("_", s) for s in segments)
        return f"s3://{bucket}/{BUCKET_PREFIX}/{path}/"

    def bucket_path(self, bucket: str, submission_id: str) -> str:
        """A fresh prefix per submission, so a retry never mixes its files with an earlier attempt's."""
        return f"{self.task_prefix(bucket)}{SEGMENT_RE.sub('_', submission_id)}/"



def is_s3_uri(value: str) -> bool:
    """An input file's value that names an object to copy: ``s3://...`` on one line. Anything else, a value with a
    line break included (a text that starts with ``s3://``), is the file's content."""
    return value.startswith("s3://") and "\n" not in value and "\r" not in value


def bucket_and_key(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def output_name(key_under_bucket_path: str) -> str | None:
    """The XCom name of an object the outputs sidecar wrote, relative to its own directory."""
    for prefix in (WORK_OUTPUT_PREFIX, DIR_OUTPUT_PREFIX):
        if key_under_bucket_path.startswith(prefix):
            return key_under_bucket_path[len(prefix):]
    return None


def output_names(keys_under_bucket_path: Iterable[str]) -> dict[str, str]:
    """XCom name -> key for every collected object, each reachable. A file is named relative to the
    dir it came from; a file of the output dir whose relative name a working-dir file already has is
    named by its full path in the container (``{{ output_dir }}/<name>``), which no declared name can be."""
    work: dict[str, str] = {}
    out: dict[str, str] = {}
    for key in keys_under_bucket_path:
        name = output_name(key)
        if name:
            (work if key.startswith(WORK_OUTPUT_PREFIX) else out)[name] = key
    names = dict(work)
    for name, key in out.items():
        names[f"{OUTPUT_DIR}/{name}" if name in work else name] = key
    return names


def child_prefix(bucket_path: str, index: int) -> str:
    return f"{bucket_path}{CHILDREN_PREFIX}{index}/"


def child_inputs_prefix(bucket_path: str, index: int) -> str:
    return f"{child_prefix(bucket_path, index)}{INPUTS_PREFIX}"


def child_results_file(key_under_children: str) -> int | None:
    """The index of the child whose ``$OUTPUTS_FILE`` this object under ``children/`` is; None otherwise."""
    index, _, rest = key_under_children.partition("/")
    return int(index) if index.isdigit() and rest == OUTPUTS_FILE_KEY else None


def child_output(key_under_children: str) -> tuple[int, str] | None:
    """(index, output name) of an object under ``children/``; None for what is not an output."""
    index, _, rest = key_under_children.partition("/")
    if not index.isdigit():
        return None
    name = output_name(rest)
    return (int(index), name) if name else None
