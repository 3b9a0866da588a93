"""One table per kind of configurable part: a section's `type` -> its section and builder.

The daemon and `streamer evaluate` build models, sources, sinks, dead letters and drift
detectors through these tables only, so a type means the same part everywhere, and one
the table does not hold is a config error that names the ones it does.

>>> from streamer.config.schema import LastValueModel
>>> BASELINES: Registry[LastValueModel, str] = Registry("baseline")
>>> BASELINES.add(LastValueModel, "builds LastValue")
>>> BASELINES.types(), BASELINES.builder(LastValueModel(type="last_value"), "model.type")
(('last_value',), 'builds LastValue')
>>> try:
...     BASELINES.entry("mean", "model.type")
... except ConfigError as error:
...     print(*error.problems)
model.type: unknown baseline type 'mean'; choose from last_value
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar, get_args

from pydantic import BaseModel

from streamer.core.errors import ConfigError, ConfigProblem

S = TypeVar("S", bound=BaseModel)
B = TypeVar("B")


def section_type(section: type[BaseModel]) -> str:
    """The one value a section's `type: Literal[...]` field allows."""
    field = section.model_fields.get("type")
    values = get_args(field.annotation) if field is not None else ()
    if len(values) != 1 or not isinstance(values[0], str):
        raise TypeError(f"{section.__name__}.type must be a Literal of one string")
    return values[0]


@dataclass(frozen=True)
class Entry(Generic[S, B]):
    """One row: the config type, its section class and what builds it."""

    key: str
    section: type[S]
    build: B


class Registry(Generic[S, B]):
    """The table of one kind (`model`, `source`, ...), in the order rows were added."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._rows: dict[str, Entry[S, B]] = {}

    def add(self, section: type[S], build: B) -> None:
        type_ = section_type(section)
        if type_ in self._rows:
            raise ValueError(f"{self.kind} type {type_!r} is registered twice")
        self._rows[type_] = Entry(type_, section, build)

    def types(self) -> tuple[str, ...]:
        return tuple(self._rows)

    def entries(self) -> tuple[Entry[S, B], ...]:
        return tuple(self._rows.values())

    def entry(self, type_: str, where: str) -> Entry[S, B]:
        """The row for a type; a ConfigError at `where` naming the types there are."""
        row = self._rows.get(type_)
        if row is None:
            problem = f"unknown {self.kind} type {type_!r}; choose from {', '.join(self._rows)}"
            raise ConfigError(self.kind, [ConfigProblem(where, problem)])
        return row

    def builder(self, section: BaseModel, where: str) -> B:
        """What builds this section (found by its class, so a subclass is not taken for it)."""
        for row in self._rows.values():
            if type(section) is row.section:
                return row.build
        return self.entry(section_type(type(section)), where).build
