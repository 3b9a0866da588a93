"""Read a config file into a `StreamerConfig`, reporting every problem with its key path.

Order of work: parse YAML (duplicate keys are errors), replace `${VAR}` and
`${VAR:-default}` in string values from the environment (`$${` is a literal `${`), apply
`STREAMER__...` environment overrides (`STREAMER__WINDOW__STEP=5s`,
`STREAMER__SINKS__0__TOKEN=...`; list items by index), then validate. Each problem names
its key path (`sources[1].bootstrap_servers`), what was given (never for secrets) and what
is accepted.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import types
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr, ValidationError

from streamer.config.schema import StreamerConfig
from streamer.core.errors import ConfigError, ConfigProblem

log = logging.getLogger(__name__)

ENV_PREFIX = "STREAMER__"
_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

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


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> StreamerConfig:
    """Load and validate a config file; raise ConfigError listing every problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            source, [ConfigProblem("", f"cannot read file: {exc.strerror}")]
        ) from None
    return parse_config(text, source, environ)


def parse_config(
    text: str, source: str = "<config>", environ: Mapping[str, str] | None = None
) -> StreamerConfig:
    """Validate config text (YAML); `source` names it in errors."""
    env = os.environ if environ is None else environ
    data = _parse_yaml(text, source)
    origins: dict[str, str] = {}
    problems = list(_interpolate(data, env, origins))
    problems += _apply_overrides(data, env, origins)
    if problems:
        raise ConfigError(source, problems)
    _drop_retired(data, source, origins)
    try:
        return StreamerConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _problems_from(exc, origins)) from None


# --- YAML --------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (the later would win)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice in one mapping", mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _parse_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(
            source, [ConfigProblem("", f"{where}invalid YAML: {exc.problem or exc}")]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, [ConfigProblem("", f"invalid YAML: {exc}")]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            source,
            [
                ConfigProblem(
                    "", f"the file must be a mapping of sections, not a {type(data).__name__}"
                )
            ],
        )
    return data


# --- ${VAR} references -------------------------------------------------------------------


def _interpolate(
    node: Any, env: Mapping[str, str], origins: dict[str, str], path: tuple[PathPart, ...] = ()
) -> Iterator[ConfigProblem]:
    """Replace `${VAR}` in every string value, in place; yield a problem per unset VAR."""
    items: list[tuple[PathPart, Any]]
    if isinstance(node, dict):
        items = list(node.items())
    elif isinstance(node, list):
        items = list(enumerate(node))
    else:
        return
    for key, value in items:
        here = (*path, key)
        if isinstance(value, str) and "${" in value:
            missing: list[str] = []

            def replace(match: re.Match[str], missing: list[str] = missing) -> str:
                if match.group(0) == "$${":
                    return "${"
                name, default = match.group(1), match.group(2)
                if name in env:
                    return env[name]
                if default is not None:
                    return default
                missing.append(name)
                return match.group(0)

            node[key] = _REFERENCE.sub(replace, value)
            names = [name for name, _ in _REFERENCE.findall(value) if name]
            origins[format_path(here)] = "from " + ", ".join(f"${{{n}}}" for n in names)
            for name in missing:
                yield ConfigProblem(
                    format_path(here),
                    f"environment variable {name} is not set (referenced as ${{{name}}}); "
                    f"set it, or give a default: ${{{name}:-value}}",
                )
        else:
            yield from _interpolate(value, env, origins, here)


# --- STREAMER__ overrides ----------------------------------------------------------------


def _override_path(name: str) -> list[PathPart]:
    parts = name[len(ENV_PREFIX) :].split("__")
    return [int(p) if p.isdigit() else p.lower() for p in parts]


def _override_value(raw: str) -> Any:
    """Overrides are strings; `[...]` and `{...}` are read as YAML lists and mappings."""
    if raw.strip()[:1] in ("[", "{"):
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError:
            return raw
    return raw


def _apply_overrides(
    data: dict[str, Any], env: Mapping[str, str], origins: dict[str, str]
) -> list[ConfigProblem]:
    """Set each `STREAMER__A__0__B` variable at `a[0].b` in data, in place."""
    problems: list[ConfigProblem] = []
    for name in sorted(k for k in env if k.startswith(ENV_PREFIX)):
        parts = _override_path(name)
        if not parts or "" in parts:
            problems.append(
                ConfigProblem("", f"{name}: empty key; expected e.g. STREAMER__WINDOW__STEP")
            )
            continue
        problem = _set_path(data, parts, _override_value(env[name]))
        if problem:
            problems.append(ConfigProblem(format_path(parts), f"{problem} (from {name})"))
        else:
            origins[format_path(parts)] = f"from environment variable {name}"
    return problems


def _set_path(data: dict[str, Any], parts: list[PathPart], value: Any) -> str | None:
    """Set value at parts, creating mappings (and appending list items) on the way."""
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        nxt: Any = value if last else ([] if isinstance(parts[i + 1], int) else {})
        if isinstance(part, int):
            if not isinstance(node, list):
                return f"{format_path(parts[:i]) or 'the file'} is not a list"
            if part > len(node):
                where = format_path(parts[:i])
                return f"{where} has {len(node)} item(s); index {part} is past the end"
            if part == len(node):
                node.append(nxt)
            elif last:
                node[part] = value
        else:
            if not isinstance(node, dict):
                return f"{format_path(parts[:i])} is not a mapping"
            if last or part not in node:
                node[part] = nxt
        node = node[part]
    return None


# --- retired keys ------------------------------------------------------------------------

# Keys that once did something and now do nothing: accepted with a warning, so a config
# written for an earlier version still loads. (section, key) -> why it does nothing.
_RETIRED = {
    ("window", "length"): "the window keeps no history of steps; models keep their own",
}


def _drop_retired(data: dict[str, Any], source: str, origins: dict[str, str]) -> None:
    """Remove retired keys from data, in place, logging one warning for each found."""
    for (section, key), why in _RETIRED.items():
        node = data.get(section)
        if not isinstance(node, dict) or key not in node:
            continue
        del node[key]
        path = f"{section}.{key}"
        origin = origins.get(path)
        where, fix = (f" ({origin})", "unset it") if origin else ("", "delete the line")
        log.warning("%s: %s%s no longer does anything (%s); %s", source, path, where, why, fix)


# --- validation errors -------------------------------------------------------------------


def _problems_from(exc: ValidationError, origins: dict[str, str]) -> list[ConfigProblem]:
    """One problem per key path from pydantic's errors; alternatives joined with "or"."""
    messages: dict[str, list[str]] = {}
    given: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        path, message, value = _describe(error)
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
