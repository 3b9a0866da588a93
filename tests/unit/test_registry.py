"""One table per kind: what a config may name is exactly what the daemon can build."""

from __future__ import annotations

from typing import Any, Literal, get_args

import pytest

from streamer.config import schema as cfg
from streamer.config.drift import DETECTORS
from streamer.config.edges import DEAD_LETTERS, SINKS, SOURCES
from streamer.config.file import parse_config
from streamer.config.models import MODELS, build_model, model_config
from streamer.config.registry import Registry
from streamer.config.types import Section
from streamer.core.errors import ConfigError

TABLES: dict[str, tuple[Registry[Any, Any], Any, str]] = {
    "model": (MODELS, cfg.Model, "model:\n  type: {type}\n"),
    "source": (SOURCES, cfg.Source, "sources:\n  - type: {type}\n"),
    "sink": (SINKS, cfg.Sink, "sinks:\n  - type: {type}\n"),
    "dead letter": (DEAD_LETTERS, cfg.DeadLetter, "pipeline:\n  dead_letter:\n    type: {type}\n"),
    "detector": (DETECTORS, cfg.Detector, "drift:\n  detector:\n    type: {type}\n"),
}


def _members(union: Any) -> set[type]:
    return set(get_args(get_args(union)[0]))


@pytest.mark.parametrize("kind", TABLES)
def test_every_section_a_config_accepts_has_a_builder(kind: str) -> None:
    table, union, _ = TABLES[kind]
    assert {row.section for row in table.entries()} == _members(union)


@pytest.mark.parametrize("kind", TABLES)
def test_an_unknown_type_is_a_config_error_naming_every_allowed_one(kind: str) -> None:
    table, _, text = TABLES[kind]
    with pytest.raises(ConfigError) as caught:
        parse_config(text.format(type="no_such_type"))
    problem = next(p for p in caught.value.problems if p.path.endswith("type"))
    assert "'no_such_type' is not accepted" in problem.message
    for allowed in table.types():
        assert repr(allowed) in problem.message


def test_a_section_without_a_builder_is_refused_naming_the_builders() -> None:
    class Carrier(Section):
        type: Literal["pigeon"] = "pigeon"

    with pytest.raises(ConfigError) as caught:
        SINKS.builder(Carrier(), "sinks[2].type")
    (problem,) = caught.value.problems
    assert problem.path == "sinks[2].type"
    assert problem.message == "unknown sink type 'pigeon'; choose from influxdb, file, kafka"


def test_named_members_and_fallbacks_are_models_the_table_builds() -> None:
    baselines = cfg.LstmModel.model_fields["baseline"].annotation
    named = {*get_args(cfg.EnsembleMember), *get_args(baselines)}
    assert named <= set(MODELS.types())


@pytest.mark.parametrize("name", MODELS.types())
def test_every_model_type_builds_a_forecaster_of_its_horizon(name: str) -> None:
    built = build_model(model_config(name, horizon=3, season=4), cfg.RetrainConfig())
    assert built.forecaster.horizon == 3
    assert (built.net is not None) == issubclass(MODELS.entry(name, "").section, cfg.NetSettings)
