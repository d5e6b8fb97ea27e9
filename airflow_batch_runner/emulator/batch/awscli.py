"""The AWS CLI image's ``s3 cp`` commands, run inside the emulator instead of as processes.

An AWS CLI process costs about half a CPU-second to start; an array job of 1,000 children with
staged inputs and outputs starts two or three per child. The emulator runs the sidecars' ``s3 cp``
(and the aliases that expand to one, from ``$HOME/.aws/cli/alias`` as the CLI reads them) itself,
through its own S3 endpoint, with the CLI's semantics: ``--recursive``, ``--exclude``/``--include``
filters applied in order with the last match winning (``*`` also matches ``/``), every file included
by default, exit code 1 and an ``upload failed:``/``download failed:``/``fatal error:`` line when
something fails. Any other command, or an option this module does not know, runs as a real AWS CLI
process, as before.
"""

from __future__ import annotations

import configparser
import fnmatch
import os
import shlex
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

FLAGS = {"--recursive": "recursive", "--only-show-errors": "quiet", "--quiet": "quiet", "--no-progress": None}
FILTERS = ("--exclude", "--include")


@dataclass(frozen=True)
class S3Copy:
    source: str
    dest: str
    recursive: bool = False
    quiet: bool = False
    filters: tuple[tuple[str, str], ...] = ()  # (--exclude or --include, pattern), in the command's order

    def included(self, relative: str) -> bool:
        keep = True
        for kind, pattern in self.filters:
            if fnmatch.fnmatch(relative, pattern):
                keep = kind == "--include"
        return keep


def expand_alias(argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """``aws <alias> args...`` -> the aliased command, as the CLI reads ``~/.aws/cli/alias``'s ``[toplevel]``.
    A shell alias (``!``) or an unknown name is left as is (the real CLI will run or refuse it)."""
    if not argv or argv[0].startswith("-") or argv[0] == "s3" or not env.get("HOME"):
        return list(argv)
    parser = configparser.RawConfigParser()
    try:
        parser.read(Path(env["HOME"]) / ".aws" / "cli" / "alias")
    except configparser.Error:
        return list(argv)
    value = parser.get("toplevel", argv[0], fallback=None)
    if value is None or value.strip().startswith("!"):
        return list(argv)
    return [*shlex.split(value), *argv[1:]]


def parse(argv: Sequence[str], env: Mapping[str, str]) -> S3Copy | None:
    """The copy an AWS CLI command line asks for, or None when it is anything else."""
    args = expand_alias(argv, env)
    if args[:2] != ["s3", "cp"]:
        return None
    positional: list[str] = []
    options: dict[str, Any] = {"recursive": False, "quiet": False}
    filters: list[tuple[str, str]] = []
    rest = iter(args[2:])
    for arg in rest:
        if arg in FLAGS:
            if FLAGS[arg]:
                options[str(FLAGS[arg])] = True
        elif arg in FILTERS:
            pattern = next(rest, None)
            if pattern is None:
                return None
            filters.append((arg, pattern))
        elif arg.startswith("--"):
            return None  # an option this stand-in does not implement: the real CLI runs it
        else:
            positional.append(arg)
    if len(positional) != 2 or sum(p.startswith("s3://") for p in positional) != 1:
        return None  # s3 -> s3, local -> local, or a usage error: the real CLI
    return S3Copy(positional[0], positional[1], filters=tuple(filters), **options)


class S3Client:
    """One boto3 S3 client of the emulator's own endpoint, shared by the copies (clients are thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str], Any] = {}

    def get(self, env: Mapping[str, str]) -> Any:
        key = (env.get("AWS_ENDPOINT_URL", ""), env.get("AWS_DEFAULT_REGION", "us-east-1"))
        with self._lock:
            if key not in self._clients:
                make: Any = boto3.session.Session().client
                self._clients[key] = make(
                    "s3", endpoint_url=key[0] or None, region_name=key[1],
                    aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
                    aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
                    config=Config(retries={"mode": "standard", "max_attempts": 10}, max_pool_connections=16),
                )
            return self._clients[key]


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


def _error(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    operation = getattr(exc, "operation_name", "")
    return f"An error occurred ({error.get('Code')}) when calling the {operation} operation: {error.get('Message')}"


def run(copy: S3Copy, client: Any) -> tuple[int, list[str]]:
    """Do the copy: (exit code, the lines the CLI would print)."""
    try:
        if copy.source.startswith("s3://"):
            return _download(copy, client)
        return _upload(copy, client)
    except ClientError as exc:
        return 1, [f"fatal error: {_error(exc)}"]


def _upload(copy: S3Copy, client: Any) -> tuple[int, list[str]]:
    bucket, prefix = _split(copy.dest)
    source = Path(copy.source)
    if copy.recursive:
        if not source.is_dir():
            return 255, [f"usage: the local directory {copy.source} does not exist"]
        files = sorted(
            (Path(root) / name).relative_to(source).as_posix()
            for root, _, names in os.walk(source, followlinks=True) for name in names
        )
        work = [(source / rel, f"{prefix.rstrip('/') + '/' if prefix else ''}{rel}") for rel in files
                if copy.included(rel)]
    else:
        if not source.is_file():
            return 255, [f"The user-provided path {copy.source} does not exist."]
        key = f"{prefix}{source.name}" if not prefix or prefix.endswith("/") else prefix
        work = [(source, key)] if copy.included(source.name) else []

    def put(path: Path, key: str) -> None:
        client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())

    return _each("upload", [(path, key, str(path), f"s3://{bucket}/{key}") for path, key in work], put, copy.quiet)


def _download(copy: S3Copy, client: Any) -> tuple[int, list[str]]:
    bucket, prefix = _split(copy.source)
    dest = Path(copy.dest)
    if copy.recursive:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        keys: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(o["Key"] for o in page.get("Contents", []))
        work = [(key, dest / key[len(prefix):]) for key in keys
                if not key.endswith("/") and copy.included(key[len(prefix):])]
    else:
        name = prefix.rsplit("/", 1)[-1]
        target = dest / name if copy.dest.endswith("/") or dest.is_dir() else dest
        work = [(prefix, target)] if copy.included(name) else []

    def get(key: str, path: Path) -> None:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)

    return _each("download", [(key, path, f"s3://{bucket}/{key}", str(path)) for key, path in work], get, copy.quiet)


def _each(verb: str, work: list[tuple[Any, Any, str, str]], action: Any, quiet: bool) -> tuple[int, list[str]]:
    """Each transfer in turn, with the CLI's line for it; one failure makes the exit code 1."""
    lines, code = [], 0
    for source, target, shown_source, shown_target in work:
        try:
            action(source, target)
            if not quiet:
                lines.append(f"{verb}: {shown_source} to {shown_target}")
        except ClientError as exc:
            code = 1
            lines.append(f"{verb} failed: {shown_source} to {shown_target} {_error(exc)}")
    return code, lines
