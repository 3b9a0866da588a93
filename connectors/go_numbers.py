"""Go's number grammar, as the InfluxDB server reads field values: `strconv.ParseInt`
/ `ParseUint` (`go_int`) and `strconv.ParseFloat` (`go_float`), with underscores where
Go allows them (`_underscores_ok`)."""

from __future__ import annotations

import re

_GO_INT = re.compile(r"[+-]?[0-9]+")
_GO_DECIMAL = re.compile(r"[+-]?(?=\.?[0-9])[0-9_]*\.?[0-9_]*(?:[eE][+-]?[0-9][0-9_]*)?")
_GO_HEX = re.compile(
    r"[+-]?0[xX](?=[_.]*[0-9a-fA-F])[0-9a-fA-F_]*\.?[0-9a-fA-F_]*[pP][+-]?[0-9][0-9_]*"
)
_GO_SPECIAL = re.compile(r"(?i:[+-]?inf(?:inity)?|nan)")


def go_int(text: str, signed: bool) -> int | None:
    """strconv.ParseInt / ParseUint in base 10 with 64 bits: the value, or None."""
    if not _GO_INT.fullmatch(text) or (not signed and text[0] in "+-"):
        return None
    value = int(text)
    low, high = (-(2**63), 2**63) if signed else (0, 2**64)
    return value if low <= value < high else None


def go_float(text: str) -> float:
    """strconv.ParseFloat(text, 64); ValueError where it fails (bad syntax, or a value
    beyond a float)."""
    if _GO_SPECIAL.fullmatch(text):
        return float(text)
    hexadecimal = _GO_HEX.fullmatch(text) is not None
    if not hexadecimal and not _GO_DECIMAL.fullmatch(text):
        raise ValueError(f"invalid syntax: {text!r}")
    if "_" in text and not _underscores_ok(text):
        raise ValueError(f"invalid syntax: {text!r}")
    digits = text.replace("_", "")
    try:
        number = float.fromhex(digits) if hexadecimal else float(digits)
    except OverflowError:
        raise ValueError(f"out of range: {text!r}") from None
    if number in (float("inf"), float("-inf")):
        raise ValueError(f"out of range: {text!r}")
    return number


def _underscores_ok(text: str) -> bool:
    """underscoreOK: an underscore only between digits, or after a base prefix."""
    text = text[1:] if text[0] in "+-" else text
    saw, i = "^", 0
    hexadecimal = text[:2].lower() == "0x"
    if text[:2].lower() in ("0b", "0o", "0x"):
        saw, i = "0", 2
    for char in text[i:]:
        if "0" <= char <= "9" or (hexadecimal and char.lower() in "abcdef"):
            saw = "0"
        elif char == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"
