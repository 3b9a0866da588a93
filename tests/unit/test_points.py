"""Every point the sinks write parses back to the intended measurement, tags, fields and time."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from connectors.base import Output
from connectors.line_protocol import parse_line
from connectors.points import lines
from streamer.core.records import ForecastErrors, Forecasts, StepBatch
from tests import helpers

names = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\\"),
    min_size=1,
    max_size=10,
)
values = st.floats(allow_infinity=False, allow_nan=True, width=64)


@given(
    st.lists(
        st.tuples(names, values, st.lists(values, min_size=2, max_size=2)), min_size=1, max_size=6
    ),
    st.booleans(),
)
def test_lines_parse_back_to_the_points_of_the_schema(
    rows: list[tuple[str, float, list[float]]], with_interval: bool
) -> None:
    n, step_ns = len(rows), 1_000_000_000
    series = np.array([r[0] for r in rows], dtype=object)
    steps = np.arange(n, dtype=np.int64) + 1_700_000_000
    observed = StepBatch(
        slots=np.arange(n),
        series=series,
        kinds=np.array(["sensor"] * n, dtype=object),
        steps=steps,
        values=np.array([[r[1]] for r in rows]),
        filled=np.zeros(n, bool),
        reset=np.zeros(n, bool),
        step_ns=step_ns,
    )
    yhat = np.array([r[2] for r in rows])
    forecasts = Forecasts(
        series,
        steps,
        yhat,
        "last_value",
        step_ns,
        lower=yhat - 1 if with_interval else None,
        upper=yhat + 1 if with_interval else None,
    )
    got = [parse_line(line) for line in lines(Output(observed, forecasts))]

    expected_observed = [
        (r[0], r[1], int(s) * step_ns)
        for r, s in zip(rows, steps, strict=True)
        if math.isfinite(r[1])
    ]
    assert [
        (p.tags["series"], p.fields["value"], p.time) for p in got if p.measurement == "observed"
    ] == expected_observed
    forecast_points = [p for p in got if p.measurement == "forecast"]
    expected = [
        (r[0], str(h + 1), r[2][h], (int(s) + h + 1) * step_ns)
        for r, s in zip(rows, steps, strict=True)
        for h in range(2)
        if math.isfinite(r[2][h])
    ]
    assert [
        (p.tags["series"], p.tags["horizon"], p.fields["yhat"], p.time) for p in forecast_points
    ] == expected
    for p in forecast_points:
        assert p.tags["model"] == "last_value"
        assert p.time is not None
        assert p.fields["issued_at"] == p.time - int(p.tags["horizon"]) * step_ns
        assert ("lower" in p.fields) == with_interval


def test_each_forecast_carries_the_model_and_version_of_its_own_row() -> None:
    """A cold start hands over in mid-batch: every sink tags each row with its model."""
    from connectors.file_sink import csv_rows
    from connectors.kafka_sink import forecast_messages

    n, step_ns = 4, 1_000_000_000
    series = np.array(["a", "b", "c", "d"], dtype=object)
    steps = np.arange(n, dtype=np.int64) + 1_700_000_000
    observed = StepBatch(
        slots=np.arange(n),
        series=series,
        kinds=np.array(["sensor"] * n, dtype=object),
        steps=steps,
        values=np.ones((n, 1)),
        filled=np.zeros(n, bool),
        reset=np.zeros(n, bool),
        step_ns=step_ns,
    )
    forecasts = Forecasts(
        series,
        steps,
        np.arange(n, dtype=float)[:, None],
        "lstm",
        step_ns,
        version=3,
        models=np.array(["baseline", "lstm", "baseline", "lstm"], dtype=object),
        versions=np.array([-1, 3, -1, 3]),
    )
    output = Output(observed, forecasts)
    points = [parse_line(line) for line in lines(output)]
    by_series = {
        p.tags["series"]: (p.tags["model"], p.fields.get("version"), p.fields["yhat"])
        for p in points
        if p.measurement == "forecast"
    }
    assert by_series == {
        "a": ("baseline", None, 0.0),
        "b": ("lstm", 3, 1.0),
        "c": ("baseline", None, 2.0),
        "d": ("lstm", 3, 3.0),
    }
    csv = {row.split(",")[2]: row.split(",")[4] for row in csv_rows(output) if "forecast" in row}
    assert csv == {"a": "baseline", "b": "lstm", "c": "baseline", "d": "lstm"}
    messages = {key.decode(): value for key, value in forecast_messages(output)}
    assert [b'"model": "baseline"' in messages[s] for s in "abcd"] == [True, False, True, False]


@given(st.lists(st.floats(allow_infinity=True, allow_nan=True, width=64), min_size=1, max_size=8))
def test_every_error_point_is_one_influxdb_takes(errors: list[float]) -> None:
    # An error of 1e200 squared is inf, which InfluxDB refuses (and so would lose the
    # whole point): the point keeps abs_err and goes without sq_err.
    n, step_ns = len(errors), 1_000_000_000
    series = np.array([f"s{i}" for i in range(n)], dtype=object)
    steps = np.arange(n, dtype=np.int64) + 1_700_000_000
    scored = ForecastErrors(
        series=series,
        slots=np.arange(n),
        steps=steps,
        horizon=np.ones(n, dtype=np.int64),
        error=np.array(errors),
        scaled=np.zeros(n),
        model=np.array(["lstm"] * n, dtype=object),
        step_ns=step_ns,
    )
    output = dataclasses.replace(helpers.output(["x"], [[1.0]]), errors=scored)
    points = [p for p in map(parse_line, lines(output)) if p.measurement == "forecast_error"]
    assert [(p.tags["series"], p.fields["abs_err"]) for p in points] == [
        (s, abs(e)) for s, e in zip(series, errors, strict=True) if math.isfinite(e)
    ]
    for p in points:
        value = p.fields["abs_err"]
        assert isinstance(value, float)
        assert ("sq_err" in p.fields) == math.isfinite(value * value)
