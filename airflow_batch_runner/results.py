"""Pure: values the main container hands back, beside its files.

Kestra's convention, read from the main container's output: a line ``::{"outputs": {...}}::`` adds to the
XCom's ``outputs`` (later keys win), and ``::{"metrics": [{"name": ..., "type": "counter"|"timer", "value": ...,
"tags": {...}}]}::`` adds to its ``metrics``. Values too big for a line go in a JSON file of the same shape,
``$OUTPUTS_FILE`` (``/airflow-batch/outputs.json``), which the outputs sidecar collects with the files.

Which lines are result lines: a line ``::{...}::`` whose inside is JSON. One whose inside is not JSON (a C++
program's ``::{std::vector<int>}::``) is an ordinary log line, told once in the task log, unless it begins like a
result (``::{"outputs"`` or ``::{"metrics"``): that one was meant as a result and is malformed. A result line
that is JSON of the wrong shape, a cut one (no closing ``}::``, longer than 16 KiB) and JSON nested deeper than
``MAX_NESTING`` levels are malformed too. A malformed line or file does not stop the job: it is kept as an error
that fails the task once the job has ended, with the offending line or file in the message.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

PREFIX, SUFFIX = "::{", "}::"
# Docker's log drivers split a line longer than 16 KiB into several events: a longer result line would
# arrive cut. Values that size go in the file.
MAX_LINE_BYTES = 16 * 1024
# The whole of outputs and metrics: it travels in the XCom (and, deferred, the trigger event) in Airflow's
# database.
MAX_TOTAL_BYTES = 1024 * 1024
METRIC_TYPES = ("counter", "timer")
SHOWN = 300  # characters of an offending line shown in the message
# Deeper JSON is refused before it is parsed: Python's parser (and every walk of the value after it) recurses
# per level, and a container's output must never crash a reader.
MAX_NESTING = 32
_MEANT_AS_RESULT = re.compile(r'^::\{\s*"(outputs|metrics)"')
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
# JSON may spell half of a surrogate pair alone ("\ud800"); no UTF-8 text can hold one, and Airflow's XCom
# and logs fail on it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _shown(text: str) -> str:
    return text if len(text) <= SHOWN else f"{text[:SHOWN]}… ({len(text)} characters)"


def is_result_line(line: str) -> bool:
    """A candidate: it starts like one (whether it is JSON is told by ``Collected.add_line``)."""
    return line.strip().startswith(PREFIX)


def valid_text(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD, so that it can be encoded as UTF-8."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def _valid(value: Any) -> Any:
    """A parsed JSON value (depth bounded by ``load_json``) with its strings made valid text, keys too."""
    if isinstance(value, str):
        return valid_text(value)
    if isinstance(value, dict):
        return {valid_text(k): _valid(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_valid(item) for item in value]
    return value


def nesting(text: str) -> int:
    """How deep the brackets of a JSON text nest, strings left out; read without recursion."""
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def load_json(text: str) -> Any:
    """JSON of at most ``MAX_NESTING`` levels; a ValueError says what is wrong."""
    if nesting(text) > MAX_NESTING:
        raise ValueError(f"nested deeper than {MAX_NESTING} levels")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as error:  # nesting() bounds the depth; this only guards a parser that recurses more
        raise ValueError(f"nested deeper than {MAX_NESTING} levels") from error
    except ValueError as error:
        raise ValueError(f"not valid JSON ({error})") from error


def parse_result(text: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``{"outputs": {...}, "metrics": [...]}`` (either or both) -> (outputs, metrics); a ValueError says
    what is wrong."""
    return result_of(load_json(text))


def result_of(value: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A parsed result -> (outputs, metrics); a ValueError says what is wrong with its shape."""
    if not isinstance(value, dict) or not value or set(value) - {"outputs", "metrics"}:
        raise ValueError('expected an object with "outputs" (an object) and/or "metrics" (a list)')
    outputs = value.get("outputs", {})
    if not isinstance(outputs, dict):
        raise ValueError(f'"outputs" must be an object; got {type(outputs).__name__}')
    metrics = value.get("metrics", [])
    if not isinstance(metrics, list):
        raise ValueError(f'"metrics" must be a list; got {type(metrics).__name__}')
    return outputs, [_metric(m) for m in metrics]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _metric(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"a metric must be an object; got {value!r}")
    name, kind, number = value.get("name"), value.get("type", "counter"), value.get("value")
    tags = value.get("tags", {})
    if set(value) - {"name", "type", "value", "tags"}:
        raise ValueError(f"a metric has name, type, value and tags; got {sorted(value)}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"a metric needs a non-empty string name; got {value!r}")
    if kind not in METRIC_TYPES:
        raise ValueError(f"metric {name!r}: type must be one of {', '.join(METRIC_TYPES)}; got {kind!r}")
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
        raise ValueError(f"metric {name!r}: value must be a finite number; got {number!r}")
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise ValueError(f"metric {name!r}: tags must be an object of strings; got {tags!r}")
    return {"name": name, "type": kind, "value": number, "tags": dict(tags)}


def _unchanged(value: Any) -> Any:
    return value


@dataclass
class Collected:
    """Outputs and metrics gathered so far, and the first error met.

    ``clean`` is applied to every parsed value before it is kept (the caller's redaction of secrets);
    ``not_results`` counts the ``::{...}::`` lines that were not JSON (shown as ordinary lines), and
    ``first_not_result`` is the first of them.
    """

    outputs: dict[str, Any] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    clean: Callable[[Any], Any] = field(default=_unchanged, repr=False, compare=False)
    not_results: int = 0
    first_not_result: str | None = None

    def add_lines(self, lines: Iterable[str]) -> None:
        for line in lines:
            if is_result_line(line):
                self.add_line(line)

    def add_line(self, line: str) -> None:
        text = line.strip()
        meant = bool(_MEANT_AS_RESULT.match(text))
        problem = None
        if len(text.encode()) > MAX_LINE_BYTES:
            if meant:
                problem = f"longer than {MAX_LINE_BYTES // 1024} KiB; write big values to $OUTPUTS_FILE instead"
        elif not text.endswith(SUFFIX):
            if meant:
                problem = f"a result line ends with {SUFFIX}"
        else:
            try:
                value = load_json(text[len(PREFIX) - 1 : -len(SUFFIX) + 1])
            except ValueError as error:
                if meant:
                    problem = str(error)
                else:
                    self._not_a_result(text)
                    return
            else:
                problem = self._add(value)
        if problem:
            self._fail(f"the main container printed a malformed result line: {problem}. The line: {_shown(text)}")

    def add_file(self, text: str, where: str) -> None:
        if len(text.encode()) > MAX_TOTAL_BYTES:
            self._fail(f"{where} is larger than {MAX_TOTAL_BYTES // 1024} KiB; outputs travel in XCom, keep "
                       "big data in output files")
            return
        try:
            problem = self._add(load_json(text))
        except ValueError as error:
            problem = str(error)
        if problem:
            self._fail(f"{where} is malformed: {problem}. Its content: {_shown(text)}")

    def _not_a_result(self, text: str) -> None:
        self.not_results += 1
        if self.first_not_result is None:
            self.first_not_result = _shown(text)

    def _add(self, value: Any) -> str | None:
        try:
            outputs, metrics = result_of(self.clean(_valid(value)))
        except ValueError as error:
            return str(error)
        merged = {**self.outputs, **outputs}
        if len(json.dumps([merged, self.metrics + metrics]).encode()) > MAX_TOTAL_BYTES:
            return f"outputs and metrics together pass {MAX_TOTAL_BYTES // 1024} KiB"
        self.outputs = merged
        self.metrics += metrics
        return None

    def _fail(self, message: str) -> None:
        if self.error is None:
            self.error = message

    def as_dict(self) -> dict[str, Any]:
        return {"outputs": self.outputs, "metrics": self.metrics, "error": self.error}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any] | None, clean: Callable[[Any], Any] = _unchanged) -> Collected:
        """What ``as_dict`` gave (a trigger event's), its values passed through ``clean`` again."""
        value = clean(dict(value or {}))
        return cls(dict(value.get("outputs") or {}), list(value.get("metrics") or []), value.get("error"), clean)
