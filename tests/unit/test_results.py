"""Kestra's result lines and the outputs file: what becomes the XCom's outputs and metrics, and what fails."""

from __future__ import annotations

import json

import pytest

from airflow_batch_runner.results import MAX_LINE_BYTES, MAX_NESTING, MAX_TOTAL_BYTES, Collected, nesting, valid_text


def collected(*lines: str) -> Collected:
    found = Collected()
    found.add_lines(lines)
    return found


def test_outputs_lines_merge_later_keys_winning_and_other_lines_are_ignored() -> None:
    found = collected(
        "starting",
        '::{"outputs": {"rows": 10, "name": "a"}}::',
        "  ::{\"outputs\": {\"rows\": 12, \"score\": 0.93, \"nested\": {\"ok\": true}}}::  ",
        "::not a result",
    )
    assert found.outputs == {"rows": 12, "name": "a", "score": 0.93, "nested": {"ok": True}}
    assert (found.metrics, found.error) == ([], None)


def test_metrics_lines_add_up_in_order_with_kestras_fields() -> None:
    found = collected(
        '::{"metrics": [{"name": "rows", "type": "counter", "value": 3, "tags": {"table": "t"}}]}::',
        '::{"metrics": [{"name": "load", "type": "timer", "value": 1.5}], "outputs": {"done": true}}::',
    )
    assert found.metrics == [
        {"name": "rows", "type": "counter", "value": 3, "tags": {"table": "t"}},
        {"name": "load", "type": "timer", "value": 1.5, "tags": {}},
    ]
    assert found.outputs == {"done": True}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('::{"outputs": {"rows": 1}', "a result line ends with }::"),
        ('::{"outputs": {rows: 1}}::', "not valid JSON"),
        ('::{ "metrics": [1,]}::', "not valid JSON"),
        ('::{"output": {"rows": 1}}::', 'expected an object with "outputs"'),
        ("::{}::", 'expected an object with "outputs"'),
        ('::{"outputs": [1]}::', '"outputs" must be an object; got list'),
        ('::{"metrics": {"name": "x"}}::', '"metrics" must be a list'),
        ('::{"metrics": [{"value": 1}]}::', "a metric needs a non-empty string name"),
        ('::{"metrics": [{"name": "x", "value": "1"}]}::', "metric 'x': value must be a finite number"),
        ('::{"metrics": [{"name": "x", "value": NaN}]}::', "NaN is not a JSON number"),
        ('::{"metrics": [{"name": "x", "value": true}]}::', "value must be a finite number"),
        ('::{"metrics": [{"name": "x", "type": "gauge", "value": 1}]}::', "type must be one of counter, timer"),
        ('::{"metrics": [{"name": "x", "value": 1, "tags": {"a": 1}}]}::', "tags must be an object of strings"),
        ('::{"metrics": [{"name": "x", "value": 1, "unit": "s"}]}::', "a metric has name, type, value and tags"),
    ],
)
def test_a_malformed_line_is_an_error_that_shows_the_line(line: str, problem: str) -> None:
    found = collected('::{"outputs": {"kept": 1}}::', line, '::{"outputs": {"after": 2}}::')
    assert found.error is not None
    assert problem in found.error
    assert found.error.endswith(f"The line: {line}")
    assert found.outputs == {"kept": 1, "after": 2}  # the first error is kept; the rest still reads


def test_a_line_over_the_bound_says_to_use_the_file_and_long_lines_are_shortened_in_the_message() -> None:
    line = '::{"outputs": {"big": "' + "x" * MAX_LINE_BYTES + '"}}::'
    found = collected(line)
    assert found.error is not None
    assert "longer than 16 KiB; write big values to $OUTPUTS_FILE instead" in found.error
    assert f"({len(line)} characters)" in found.error and len(found.error) < 1000


def test_the_file_adds_values_too_big_for_a_line() -> None:
    found = collected('::{"outputs": {"rows": 1}}::')
    big = "y" * (MAX_LINE_BYTES * 4)
    found.add_file(json.dumps({"outputs": {"text": big}, "metrics": [{"name": "n", "value": 2}]}), "outputs.json")
    assert found.outputs == {"rows": 1, "text": big}
    assert found.metrics == [{"name": "n", "type": "counter", "value": 2, "tags": {}}]
    assert found.error is None


@pytest.mark.parametrize(
    ("content", "problem"),
    [("[1, 2]", 'expected an object with "outputs"'), ("{", "not valid JSON"), ("", "not valid JSON")],
)
def test_a_malformed_file_is_an_error_that_shows_its_content(content: str, problem: str) -> None:
    found = Collected()
    found.add_file(content, "$OUTPUTS_FILE (outputs.json)")
    assert found.error is not None
    assert found.error.startswith("$OUTPUTS_FILE (outputs.json) is malformed: ")
    assert problem in found.error and found.error.endswith(f"Its content: {content}")


def test_more_than_the_total_bound_is_refused() -> None:
    found = Collected()
    found.add_file(json.dumps({"outputs": {"text": "z" * MAX_TOTAL_BYTES}}), "outputs.json")
    assert found.error is not None and "larger than 1024 KiB" in found.error
    found = Collected()
    half = "z" * (MAX_TOTAL_BYTES // 2 + 10)
    found.add_file(json.dumps({"outputs": {"a": half}}), "outputs.json")
    found.add_file(json.dumps({"outputs": {"b": half}}), "outputs.json")
    assert found.error is not None and "outputs and metrics together pass 1024 KiB" in found.error
    assert set(found.outputs) == {"a"}


def test_what_was_collected_survives_the_trigger_event() -> None:
    found = collected('::{"outputs": {"a": 1}, "metrics": [{"name": "m", "value": 1}]}::', "::{bad")
    again = Collected.from_dict(json.loads(json.dumps(found.as_dict())))
    assert again == found
    assert Collected.from_dict(None) == Collected()


@pytest.mark.parametrize("line", [
    "::{std::vector<int>}::",
    "::{a, b}::",
    '::{"name": 1',  # not meant as a result and not closed: an ordinary line
    "::{" + "x" * MAX_LINE_BYTES + "}::",
])
def test_a_line_shaped_like_a_result_that_is_not_json_is_an_ordinary_line_counted_once(line: str) -> None:
    found = collected(line, '::{"outputs": {"kept": 1}}::', line)
    assert (found.error, found.outputs) == (None, {"kept": 1})
    closed = line.endswith("}::") and len(line) < MAX_LINE_BYTES
    assert found.not_results == (2 if closed else 0)
    assert found.first_not_result == (line if closed else None)


def test_json_nested_deeper_than_the_bound_is_malformed_without_recursing() -> None:
    deep = "[" * 8000 + "]" * 8000
    found = collected('::{"outputs": {"x": ' + deep + "}}::")
    assert found.error is not None and f"nested deeper than {MAX_NESTING} levels" in found.error
    found = Collected()
    found.add_file('{"outputs": {"x": ' + deep + "}}", "outputs.json")
    assert found.error is not None and f"outputs.json is malformed: nested deeper than {MAX_NESTING}" in found.error
    at_bound = "[" * (MAX_NESTING - 2) + "]" * (MAX_NESTING - 2)
    assert collected('::{"outputs": {"x": ' + at_bound + "}}::").error is None


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    assert nesting('{"a": "[[[[{{{{", "b": ["\\"]", 1]}') == 2
    assert collected('::{"outputs": {"x": "' + "[" * 100 + '"}}::').outputs == {"x": "[" * 100}


def test_every_value_kept_passes_through_clean_from_lines_files_and_events() -> None:
    def clean(value: object) -> object:
        return json.loads(json.dumps(value).replace("hunter22", "***"))

    found = Collected(clean=clean)
    found.add_lines(['::{"outputs": {"pw": "hunter22", "hunter22": 1}}::'])
    found.add_file(json.dumps({"metrics": [{"name": "hunter22", "value": 1, "tags": {"t": "hunter22"}}]}), "f")
    assert found.outputs == {"pw": "***", "***": 1}
    assert found.metrics == [{"name": "***", "type": "counter", "value": 1, "tags": {"t": "***"}}]
    again = Collected.from_dict({"outputs": {"pw": "hunter22"}}, clean=clean)
    assert again.outputs == {"pw": "***"}


def test_a_lone_surrogate_becomes_a_replacement_character_and_a_pair_stays_one_character() -> None:
    found = collected('::{"outputs": {"lone": "\\ud800", "\\udc00": "pair \\ud83d\\ude00"}}::')
    assert found.outputs == {"lone": "\ufffd", "\ufffd": "pair \U0001f600"}
    assert valid_text("a\ud800b") == "a\ufffdb"
