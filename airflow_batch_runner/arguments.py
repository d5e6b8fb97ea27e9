"""Pure: the shapes of the templated arguments: the collections (``commands``, ``input_files``, ``output_files``,
``env``, ``tags``) and the values a user might compute (durations in seconds, ``retry_strategy``).

Each accepts a literal, a Jinja string, or an XComArg (``upstream()``, ``task.output``, nested in a list or a
dict too), mapped or not. A literal is put in shape and checked when the task is built; a value Airflow
resolves only when it renders the task is kept as given and put in shape in ``execute``, before anything is
created in AWS, with the same errors naming the argument.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import timedelta
from typing import Any

JINJA_MARKERS = ("{{", "{%")

# A whole number as a rendered template spells it: ASCII digits (str.isdigit also takes "²", which int() refuses).
_WHOLE = re.compile(r"-?[0-9]+")


def resolved_later(value: Any) -> bool:
    """Whether Airflow resolves ``value`` when it renders the task: an XComArg (what Airflow's templater
    resolves: anything with ``resolve``), alone or inside a list, tuple or dict."""
    if isinstance(value, (str, bytes, os.PathLike)):
        return False
    if callable(getattr(value, "resolve", None)):
        return True
    if isinstance(value, Mapping):
        return any(resolved_later(item) for item in value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(resolved_later(item) for item in value)
    return False


def is_template(value: Any) -> bool:
    return isinstance(value, str) and any(marker in value for marker in JINJA_MARKERS)


def holds_template(value: Any) -> bool:
    """Whether ``value`` is a Jinja string or holds one (a key or a value of a dict, an item of a list)."""
    if isinstance(value, str):
        return is_template(value)
    if isinstance(value, Mapping):
        return any(holds_template(key) or holds_template(item) for key, item in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(holds_template(item) for item in value)
    return False


def known_now(value: Any) -> bool:
    """Whether ``value`` is what the task will use, as written in the DAG: no template, no XComArg in it."""
    return not resolved_later(value) and not holds_template(value)


def _got(value: Any) -> str:
    shown = repr(value)
    return f"{type(value).__name__} {shown[:200]}{'…' if len(shown) > 200 else ''}"


def as_list(value: Any, argument: str, item: str) -> list[Any]:
    """A string is one item; a list or tuple is the items; None is none."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return list(value)
    raise ValueError(f"{argument} must be a {item} string or a list of them; got {_got(value)}")


def as_mapping(value: Any, argument: str, shape: str) -> dict[Any, Any]:
    """A mapping; None is empty. A string here is a template that rendered to text, not to a mapping.
    A dict is kept as the same object: Airflow knows a mapped task's values from XCom by their identity, and
    renders them only if they lose it."""
    if value is None:
        return {}
    if type(value) is dict:
        return value
    if isinstance(value, Mapping):
        return dict(value)
    hint = ""
    if isinstance(value, str):
        hint = (
            ". A Jinja template renders to a string: pass a dict (its values may be templates), an XComArg "
            "of a task that returns a dict, or set render_template_as_native_obj=True on the DAG"
        )
    raise ValueError(f"{argument} must be a mapping of {shape}; got {_got(value)}{hint}")


def commands(value: Any) -> list[Any]:
    return as_list(value, "commands", "shell command")


def output_files(value: Any) -> list[Any]:
    return as_list(value, "output_files", "file name or glob")


def input_files(value: Any) -> dict[Any, Any]:
    return as_mapping(value, "input_files", "file name to content or s3:// URI")


def env(value: Any) -> dict[Any, Any]:
    return as_mapping(value, "env", "variable name to value")


def tags(value: Any) -> dict[Any, Any]:
    return as_mapping(value, "tags", "tag key to value")


def render_names(value: Any, render: Callable[[str], Any], resolved: Collection[int]) -> Any:
    """``input_files`` or ``array_input_files`` with the Jinja in the names of files rendered, as Airflow renders
    their contents: the keys of a dict written in the DAG (or of each dict of a list). A value Airflow resolved
    from XCom (its id in ``resolved``, a mapped task's) is used as it is, names and all."""
    if id(value) in resolved:
        return value
    if type(value) is dict:
        return {render(name) if is_template(name) else name: content for name, content in value.items()}
    if type(value) is list:
        return [render_names(item, render, resolved) for item in value]
    return value


def at_construction(value: Any, shape: Any, *, templates_later: bool = False) -> Any:
    """A literal put in shape (``shape`` raises on a wrong one); a value known only once rendered (an XComArg,
    or with ``templates_later`` a Jinja string that must render to another type) as given."""
    if resolved_later(value) or (templates_later and is_template(value)):
        return value
    return shape(value)


def seconds(value: Any, argument: str) -> float:
    """A duration: a timedelta, or a number of seconds; a string of one too (``{{ params.timeout }}`` renders to
    a string). A ValueError naming the argument unless positive and finite."""
    if isinstance(value, timedelta):
        amount = value.total_seconds()
    else:
        try:
            amount = float(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise ValueError(
                f"{argument} must be a number of seconds or a timedelta; got {_got(value)}"
            ) from None
    if not 0 < amount < math.inf:
        raise ValueError(f"{argument} must be positive; got {value!r}")
    return amount


def _whole(value: Any) -> int | None:
    """The int a rendered string spells (``"{{ params.n }}"`` gives ``"3"``), or None when it spells none."""
    if isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        return int(value.strip())
    return None


def whole_number(value: Any, argument: str) -> Any:
    """An int as is; a rendered string of one as the int; anything else as given, for the argument's own check
    to refuse with its bounds."""
    number = _whole(value)
    return value if number is None else number


def count_or_fraction(value: Any) -> Any:
    """``allowed_failures`` rendered: a string of a whole number as the int (a count), of a decimal as the float
    (a fraction); anything else as given, for ``array_spec.check_allowed_failures`` to judge."""
    number = _whole(value)
    if number is not None:
        return number
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return value
    return value


def retry_strategy(value: Any) -> Any:
    """``retry_strategy`` with a rendered ``attempts`` string of a whole number (``"{{ params.attempts }}"``) as the
    number; anything else as given, for ``validation.check_retry_strategy`` to judge."""
    attempts = _whole(value.get("attempts")) if isinstance(value, Mapping) else None
    return value if attempts is None else {**value, "attempts": attempts}
