"""Reading a JSON payload for the `Decoder`: `loads` (fast, and exact about what is
malformed or non-finite) and `duplicate_key` (a key some object gives twice)."""

from __future__ import annotations

import json
from typing import Any

import orjson

from connectors.field_values import RejectError
from streamer.core.records import MALFORMED


def loads(raw: bytes) -> Any:
    """orjson's parse (several times faster); what it refuses, the standard library
    reads, so that `NaN` or `Infinity` is rejected as non-finite rather than malformed.
    Nesting deeper than either parser goes is malformed (not a RecursionError)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            return json.loads(raw)
        except RecursionError:
            raise RejectError(MALFORMED, "json: nested too deeply") from None


def duplicate_key(raw: bytes, event: dict[str, Any]) -> str | None:
    """A key that some object of the payload gives twice, or None.

    Every key in the text has its `:`, so when the payload has no more `:` bytes than
    the parsed objects have keys, no key was lost to a twin: the common event is settled
    by one count (see `Decoder.decode`). Colons in strings (ISO times) are counted next,
    unless an escape (`\\u003a`) could have written one; only then is the text read
    again, pair by pair.
    """
    colons = raw.count(b":")
    keys, in_strings = _key_and_colon_counts(event)
    if colons == keys or (colons == keys + in_strings and b"\\u003" not in raw):
        return None
    try:
        json.loads(raw, object_pairs_hook=_unique_pairs)
    except _DuplicateKeyError as exc:
        return exc.key
    except RecursionError:
        raise RejectError(MALFORMED, "json: nested too deeply") from None
    return None


def _key_and_colon_counts(event: dict[str, Any]) -> tuple[int, int]:
    """How many keys the objects of a parsed JSON object have, all depths together, and
    how many `:` their strings (keys included) hold."""
    keys = colons = 0
    stack: list[Any] = [event]
    while stack:
        item = stack.pop()
        values = item
        if type(item) is dict:
            keys += len(item)
            colons += sum(key.count(":") for key in item)
            values = item.values()
        for value in values:
            kind = type(value)
            if kind is str:
                colons += value.count(":")
            elif kind is dict or kind is list:
                stack.append(value)
    return keys, colons


class _DuplicateKeyError(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(key)
            seen.add(key)
    return found
