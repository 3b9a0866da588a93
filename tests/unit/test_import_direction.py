"""Imports go one way: kernel <- connectors, models <- engine <- config <- evaluation, service.

Each room of the code may import only the rooms listed for it in RULES. The check reads
the source (every import, also those inside functions and `if TYPE_CHECKING:` blocks) and
runs nothing, so a layering slip fails here with the file and line that made it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("streamer", "connectors", "models")

RULES: dict[str, tuple[str, ...]] = {
    "streamer": (),
    "streamer.__main__": ("streamer.service.cli",),
    "streamer.core": ("streamer.core",),
    "connectors": ("connectors", "streamer.core"),
    "models": ("models", "streamer.core"),
    # The engine reaches models through their protocols, and the rows of series state
    # those hand over (`models.series_rows`).
    "streamer.engine": (
        "streamer.engine",
        "streamer.core",
        "connectors.base",
        "models.base",
        "models.series_rows",
    ),
    "streamer.config": (
        "streamer.config",
        "streamer.core",
        "connectors",
        "models",
        "streamer.engine",
    ),
    "streamer.evaluation": (
        "streamer.evaluation",
        "streamer.config",
        "streamer.engine",
        "streamer.core",
        "connectors",
        "models",
    ),
    "streamer.service": ("streamer", "connectors", "models"),
}
"""Room -> the first-party modules (and their children) it may import."""

SCHEMA = tuple(
    f"streamer.config.{name}"
    for name in (
        "types",
        "secrets",
        "schema",
        "schema_edges",
        "schema_models",
        "schema_drift",
        "schema_streams",
        "schema_files",
        "file",
        "problems",
    )
)
"""The config schema and its loading: pydantic only, so `streamer config check` stays light."""

NO_IO_IN_MODELS = frozenset(
    {
        "socket",
        "threading",
        "subprocess",
        "time",
        "queue",
        "sqlite3",
        "http",
        "urllib",
        "os",
        "pathlib",
        "io",
        "kafka",
        "paho",
        "influxdb_client",
        "apscheduler",
    }
)
"""Models are pure computation: no sockets, threads, clocks or files."""

KNOWN: frozenset[tuple[str, str]] = frozenset()
"""Imports that break a rule and are still to be removed; this list only shrinks."""


def modules() -> dict[str, Path]:
    """Every first-party module by dotted name (a package by its own name)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = modules()


def imports(name: str, path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for each first-party import in the file, at any depth."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                child = f"{base}.{alias.name}"
                yield node.lineno, child if child in MODULES else base


def first_party(module: str) -> bool:
    return module.split(".")[0] in PACKAGES


def room(module: str) -> str | None:
    """The longest rule key that is the module or one of its parents."""
    if module == "streamer":
        return "streamer"
    keys = [k for k in RULES if k != "streamer" and (module == k or module.startswith(k + "."))]
    return max(keys, key=len) if keys else None


def allowed(importer: str, imported: str) -> bool:
    rule = ("streamer.core", *SCHEMA) if importer in SCHEMA else RULES[room(importer) or ""]
    return any(imported == p or imported.startswith(p + ".") for p in rule)


def test_every_module_belongs_to_a_room() -> None:
    homeless = sorted(name for name in MODULES if room(name) is None)
    assert not homeless, f"add a rule for these modules' room: {homeless}"


def test_imports_go_one_way() -> None:
    broken = [
        f"{path.relative_to(ROOT)}:{line} imports {imported}: {room(name)} may import only "
        + ", ".join(("streamer.core", *SCHEMA) if name in SCHEMA else RULES[room(name) or ""])
        for name, path in MODULES.items()
        for line, imported in imports(name, path)
        if first_party(imported) and not allowed(name, imported) and (name, imported) not in KNOWN
    ]
    assert not broken, "\n".join(broken)


def test_known_exceptions_still_exist() -> None:
    """A fixed exception must leave KNOWN, so the list can only shrink."""
    present = {
        (name, imported) for name, path in MODULES.items() for _, imported in imports(name, path)
    }
    assert present >= KNOWN, f"remove from KNOWN: {sorted(KNOWN - present)}"


def test_models_do_no_io() -> None:
    used = [
        f"{path.relative_to(ROOT)}:{line} imports {imported}"
        for name, path in MODULES.items()
        if room(name) == "models"
        for line, imported in imports(name, path)
        if imported.split(".")[0] in NO_IO_IN_MODELS
    ]
    assert not used, "\n".join(used)


def test_the_streamer_package_imports_nothing() -> None:
    """`import streamer.core.records` runs `streamer/__init__.py` first: it must stay empty."""
    tree = ast.parse((ROOT / "streamer" / "__init__.py").read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]


def test_the_check_sees_a_violation() -> None:
    """The rules reject an upward import, so the tests above can fail."""
    assert not allowed("models.baseline", "streamer.engine.window")
    assert not allowed("connectors.kafka_source", "streamer.config.schema")
    assert not allowed("streamer.config.schema", "streamer.engine.drift")
    assert allowed("streamer.service.daemon", "streamer.engine.pipeline")
