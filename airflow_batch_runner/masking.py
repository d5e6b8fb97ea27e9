"""Credentials out of every log line, whichever process (worker or triggerer) writes it, and out of the
trigger kwargs Airflow stores: there they travel sealed with Airflow's Fernet key."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

from airflow.sdk.log import mask_secret

try:  # the masker Airflow applies to task logs; applied to container lines too, so no log setup skips it
    from airflow.sdk._shared.secrets_masker import _secrets_masker
    from airflow.sdk._shared.secrets_masker import redact as _redact
except ImportError:  # pragma: no cover - older Task SDK layout
    from airflow.sdk.execution_time.secrets_masker import _secrets_masker  # type: ignore[no-redef]
    from airflow.sdk.execution_time.secrets_masker import redact as _redact  # type: ignore[no-redef]

# Deeper than this, a value from the container is not walked: results.py refuses such nesting anyway.
MAX_DEPTH = 64


# The task's own secret arguments: masked in the worker and, carried in the trigger, the triggerer; sealed in
# the trigger kwargs. The external id is one too: AWS lets it be a passphrase that gates the role.
CREDENTIAL_FIELDS = ("access_key_id", "secret_key_id", "session_token", "sts_role_external_id")


class CredentialsUnreadable(Exception):
    """Sealed credentials that this process's Fernet key cannot open."""


class Concealed:
    """A credential the DAG file gives as a plain value (read from the environment, say). Rendering gives the
    value back (Airflow resolves a template field's value that has ``resolve(context)``); the serialized DAG,
    which Airflow stores in its database, gets ``***``. Only the process that parses the DAG file holds it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def resolve(self, context: Any = None) -> str:
        return self._value

    def serialize(self) -> str:
        return "***"

    def __repr__(self) -> str:
        return "'***'"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Concealed) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def conceal(value: Any) -> Any:
    """A plain string credential, concealed; a template (rendered later), an XComArg or None as given."""
    if isinstance(value, str) and value and "{{" not in value and "{%" not in value:
        return Concealed(value)
    return value


def conceal_credentials(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Operator keyword arguments with their plain credential values concealed, the others as given."""
    return {name: conceal(value) if name in CREDENTIAL_FIELDS else value for name, value in kwargs.items()}


def reveal(value: Any) -> Any:
    return value.resolve() if isinstance(value, Concealed) else value


def mask_credentials(values: Iterable[str | None]) -> None:
    for value in values:
        if value:
            mask_secret(value)


def serialised_forms(secret: str) -> set[str]:
    """The spellings a secret takes when a program serialises it, besides its own: JSON string escapes
    (``json.dumps``, ASCII and UTF-8), Python's ``repr``/``ascii``, and URL encoding (``quote``,
    ``quote_plus``). docs/how-to/security.md lists them."""
    forms = {
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        ascii(secret)[1:-1],
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
    }
    forms.discard(secret)
    return forms


_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)


class _Forms:
    """Adds the serialised forms of every secret the process's masker learns, before a value is redacted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[str] = set()

    def secrets(self) -> list[str]:
        """The secrets the masker holds, as plain values (it keeps them as escaped patterns)."""
        patterns = getattr(_secrets_masker(), "patterns", None) or set()
        return sorted({_UNESCAPE.sub(r"\1", pattern) for pattern in list(patterns)})

    def sync(self) -> None:
        masker = _secrets_masker()
        patterns = getattr(masker, "patterns", None)
        if patterns is None or len(patterns) == len(self._seen):
            return
        with self._lock:
            new = set(patterns) - self._seen
            self._seen |= new
            for pattern in new:
                for form in serialised_forms(_UNESCAPE.sub(r"\1", pattern)):
                    masker.add_mask(form)  # this process only: the lines are redacted here, before logging
            self._seen |= set(patterns)


_FORMS = _Forms()


def known_secrets() -> list[str]:
    """What this process masks: handed (sealed) to the triggerer, which never saw the task's templates."""
    return _FORMS.secrets()


def mask_secrets(values: Iterable[str]) -> None:
    for value in values:
        if value:
            mask_secret(value)


def redact(line: str) -> str:
    """A line from the container (or about it), with every secret the process knows masked in each of its
    serialised forms."""
    _FORMS.sync()
    return str(_redact(line))


def redact_value(value: Any, depth: int = 0) -> Any:
    """``redact`` applied to every string (keys too) of a JSON-like value from the container."""
    if depth == 0:
        _FORMS.sync()
    if isinstance(value, str):
        return str(_redact(value))
    if depth >= MAX_DEPTH:
        return "***" if isinstance(value, (dict, list, tuple)) else value
    if isinstance(value, Mapping):
        return {redact_value(k, depth + 1): redact_value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(item, depth + 1) for item in value]
    return value


def _fernet() -> Any:
    """Airflow's Fernet (``[core] fernet_key``), the one the triggerer decrypts trigger kwargs with."""
    try:
        from airflow.sdk.crypto import get_fernet
    except ImportError:  # pragma: no cover - Task SDK before 1.2
        from airflow.models.crypto import get_fernet
    return get_fernet()


def can_seal() -> bool:
    """False when ``[core] fernet_key`` is empty (Airflow's Fernet would then store values as they are) or unusable."""
    try:
        return bool(_fernet().is_encrypted)
    except Exception:
        return False


def seal(value: Mapping[str, str] | list[str]) -> str:
    """Credentials (or secrets to mask) as one Fernet token, readable only with ``[core] fernet_key``."""
    fernet = _fernet()
    if not fernet.is_encrypted:
        raise CredentialsUnreadable("[core] fernet_key is not set: credentials cannot be sealed")
    plain = dict(value) if isinstance(value, Mapping) else list(value)
    return str(fernet.encrypt(json.dumps(plain).encode("utf-8")).decode("utf-8"))


def unseal(token: str) -> Any:
    try:
        from cryptography.fernet import InvalidToken

        fernet = _fernet()
        if not fernet.is_encrypted:
            raise InvalidToken
        return json.loads(fernet.decrypt(token.encode("utf-8")).decode("utf-8"))
    except Exception as exc:
        raise CredentialsUnreadable(
            "the task's explicit credentials were sealed with Airflow's Fernet key, and this process cannot open "
            "them: give the triggerer the same [core] fernet_key as the workers (every key, when rotating)"
        ) from exc
