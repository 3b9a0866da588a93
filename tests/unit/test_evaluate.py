"""`streamer evaluate`: every model on a real data set, as JSON; and no look-ahead."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import river.datasets

import streamer.evaluation.evaluate as evaluation
import streamer.evaluation.report as report_module
from streamer.config.schema import LstmModel, RetrainConfig
from streamer.evaluation.evaluate import DRIFT_RETRAIN, MODELS, EvaluateOptions, evaluate
from streamer.service.cli import main
from tests.helpers import seasonal

WATER_FLOW = Path(river.datasets.__file__).parent / "water-flow.csv"
HOUR = 3_600_000_000_000


def test_evaluate_on_rivers_water_flow_reports_every_model_per_horizon(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report, picture = tmp_path / "report.json", tmp_path / "plot.png"
    status = main(
        [
            "evaluate",
            "--data", str(WATER_FLOW),
            "--time-col", "Time",
            "--targets", "Water flow [l/s]",
            "--step", "1h",
            "--horizon", "3",
            "--season", "24",
            "--warmup-epochs", "5",
            "--models", ",".join((*MODELS, "lstm_drift_retrain")),
            "--output", str(report),
            "--plot", str(picture),
            "--plot-series", "Water flow [l/s]",
            "--plot-horizon", "2",
        ]
    )  # fmt: skip
    assert status == 0
    got = json.loads(report.read_text())
    assert set(MODELS) == {
        "lstm", "ensemble", "last_value", "seasonal_naive", "snarimax", "holtwinters"
    }  # fmt: skip
    assert set(got["models"]) == {*MODELS, "lstm_drift_retrain"}
    # 1,268 hourly rows, the first quarter for warm-up: about 950 issues x 3 horizons.
    assert 2_700 < got["n_forecasts"] <= 3 * 951
    assert got["seconds"] > 0
    for name, metrics in got["models"].items():
        for key in ("mae", "mse", "rmse", "smape", "mase_by_horizon"):
            assert len(metrics[key]) == 3, (name, key)
        assert metrics["mae_avg"] == pytest.approx(np.mean(metrics["mae"]))
        assert metrics["mse_avg"] == pytest.approx(np.mean(metrics["mse"]))
        assert 0 < metrics["mase"] < 5, name
        assert metrics["mae"][0] <= metrics["rmse"][0]
        # Conformal 90% intervals, and drift in the inputs (model-free) and errors.
        assert len(metrics["coverage"]) == 3
        assert 0.85 < metrics["coverage_avg"] < 0.95, name
        assert metrics["width_avg"] > 0
        assert metrics["drifts"] >= 1
        assert np.isfinite(metrics["mae_after_changes"])
        assert set(metrics["buckets"]) == {"h=1", "1..3"}
        assert metrics["buckets"]["h=1"]["mse"] == pytest.approx(metrics["mse"][0])
        per_series = metrics["per_series"]["Water flow [l/s]"]
        assert per_series["mse_avg"] == pytest.approx(metrics["mse_avg"])  # the only series
    assert got["models"]["lstm"]["retrains"] >= 1
    assert got["models"]["lstm"]["served_by"].keys() == {"lstm"}
    assert set(got["models"]["ensemble"]["mean_weights"]) == {
        "lstm",
        "last_value",
        "seasonal_naive",
    }
    assert picture.read_bytes().startswith(b"\x89PNG")
    out = capsys.readouterr().out
    assert all(name in out for name in MODELS)
    lstm_line = next(line for line in out.splitlines() if line.startswith("lstm "))
    assert " last, x" in lstm_line
    assert " snaive)" in lstm_line
    assert "MSE per series" in out


def write_csv(path: Path, values: np.ndarray) -> None:
    rows = ["time,a,b"] + [
        f"{1_700_000_000 + 3600 * t},{float(values[0, t])!r},{float(values[1, t])!r}"
        for t in range(values.shape[1])
    ]
    path.write_text("\n".join(rows) + "\n")


def test_no_forecast_depends_on_a_value_the_replay_had_not_yet_delivered(tmp_path: Path) -> None:
    values = seasonal(2, 240, season=12, seed=3)
    changed = values.copy()
    cut = 150
    changed[:, cut:] = np.random.default_rng(9).normal(1e4, 1e3, changed[:, cut:].shape)
    write_csv(tmp_path / "same.csv", values)
    write_csv(tmp_path / "changed.csv", changed)

    def run(name: str) -> dict[str, dict[tuple[str, int], np.ndarray]]:
        options = EvaluateOptions(
            data=tmp_path / name,
            time_col="time",
            targets=["a", "b"],
            step_ns=HOUR,
            horizon=3,
            season=12,
            model=LstmModel(type="lstm", hidden_size=8, lags=4),
            models=MODELS,
            retrain=RetrainConfig(window=24, burn_in=6, min_new_steps=10),
            retrain_every=24,
            warmup_epochs=3,
        )
        report = evaluate(options)
        assert report.models["lstm"]["retrains"] >= 3  # warm-up, then on schedule
        return {
            model: {
                (str(s), int(t)): y
                for s, t, y in zip(
                    run.issued.series, run.issued.steps, run.issued.yhat, strict=True
                )
            }
            for model, run in report.runs.items()
        }

    same, other = run("same.csv"), run("changed.csv")
    first_changed = (1_700_000_000 + 3600 * cut) * 1_000_000_000 // HOUR
    for model in MODELS:
        before = [key for key in same[model] if key[1] < first_changed]
        assert len(before) == 2 * cut
        for key in before:
            np.testing.assert_array_equal(same[model][key], other[model][key], err_msg=model)
        # ...and the change itself is seen once it has arrived.
        assert any(
            not np.array_equal(same[model][key], other[model][key])
            for key in same[model]
            if key[1] >= first_changed
        )


def test_a_missing_column_is_named_with_the_columns_there_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_csv(tmp_path / "x.csv", np.ones((2, 10)))
    status = main(
        ["evaluate", "--data", str(tmp_path / "x.csv"), "--time-col", "time",
         "--targets", "a,c", "--step", "1h", "--horizon", "2"]
    )  # fmt: skip
    assert status == 2
    err = capsys.readouterr().err
    assert "no column 'c'" in err
    assert "'time', 'a', 'b'" in err


def test_the_lstm_beats_last_value_on_a_seasonal_series_and_the_ensemble_its_best_member(
    tmp_path: Path,
) -> None:
    values = seasonal(3, 1_100, season=24, seed=4)
    rows = ["time,a,b,c"] + [
        f"{1_700_000_000 + 3600 * t}," + ",".join(repr(float(v)) for v in values[:, t])
        for t in range(values.shape[1])
    ]
    (tmp_path / "daily.csv").write_text("\n".join(rows) + "\n")
    report = evaluate(
        EvaluateOptions(
            data=tmp_path / "daily.csv",
            time_col="time",
            targets=["a", "b", "c"],
            step_ns=HOUR,
            horizon=6,
            season=24,
            normalize="standard",
            models=("lstm", "last_value", "seasonal_naive", "ensemble"),
            model=LstmModel(type="lstm", hidden_size=16),
            warmup_epochs=3,
        )
    )
    m = report.models
    assert set(m["lstm"]["served_by"]) == {"lstm"}  # the net alone, no cold-start baseline
    members = ("lstm", "last_value", "seasonal_naive")
    for bucket in ("h=1", "1..6"):
        lstm, last = m["lstm"]["buckets"][bucket]["mse"], m["last_value"]["buckets"][bucket]["mse"]
        assert lstm < 0.8 * last, (bucket, lstm, last)
        # The ensemble follows the best member. Its weights take a few hundred steps to
        # follow the net as it learns, a large share of these 825 scored steps; over the
        # 10,800 of the tuning sets it is within 2% of the best (bench/quality.py).
        best = min(m[name]["buckets"][bucket]["mse"] for name in members)
        assert m["ensemble"]["buckets"][bucket]["mse"] <= 1.25 * best, bucket
    assert m["ensemble"]["mean_weights"]["lstm"] > 0.6
    assert set(m["ensemble"]["mean_weights"]) == {"lstm", "last_value", "seasonal_naive"}


def test_rows_batched_give_the_same_forecasts_as_one_row_a_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows are read many to a micro-batch (a batch ending where a retrain is due), and
    no forecast of any model differs from reading them one row a batch. The file has a
    hole of three hours, which the window fills, and a drift the drift-retrain model acts
    on."""
    values = seasonal(2, 300, season=12, seed=5)
    values[:, 200:] += 8.0
    kept = np.r_[0:120, 123:300]
    rows = ["time,a,b"] + [
        f"{1_700_000_000 + 3600 * t},{float(values[0, t])!r},{float(values[1, t])!r}" for t in kept
    ]
    (tmp_path / "x.csv").write_text("\n".join(rows) + "\n")
    options = EvaluateOptions(
        data=tmp_path / "x.csv",
        time_col="time",
        targets=["a", "b"],
        step_ns=HOUR,
        horizon=3,
        season=12,
        model=LstmModel(type="lstm", hidden_size=8, lags=4),
        models=(*MODELS, DRIFT_RETRAIN),
        retrain=RetrainConfig(window=24, burn_in=6, min_new_steps=10),
        retrain_every=30,
        warmup_epochs=3,
    )

    def forecasts(rows_per_batch: int) -> dict[str, dict[tuple[str, int], np.ndarray]]:
        monkeypatch.setattr(evaluation, "ROWS_PER_BATCH", rows_per_batch)
        report = evaluate(options)
        assert report.models["lstm"]["retrains"] >= 5
        issued = {model: run.issued for model, run in report.runs.items()}
        return {
            model: {(str(s), int(t)): y for s, t, y in zip(i.series, i.steps, i.yhat, strict=True)}
            for model, i in issued.items()
        }

    one, batched = forecasts(1), forecasts(64)
    for model in (*MODELS, DRIFT_RETRAIN):
        assert one[model].keys() == batched[model].keys(), model
        differ = [k for k in one[model] if not np.array_equal(one[model][k], batched[model][k])]
        assert not differ, f"{model}: {len(differ)} forecasts differ, e.g. {differ[0]}"


def evaluate_flags(data: Path, *more: str) -> list[str]:
    return [
        "evaluate", "--data", str(data), "--time-col", "time", "--step", "1h",
        "--models", "last_value", *more,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("rows", "targets", "why"),
    [
        ([f"1700000000,{i}" for i in range(40)], "a", "all have the same time"),
        ([f"2024-01-01T{i:02d}:00:00Z,{i}" for i in range(20)], "time", "is a number"),
    ],
)
def test_nothing_scored_is_said_with_the_reason_instead_of_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rows: list[str], targets: str, why: str
) -> None:
    data = tmp_path / "data.csv"
    data.write_text("\n".join(["time,a", *rows]) + "\n")
    status = main(evaluate_flags(data, "--targets", targets, "--horizon", "3"))
    assert status == 2
    err = capsys.readouterr().err
    assert f"{data}: nothing could be scored: " in err, err
    assert why in err, err


def test_a_horizon_past_the_file_averages_the_horizons_scored_and_writes_json_null(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, report = tmp_path / "data.csv", tmp_path / "report.json"
    write_csv(data, seasonal(2, 200, season=12, seed=1))
    flags = ["--targets", "a,b", "--horizon", "500", "--output", str(report)]
    assert main(evaluate_flags(data, *flags)) == 0
    capsys.readouterr()

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    got = json.loads(report.read_text(), parse_constant=refuse)
    metrics = got["models"]["last_value"]
    assert got["n_forecasts"] > 10_000
    assert metrics["mse"][0] is not None
    assert metrics["mse"][-1] is None
    scored = [v for v in metrics["mae"] if v is not None]
    assert metrics["mae_avg"] == pytest.approx(np.mean(scored))
    for key in ("mae_avg", "rmse_avg", "mase", "coverage_avg"):
        assert np.isfinite(metrics[key] if metrics[key] is not None else np.nan), key
    for per_series in metrics["per_series"].values():
        assert per_series["mse_avg"] is not None


def test_score_averages_only_the_horizons_that_have_a_score() -> None:
    from streamer.engine.scoring import Actuals, Issued, score

    steps = np.arange(4)
    actual = Actuals(np.array(["s"] * 4, dtype=object), steps, np.array([1.0, 2.0, 4.0, 7.0]))
    issued = Issued(np.array(["s"], dtype=object), np.array([0]), np.array([[1.0, 1.0, 1.0, 1.0]]))
    got = score(actual, issued, 0, {"s": 1.0})
    assert got["mae"][:3] == [1.0, 3.0, 6.0]
    assert np.isnan(got["mae"][3])
    assert got["mae_avg"] == pytest.approx(10 / 3)
    assert got["mase"] == pytest.approx(10 / 3)


@pytest.mark.parametrize("flag", ["--output", "--plot"])
def test_an_output_in_a_missing_directory_is_refused_before_the_work(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    flag: str,
) -> None:
    def never(*_: object) -> None:
        raise AssertionError("evaluated before the output was checked")

    monkeypatch.setattr(evaluation, "evaluate", never)
    data = tmp_path / "data.csv"
    write_csv(data, seasonal(2, 50, season=12))
    out = tmp_path / "nodir" / "x.out"
    assert main(evaluate_flags(data, "--targets", "a", "--horizon", "2", flag, str(out))) == 2
    err = capsys.readouterr().err
    assert f"{flag} {out}: there is no directory {out.parent}" in err


def test_the_first_progress_line_shows_no_rate_until_time_has_passed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io
    from types import SimpleNamespace

    from streamer.evaluation import report
    from streamer.evaluation.options import Progress

    now = [100.0]
    monkeypatch.setattr(report, "time", SimpleNamespace(monotonic=lambda: now[0]))
    stream = io.StringIO()
    bar = report.ProgressBar(stream, every=0.0)
    bar(Progress("last_value", 1, 1, 1, 1000))
    now[0] += 2.0
    bar(Progress("last_value", 1, 1, 1000, 1000))
    first, last = stream.getvalue().splitlines()
    assert first.endswith("1/1000 rows"), first
    assert last.endswith("1000/1000 rows, 500 rows/s"), last


def test_the_averages_table_keeps_its_columns_apart_whatever_the_numbers() -> None:
    # A MASE of 24774.384 after an sMAPE of 8.074 was printed as `8.07424774.384`.
    metrics = {
        "mae_avg": 1.401e4, "rmse_avg": 8.314e4, "smape_avg": 8.07424, "mase": 24774.384,
        "coverage_avg": 0.654, "width_avg": 1.72e5, "drifts": 0, "retrains": 12,
        "mae_after_changes": math.nan,
    }  # fmt: skip
    lines = report_module._averages(SimpleNamespace(models={"lstm": metrics}))  # type: ignore[arg-type]
    head, row = (line.split() for line in lines)
    assert len(row) == 1 + len(report_module.AVERAGES)
    assert float(row[3]) == pytest.approx(8.074)
    assert float(row[4]) == pytest.approx(24770)
    assert head[:2] == ["model", "MAE"]
