"""Secrets masked in every form a program prints them, in lines and in values from the container."""

from __future__ import annotations

import json
import uuid
from urllib.parse import quote, quote_plus

import pytest

from airflow_batch_runner.masking import MAX_DEPTH, known_secrets, mask_secrets, redact, redact_value


@pytest.fixture
def secret() -> str:
    # Unique per test: the process's masker keeps what it learns.
    value = f'pä"ss\\wörd/{uuid.uuid4().hex[:8]} +&'
    mask_secrets([value])
    return value


@pytest.mark.parametrize("spell", [
    lambda s: s,
    lambda s: json.dumps(s),
    lambda s: json.dumps(s, ensure_ascii=False),
    lambda s: json.dumps({"pw": s}),
    repr,
    ascii,
    lambda s: quote(s, safe=""),
    quote_plus,
])
def test_a_secret_is_masked_in_each_serialised_form(secret: str, spell: object) -> None:
    printed = f"before {spell(secret)} after"  # type: ignore[operator]
    shown = redact(printed)
    assert "***" in shown
    assert secret not in shown
    assert secret[:6] not in shown and json.dumps(secret)[1:7] not in shown


def test_a_form_learnt_later_is_masked_too_once_the_masker_knows_the_secret() -> None:
    later = f"later-{uuid.uuid4().hex}-ü"
    assert redact(json.dumps(later)) == json.dumps(later)
    mask_secrets([later])
    assert redact(json.dumps(later)) == '"***"'


def test_values_are_masked_in_keys_and_at_every_depth_up_to_the_bound(secret: str) -> None:
    nested: object = {secret: [secret, {"k": f"x{secret}y"}], "n": 3, "b": True, "none": None}
    assert redact_value(nested) == {"***": ["***", {"k": "x***y"}], "n": 3, "b": True, "none": None}
    deep: object = secret
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    text = json.dumps(redact_value(deep))
    assert secret not in text and json.dumps(secret)[1:-1] not in text


def test_the_masker_hands_over_the_plain_secrets_it_holds(secret: str) -> None:
    assert secret in known_secrets()
