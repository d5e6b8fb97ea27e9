"""CloudWatch Logs FilterLogEvents as AWS documents it, on top of moto's: the request rules moto skips
(``logStreamNamePrefix`` honoured, refused together with ``logStreamNames``) and the filter pattern syntax
for unstructured log events (terms, quoted phrases, ``?`` for OR, ``-`` to exclude, ``%regex%``).

JSON (``{ $.x = ... }``) and space-delimited (``[a, b]``) patterns are refused by name: nothing matches all.
Pure: the router hands the request body in and applies what comes back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

# "Filter patterns with regex can only include": alphanumerics, these symbols and these operators.
REGEX_ALLOWED = re.compile(r"^[A-Za-z0-9:_#=@/;,\-^$?\[\]{}|\\*+.]+$")


class InvalidParameter(ValueError):
    """Answered as CloudWatch Logs' InvalidParameterException (400)."""


Matcher = Callable[[str], bool]


@dataclass(frozen=True)
class Prepared:
    body: bytes  # what moto is asked (filterPattern removed, a prefix turned into the stream names it matches)
    matcher: Matcher | None  # applied to the messages moto answers; None: every one
    empty: bool = False  # no stream has the prefix: the answer is empty without asking moto


def prepare(body: bytes, stream_names: Callable[[str], Iterable[str] | None]) -> Prepared:
    """The request moto should see and the matcher for its answer; ``stream_names(group)`` lists a group's
    streams (None: no such group)."""
    params: dict[str, Any] = json.loads(body or b"{}")
    prefix = params.pop("logStreamNamePrefix", None)
    if prefix is not None and params.get("logStreamNames") is not None:
        raise InvalidParameter("logStreamNames and logStreamNamePrefix cannot both be specified")
    matcher = compile_pattern(params.pop("filterPattern", None) or "")
    empty = False
    known = stream_names(str(params.get("logGroupName", ""))) if prefix is not None else None
    if known is not None:  # an unknown group: moto answers ResourceNotFoundException
        names = [name for name in known if name.startswith(prefix or "")]
        params["logStreamNames"] = names
        empty = not names  # moto reads an empty list as "every stream"
    return Prepared(json.dumps(params).encode(), matcher, empty)


def filter_answer(answer: bytes, matcher: Matcher | None) -> bytes:
    """Keep the events whose message matches; moto's nextToken and searchedLogStreams stay as they are (AWS too
    may answer a page with fewer events than asked, or none, and a token)."""
    if matcher is None:
        return answer
    payload = json.loads(answer)
    payload["events"] = [e for e in payload.get("events") or [] if matcher(str(e.get("message", "")))]
    return json.dumps(payload).encode()


def compile_pattern(pattern: str) -> Matcher | None:
    """A matcher for the unstructured-log filter pattern syntax; None for the empty pattern (every event)."""
    text = pattern.strip()
    if not text:
        return None
    if text.startswith("{"):
        raise InvalidParameter(f"JSON filter patterns ({pattern!r}) are not supported by this emulator")
    if text.startswith("["):
        raise InvalidParameter(f"Space-delimited filter patterns ({pattern!r}) are not supported by this emulator")
    if text.startswith("%"):
        return _regex(text, pattern)
    return _terms(text, pattern)


def _regex(text: str, pattern: str) -> Matcher:
    if len(text) < 3 or not text.endswith("%"):
        raise InvalidParameter(f"Invalid filter pattern {pattern!r}: a regex is written %regex%")
    body = text[1:-1]
    if not REGEX_ALLOWED.match(body):
        raise InvalidParameter(
            f"Invalid filter pattern {pattern!r}: a regex can only hold letters, digits, the symbols :_#=@/;,- "
            "and the operators ^$?[]{}|\\*+. (no parentheses, no spaces)"
        )
    try:
        compiled = re.compile(body)
    except re.error as exc:
        raise InvalidParameter(f"Invalid filter pattern {pattern!r}: {exc}") from None
    return lambda message: compiled.search(message) is not None


def _tokens(text: str, pattern: str) -> list[tuple[str, str]]:
    """(operator, term) pairs: operator "" (must contain), "?" (any of) or "-" (must not contain)."""
    tokens: list[tuple[str, str]] = []
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        operator = ""
        if text[i] in "?-":
            operator, i = text[i], i + 1
        if i < len(text) and text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise InvalidParameter(f"Invalid filter pattern {pattern!r}: unterminated quoted term")
            term, i = text[i + 1 : end], end + 1
        else:
            end = i
            while end < len(text) and not text[end].isspace():
                end += 1
            term, i = text[i:end], end
            if '"' in term or "%" in term:
                raise InvalidParameter(f"Invalid filter pattern {pattern!r}: quote a term with symbols in it")
        if not term:
            raise InvalidParameter(f"Invalid filter pattern {pattern!r}: an operator needs a term")
        tokens.append((operator, term))
    return tokens


def _terms(text: str, pattern: str) -> Matcher:
    tokens = _tokens(text, pattern)
    any_of = [term for op, term in tokens if op == "?"]
    if any_of and len(any_of) != len(tokens):
        raise InvalidParameter(
            f"Invalid filter pattern {pattern!r}: ?term (OR) cannot be combined with other terms or exclusions"
        )
    if any_of:
        return lambda message: any(term in message for term in any_of)
    required = [term for op, term in tokens if op == ""]
    excluded = [term for op, term in tokens if op == "-"]
    return lambda message: all(t in message for t in required) and not any(t in message for t in excluded)
