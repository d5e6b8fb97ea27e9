"""Set ``[core] fernet_key`` for one test, in every place Airflow caches its Fernet object."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest


def _clear_caches() -> None:
    import importlib

    for name in ("airflow.sdk.crypto", "airflow.models.crypto"):  # the Task SDK's is not in every version
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module.get_fernet, "cache_clear"):
            module.get_fernet.cache_clear()
        else:  # Airflow 3.1 keeps it in a module global
            vars(module)["_fernet"] = None


@contextlib.contextmanager
def fernet_key(key: str) -> Iterator[None]:
    """``key`` as the Fernet key of this process (empty: none) until the block ends."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__CORE__FERNET_KEY", key)
        _clear_caches()
        try:
            yield
        finally:
            patch.undo()
            _clear_caches()
