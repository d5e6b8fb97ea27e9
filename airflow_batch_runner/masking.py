"""Credentials out of every log line, whichever process (worker or triggerer) writes it."""

from __future__ import annotations

from collections.abc import Iterable

from airflow.sdk.log import mask_secret

try:  # the masker Airflow applies to task logs; applied to container lines too, so no log setup skips it
    from airflow.sdk._shared.secrets_masker import redact as _redact
except ImportError:  # pragma: no cover - older Task SDK layout
    from airflow.sdk.execution_time.secrets_masker import redact as _redact  # type: ignore[no-redef]


# The task's own credential arguments: masked in the worker and, carried in the trigger, the triggerer.
CREDENTIAL_FIELDS = ("access_key_id", "secret_key_id", "session_token")


def mask_credentials(values: Iterable[str | None]) -> None:
    for value in values:
        if value:
            mask_secret(value)


def redact(line: str) -> str:
    return str(_redact(line))
