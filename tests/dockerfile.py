"""The Dockerfile read instruction by instruction: what the container tests check and
what test_image_build replays."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

REPO = Path(__file__).parents[1]


def parsed() -> list[tuple[int, str, str]]:
    """(stage, INSTRUCTION, arguments) in order: stage 0 is what comes before the first
    FROM, 1 the first stage; continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    out, stage = [], 0
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            stage += word.upper() == "FROM"
            out.append((stage, word.upper(), " ".join(rest.split())))
    return out


def instructions(word: str, stage: int | None = None) -> list[str]:
    """The arguments of every `word` instruction (of one stage, if given)."""
    return [a for s, w, a in parsed() if w == word and stage in (None, s)]


def env(stage: int | None = None) -> dict[str, str]:
    """ENV settings, NAME -> value."""
    items = [item.partition("=") for a in instructions("ENV", stage) for item in shlex.split(a)]
    return {name: value for name, _, value in items}


def healthcheck_command() -> list[str]:
    """The HEALTHCHECK's exec-form command."""
    (check,) = instructions("HEALTHCHECK")
    found = re.search(r"CMD (\[.*\])$", check)
    assert found, f"not an exec-form HEALTHCHECK: {check}"
    return list(json.loads(found.group(1)))
