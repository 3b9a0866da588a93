"""Read a config file into a `StreamerConfig`, reporting every problem with its key path.

Order of work: parse YAML (duplicate keys are errors), replace `${VAR}` and
`${VAR:-default}` (the default where VAR is unset or empty, as in the shell) in string
values from the environment (`$${` is a literal `${`), apply
`STREAMER__...` environment overrides (`STREAMER__WINDOW__STEP=5s`,
`STREAMER__SINKS__0__TOKEN=...`; list items by index), then validate. Each problem names
its key path (`sources[1].bootstrap_servers`), what was given (never for secrets) and what
is accepted (`streamer.config.problems`).
"""

from __future__ import annotations

import logging
import os
import re
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from streamer.config.problems import PathPart, format_path, problems_from
from streamer.config.schema import StreamerConfig
from streamer.core.errors import ConfigError, ConfigProblem

log = logging.getLogger(__name__)

ENV_PREFIX = "STREAMER__"
_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> StreamerConfig:
    """Load and validate a config file; raise ConfigError listing every problem."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(
            source, [ConfigProblem("", f"cannot read file: {exc.strerror}")]
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [_not_utf8(data, exc)]) from None
    return parse_config(text, source, environ)


def _not_utf8(data: bytes, exc: UnicodeDecodeError) -> ConfigProblem:
    """Where a file stops being UTF-8, as a line and column, and which byte it is."""
    line = data.count(b"\n", 0, exc.start) + 1
    column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
    return ConfigProblem(
        "",
        f"line {line}, column {column}: byte 0x{data[exc.start]:02x} is not UTF-8; "
        "a config file is UTF-8 text (save it as UTF-8)",
    )


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
    # With `streams`, `sources` is made of the streams' own: each error there is also
    # reported, at the key the user wrote, under `streams`.
    derived = isinstance(data.get("streams"), dict) and "sources" not in data
    try:
        return StreamerConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, problems_from(exc, origins, derived)) from None


# --- YAML --------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (the later would win)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if not isinstance(key, typing.Hashable):  # a `? [a, b]` or `? {a: 1}` key
            kind = "mapping" if isinstance(key, dict) else type(key).__name__
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"a key must be a single value such as a name, not a {kind}",
                key_node.start_mark,
            )
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
                if env.get(name) or (name in env and default is None):
                    return env[name]
                if default is not None:  # unset or empty, as the shell's ${VAR:-default}
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
