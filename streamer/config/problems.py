"""pydantic's validation errors as the config problems a user reads: each at the key path
the user wrote (`sources[1].topics`, not pydantic's internal names for union members),
saying what is wrong, what is accepted and, except for secrets, what was given.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from streamer.config.schema import StreamerConfig
from streamer.core.errors import ConfigProblem

PathPart = str | int


def format_path(parts: tuple[PathPart, ...] | list[PathPart]) -> str:
    """`('sources', 1, 'topics')` -> `sources[1].topics`."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def problems_from(
    exc: ValidationError, origins: dict[str, str], derived_sources: bool = False
) -> list[ConfigProblem]:
    """One problem per key path from pydantic's errors; alternatives joined with "or".
    With `derived_sources`, errors in an item of `sources` are left out: they repeat
    those of a stream's source."""
    messages: dict[str, list[str]] = {}
    given: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        if derived_sources and error["loc"][:1] == ("sources",) and len(error["loc"]) > 1:
            continue
        path, message, value = _describe(error)
        if derived_sources and path == "sources":
            path = "streams"  # e.g. two streams' sources with one name
        if message not in messages.setdefault(path, []):
            messages[path].append(message)
        if value is not None:
            given[path] = value
    problems = []
    for path, alternatives in messages.items():
        text = ", or ".join(alternatives)
        if path in given:
            text += f"; got {given[path]}"
        origin = next(
            (o for p, o in origins.items() if path == p or path.startswith(p + ".")), None
        )
        if origin:
            text += f" [{origin}]"
        problems.append(ConfigProblem(path, text))
    return problems


def _describe(error: Any) -> tuple[str, str, str | None]:
    """Path, what is wrong or expected, and the given value as shown (None: not shown)."""
    loc: tuple[PathPart, ...] = tuple(error["loc"])
    kind: str = error["type"]
    ctx: dict[str, Any] = error.get("ctx", {})
    shown, annotation = _walk(loc)
    path = format_path(shown)
    if kind == "extra_forbidden":
        parent = _walk(loc[:-1])[1]
        accepted = sorted(parent.model_fields) if _is_model(parent) else []
        close = difflib.get_close_matches(str(loc[-1]), accepted, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return path, f"unknown key{hint}; accepted here: {', '.join(accepted)}", None
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        field = str(ctx.get("discriminator", "type")).strip("'")
        given = f"{ctx['tag']!r} is not accepted" if "tag" in ctx else "missing"
        tags = ctx.get("expected_tags") or ", ".join(map(repr, _tags(annotation)))
        return format_path([*shown, field]), f"{given}; expected one of {tags}", None
    if kind == "missing":
        return path, f"required, but missing{_accepted(annotation)}", None
    message = str(error["msg"])
    if kind == "value_error":
        return path, message.removeprefix("Value error, "), None
    message = message.replace("Input should be", "should be")
    if annotation is SecretStr:
        return path, f"{message} (value hidden: it is a secret)", None
    return path, message, _short(error.get("input"))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _walk(loc: tuple[PathPart, ...]) -> tuple[list[PathPart], Any]:
    """The keys of loc that the user wrote, and the (stripped) type expected there.

    pydantic puts the member of a union into loc (`sources, 0, 'kafka', 'topics'`); those
    parts pick the member but are not shown.
    """
    shown: list[PathPart] = []
    annotation: Any = StreamerConfig
    for part in loc:
        annotation = _strip(annotation)
        if _is_union(annotation):
            annotation = _member(annotation, part)
            continue
        shown.append(part)
        if isinstance(part, int):
            args = typing.get_args(annotation)
            annotation = args[0] if typing.get_origin(annotation) is list and args else None
        elif _is_model(annotation) and part in annotation.model_fields:
            annotation = annotation.model_fields[part].annotation
        elif typing.get_origin(annotation) is dict and len(typing.get_args(annotation)) == 2:
            annotation = typing.get_args(annotation)[1]  # `streams.<name>`: a StreamConfig
        else:
            annotation = None
    return shown, _strip(annotation)


def _strip(annotation: Any) -> Any:
    """Unwrap Annotated[...] and `X | None` down to the type that holds the value."""
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif _is_union(annotation):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _tags(union: Any) -> list[str]:
    """The `type` values a tagged union accepts, in the schema's order."""
    tags: list[str] = []
    for member in typing.get_args(union) if _is_union(union) else ():
        member = _strip(member)
        if _is_model(member) and "type" in member.model_fields:
            tags.extend(typing.get_args(member.model_fields["type"].annotation))
    return tags


def _accepted(annotation: Any) -> str:
    """What a missing list of tagged sections would accept: '; a list, each with a type of
    ...' (empty for anything else)."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is list and args and (tags := _tags(_strip(args[0]))):
        return f"; a list, each item with `type` one of {', '.join(map(repr, tags))}"
    return ""


def _member(union: Any, tag: PathPart) -> Any:
    """The member of a tagged union whose `type` literal is tag (None if not tagged)."""
    for member in typing.get_args(union):
        member = _strip(member)
        if _is_model(member) and "type" in member.model_fields:
            literal = member.model_fields["type"].annotation
            if tag in typing.get_args(literal):
                return member
    return None
