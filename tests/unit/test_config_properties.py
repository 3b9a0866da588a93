"""Whatever a config file or the environment holds, loading it gives a config or a
ConfigError listing problems: never an internal exception."""

from __future__ import annotations

import string

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.config.file import parse_config
from streamer.config.schema import StreamerConfig
from streamer.core.errors import ConfigError

SECTION_KEYS = [*StreamerConfig.model_fields, "stpe", "type", "path", "token"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["kafka", "mqtt", "replay", "file", "influxdb", "5s", "1h", "${X}", "$${"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(SECTION_KEYS) | st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)
documents = st.dictionaries(st.sampled_from(SECTION_KEYS), values, max_size=6)


def load_or_problems(text: str, environ: dict[str, str]) -> None:
    try:
        parse_config(text, "prop.yaml", environ)
    except ConfigError as exc:
        problems = exc.problems
    else:
        return
    assert problems
    assert all(isinstance(p.message, str) and p.message for p in problems)


@settings(max_examples=300, deadline=None)
@given(documents)
def test_any_mapping_gives_a_config_or_config_problems(document: dict[str, object]) -> None:
    load_or_problems(yaml.safe_dump(document), {})


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_gives_a_config_or_config_problems(text: str) -> None:
    load_or_problems(text, {})


override_names = st.lists(
    st.sampled_from([*SECTION_KEYS, "0", "1", "7", "", "step", "X"]), min_size=0, max_size=4
).map(lambda parts: "STREAMER__" + "__".join(parts).upper())


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(override_names, st.text(string.printable, max_size=10), max_size=4))
def test_any_env_overrides_give_a_config_or_config_problems(env: dict[str, str]) -> None:
    base = "sources:\n  - type: replay\n    path: d.csv\nsinks:\n  - type: file\n    path: o.lp\n"
    load_or_problems(base, env)
