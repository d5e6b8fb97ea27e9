"""Pure: values the main container hands back, beside its files.

Kestra's convention, read from the main container's output: a line ``::{"outputs": {...}}::`` adds to the
XCom's ``outputs`` (later keys win), and ``::{"metrics": [{"name": ..., "type": "counter"|"timer", "value": ...,
"tags": {...}}]}::`` adds to its ``metrics``. Values too big for a line go in a JSON file of the same shape,
``$OUTPUTS_FILE`` (``/airflow-batch/outputs.json``), which the outputs sidecar collects with the files.

A malformed line or file does not stop the job: it is kept as an error that fails the task once the job has
ended, with the offending line or file in the message.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
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


def _shown(text: str) -> str:
    return text if len(text) <= SHOWN else f"{text[:SHOWN]}… ({len(text)} characters)"


def is_result_line(line: str) -> bool:
    return line.strip().startswith(PREFIX)


def parse_result(text: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``{"outputs": {...}, "metrics": [...]}`` (either or both) -> (outputs, metrics); a ValueError says
    what is wrong."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as error:
        raise ValueError(f"not valid JSON ({error})") from error
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


@dataclass
class Collected:
    """Outputs and metrics gathered so far, and the first error met."""

    outputs: dict[str, Any] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def add_lines(self, lines: Iterable[str]) -> None:
        for line in lines:
            if is_result_line(line):
                self.add_line(line)

    def add_line(self, line: str) -> None:
        text = line.strip()
        problem = None
        if len(text.encode()) > MAX_LINE_BYTES:
            problem = f"longer than {MAX_LINE_BYTES // 1024} KiB; write big values to $OUTPUTS_FILE instead"
        elif not text.endswith(SUFFIX):
            problem = f"a result line ends with {SUFFIX}"
        else:
            problem = self._add(text[len(PREFIX) - 1 : -len(SUFFIX) + 1])
        if problem:
            self._fail(f"the main container printed a malformed result line: {problem}. The line: {_shown(text)}")

    def add_file(self, text: str, where: str) -> None:
        if len(text.encode()) > MAX_TOTAL_BYTES:
            self._fail(f"{where} is larger than {MAX_TOTAL_BYTES // 1024} KiB; outputs travel in XCom, keep "
                       "big data in output files")
            return
        problem = self._add(text)
        if problem:
            self._fail(f"{where} is malformed: {problem}. Its content: {_shown(text)}")

    def _add(self, text: str) -> str | None:
        try:
            outputs, metrics = parse_result(text)
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
    def from_dict(cls, value: Mapping[str, Any] | None) -> Collected:
        value = value or {}
        return cls(dict(value.get("outputs") or {}), list(value.get("metrics") or []), value.get("error"))
