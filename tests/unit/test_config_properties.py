"""Whatever a config file or the environment holds, loading it gives a config or a
ConfigError listing problems: never an internal exception."""

from __future__ import annotations

import json
import string

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.config.file import load_config, parse_config
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


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_in_a_file_give_a_config_or_config_problems(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("bytes") / "streamer.yaml"
    path.write_bytes(data)
    try:
        load_config(path, environ={})
    except ConfigError as exc:
        problems = exc.problems
    else:
        return
    assert problems
    assert all(p.message for p in problems)


yaml_pieces = st.sampled_from(
    ["? ", ": ", "[a, b]", "{a: 1}", "- ", "x", "1", "\n", "  ", "window", "step", "&a ", "*a"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(yaml_pieces, max_size=16).map("".join))
def test_any_yaml_keys_and_nesting_give_a_config_or_config_problems(text: str) -> None:
    load_or_problems(text, {})


# Keys whose value must be a string, each in a config that is valid around it.
STRING_KEYS = {
    "http.bind": "http: {bind: %s}\n",
    "sources[0].bootstrap_servers[0]": "",
    "sinks[1].url": "",
    "sources[1].topics[0]": "",
    "window.step": "window: {step: %s}\n",
    "retrain.schedule": "retrain: {schedule: %s}\n",
}
BASE = (
    "sources:\n  - {type: kafka, bootstrap_servers: [%s], topics: [t]}\n"
    "  - {type: mqtt, topics: [%s]}\n"
    "sinks:\n  - {type: file, path: o.lp}\n"
    "  - {type: influxdb, url: %s, org: o, bucket: b, token: t}\n"
)
GOOD = {"bootstrap_servers": "'k:9092'", "topics": "t", "url": "'http://i:8086'"}
# In JSON, which YAML reads as it is (floats with a dot: YAML reads `1e+20` as a string).
not_strings = st.one_of(
    st.integers(),
    st.integers(-(10**6), 10**6).map(lambda i: i / 8),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from("ab"), st.integers(), max_size=2),
).map(json.dumps)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(STRING_KEYS)), not_strings)
def test_a_value_of_the_wrong_kind_is_a_problem_at_its_key(key: str, value: str) -> None:
    fill = {name: (value if name in key else good) for name, good in GOOD.items()}
    text = BASE % (fill["bootstrap_servers"], fill["topics"], fill["url"])
    if STRING_KEYS[key]:
        text += STRING_KEYS[key] % value
    with pytest.raises(ConfigError) as info:
        parse_config(text, "prop.yaml", {})
    paths = {p.path for p in info.value.problems}
    assert paths
    assert all(p == key or p.startswith(key.split("[")[0]) for p in paths)


segments = st.lists(st.sampled_from(["out", "a", "b.lp", "x"]), min_size=1, max_size=4)


@settings(max_examples=200, deadline=None)
@given(segments, st.lists(st.sampled_from(["./", "q/../", "out/../"]), max_size=3))
def test_any_spelling_of_one_file_for_two_sinks_is_refused(
    parts: list[str], detours: list[str]
) -> None:
    plain = "/".join(parts)
    spelled = "".join(detours) + plain
    text = (
        "sources: [{type: replay, path: in.csv}]\n"
        f"sinks: [{{type: file, path: '{plain}'}}, {{type: file, path: '{spelled}'}}]\n"
    )
    with pytest.raises(ConfigError, match=r"sinks\[0\].path .* and sinks\[1\].path .* same"):
        parse_config(text, "prop.yaml", {})
