"""A package's public names, each imported when first used: `import models` or
`import connectors` stays light, and torch, kafka-python, paho and river load only with
the part that needs them (PEP 562)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], object]:
    """A module `__getattr__` that finds each exported name in its module."""

    def find(name: str) -> object:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return find
