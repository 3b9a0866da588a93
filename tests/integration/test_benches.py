"""Every benchmark in bench/ still runs, on the tiniest size that goes through all of it.

Figures come from bench/ (run by hand, quoted in bench/README.md), never from a timed
test: these tests only run each script as it is run by hand (`python bench/NAME.py`
from the repository root, this checkout's packages first on the path) with tiny
arguments, and check that it exits cleanly and reports the figures it is there for,
each one present and of the right sign. They say nothing about speed.

The benchmarks that talk to Kafka or InfluxDB take the `services` fixture, so that
they fail, rather than skip, when the test services are down. quality.py,
evaluate_speed.py, warm_start.py and drift_alarms.py read the ETT files from `../shared/data` beside
the repository.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration.conftest import Services

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"  # quality.py's default --data


def bench(name: str, *args: str | Path, tmp: Path) -> str:
    """Runs bench/NAME.py with `args` from the repository root; returns its stdout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["TMPDIR"] = str(tmp)  # the scripts' own work folders
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / f"{name}.py"), *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, (
        f"bench/{name}.py {' '.join(map(str, args))} exited with {done.returncode}\n"
        f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    )
    return done.stdout


def read(path: Path) -> Any:
    return json.loads(path.read_text())


def positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_batch_ranks_reports_ms_per_batch_for_every_subject(tmp_path: Path) -> None:
    out = tmp_path / "batch_ranks.json"
    bench("batch_ranks", "--rows", "20", "--ranks", "1", "2", "--wide", "10", "--out", out,
          tmp=tmp_path)  # fmt: skip
    figures = read(out)
    assert figures["rows"] == 20
    subjects = figures["ms_per_batch"]
    assert set(subjects) == {
        "seasonal_naive",
        "outcomes",
        "ensemble",
        "cold_start_lstm",
        "drift_page_hinkley",
        "drift_adwin",
        "drift_kswin",
        "drift_kswin_river",
    }
    for ms in subjects.values():
        assert set(ms) == {"1", "2"}
        assert all(positive(v) for v in ms.values()), ms
    assert figures["wide"]["series"] == 10
    for drift in ("drift_page_hinkley", "drift_adwin", "drift_kswin", "drift_kswin_river"):
        assert positive(figures["wide"]["ms_per_batch"][drift])


def test_changelog_restore_commits_and_restores_every_series(
    services: Services, tmp_path: Path
) -> None:
    stdout = bench("changelog_restore", "--series", "20", "--partitions", "2", "--steps", "3",
                   tmp=tmp_path)  # fmt: skip
    (line,) = [line for line in stdout.splitlines() if line.startswith("{")]
    figures = json.loads(line)
    assert figures["series"] == 20
    assert positive(figures["record_bytes_mean"])
    assert positive(figures["record_bytes_deflate1"])
    assert positive(figures["restore_series_per_s"])
    for step in ("take_s", "commit_s", "read_s", "put_s", "restore_s"):
        assert figures[step] >= 0


def test_drift_alarms_counts_alarms_and_finds_every_level_shift(tmp_path: Path) -> None:
    out = tmp_path / "drift_alarms.json"
    bench("drift_alarms", "--data", DATA, "--rows", "250", "--series", "1", "--steps", "250",
          "--kinds", "gaussian", "--before", "--output", out, tmp=tmp_path)  # fmt: skip
    figures = read(out)
    assert len(figures["tuning"]) == 2 * 6  # two sets, three signals, with and without ADWIN
    for name in ("ETTh1", "ETTm2"):
        for how in ("value", "last value", "value, raw ADWIN", "last value, raw ADWIN"):
            signal = "input" if how.startswith("value") else "error"
            rate = figures["tuning"][f"{name} {signal} ({how})"]
            assert len(rate["per_series"]) == 7  # one series per ETT column
            assert rate["mean"] >= 0
    assert figures["synthetic"]["gaussian input (value)"]["mean"] >= 0
    for kind in ("gaussian", "ar0.8", "sine24"):
        found = figures["delays"][f"input, 3-sd level shift, {kind}"]
        assert found["series"] == 2
        assert found["missed"] == 0
        assert positive(found["median"])
    assert figures["delays"]["error, 3-sd jump"]["missed"] == 0


def test_drift_policies_scores_every_policy_and_retrains(tmp_path: Path) -> None:
    out = tmp_path / "drift_policies.json"
    bench("drift_policies", "--series", "1", "--steps", "160", "--every", "24",
          "--output", out, tmp=tmp_path)  # fmt: skip
    figures = read(out)
    assert set(figures) == {"level_shift", "cycle_change"}
    for policies in figures.values():
        assert set(policies) == {
            "never (weekly schedule only)",
            "default detector (on_drift: retrain)",
            "every 24 steps",
        }
        for result in policies.values():
            assert positive(result["mae"])
            assert positive(result["mae_day_after_change"])
        assert policies["every 24 steps"]["retrains"] > 0


def test_end_to_end_runs_the_daemon_and_both_ceilings(services: Services, tmp_path: Path) -> None:
    out = tmp_path / "end_to_end.json"
    bench("end_to_end", "--inputs", "readings", "--models", "lstm,last_value", "--series", "50",
          "--steps", "3", "--repeat", "1", "--switch-intervals", "0.005,0.0005",
          "--output", out, tmp=tmp_path)  # fmt: skip
    readings = read(out)["inputs"]["readings"]
    assert readings["events"] == 150
    assert positive(readings["bare_consumer_events_per_s"][0])
    assert positive(readings["bare_writer_points_per_s"][0])
    labels = [f"{m} switch={s}" for m in ("lstm", "last_value") for s in (0.005, 0.0005)]
    for model in labels:
        (run,) = readings["daemon"][model]
        assert run["events"] == 150
        assert positive(run["events_per_s"])
        assert positive(run["points_per_s"])
        assert positive(run["forecasts_per_s"])
        assert positive(readings["ratios"][model]["points_vs_bare_writer"]["median"])


def test_memory_reports_growth_per_series_and_eviction(tmp_path: Path) -> None:
    out = tmp_path / "memory.json"
    bench("memory", "memory", "--series", "50", "--steps", "10", "--beyond", "20",
          "--output", out, tmp=tmp_path)  # fmt: skip
    figures = read(out)
    assert figures["series"] == 50
    assert len(figures["marks"]) == 10
    assert all(positive(m["rss_bytes"]) and m["live"] == 50 for m in figures["marks"])
    assert isinstance(figures["bytes_per_series"], int)
    assert figures["beyond"]["new_series"] == 20
    assert figures["beyond"]["live"] == 50  # the least recently seen were evicted


def test_memory_checkpoint_reports_size_and_stall(tmp_path: Path) -> None:
    out = tmp_path / "checkpoint.json"
    bench("memory", "checkpoint", "--series", "50", "--at", "200,400", "--every", "1ms",
          "--output", out, tmp=tmp_path)  # fmt: skip
    figures = read(out)
    assert [c["steps"] for c in figures["checkpoints"]] == [200, 400]
    for c in figures["checkpoints"]:
        assert positive(c["bytes"])
        assert positive(c["median_batch_seconds"])
        assert c["checkpoints_started"] >= 1  # written in the background as the stream goes
        assert positive(c["longest_batch_starting_one_seconds"])
        assert positive(c["written_while_waiting_seconds"])
    assert "growth" in figures


def test_influx_schema_writes_every_shape_of_the_same_steps(
    services: Services, tmp_path: Path
) -> None:
    out = tmp_path / "influx_schema.json"
    bench("influx_schema", "--series", "20", "--steps", "2", "--repeat", "1", "--output", out,
          tmp=tmp_path)  # fmt: skip
    figures = read(out)
    assert figures["design"]["lines_per_step"] == 25  # 1 observed, 12 forecasts, 12 errors
    assert figures["wide"]["lines_per_step"] == 3
    for shape in ("design", "lean", "wide"):
        assert all(positive(r) for r in figures[shape]["steps_per_s"])


def test_latency_times_live_readings_to_their_acknowledged_forecasts(
    services: Services, tmp_path: Path
) -> None:
    out = tmp_path / "latency.json"
    bench("latency", "--series", "20", "--seconds", "4", "--warmup", "3", "--output", out,
          tmp=tmp_path)  # fmt: skip
    figures = read(out)
    assert figures["steps_counted"] >= 20  # every series' steps after the warm-up
    assert 0 < figures["p50_s"] <= figures["p90_s"] <= figures["p99_s"] <= figures["max_s"]
    assert figures["bound_s"] == 2 * (0.2 + 1.0)


def test_per_event_compares_batched_and_per_event_step_and_daemon(
    services: Services, tmp_path: Path
) -> None:
    out = tmp_path / "per_event.json"
    bench("per_event", "--series", "50", "--seconds", "0.2", "--steps", "3", "--events", "100",
          "--output", out, tmp=tmp_path)  # fmt: skip
    figures = read(out)
    step = figures["lstm_step"]
    assert positive(step["batched_forecasts_per_s"])
    assert positive(step["per_event_forecasts_per_s"])
    assert positive(step["ratio"])
    runs = figures["daemon"]["runs"]
    assert runs["micro-batches"]["events"] == 150
    assert runs["per event"]["events"] == 100
    assert all(positive(run["forecasts_per_s"]) for run in runs.values())
    assert positive(figures["daemon"]["ratio"])


def test_pipeline_throughput_reads_and_writes_every_tick(
    services: Services, tmp_path: Path
) -> None:
    out = tmp_path / "pipeline_throughput.json"
    # 6,000 ticks: more than one 5,000-record batch for each reader.
    bench("pipeline_throughput", "--series", "100", "--events-per-series", "60", "--repeat",
          "1", "--output", out, tmp=tmp_path)  # fmt: skip
    figures = read(out)
    assert figures["events"] == 6000
    assert positive(figures["bare_consumer_events_per_s"][0])
    assert positive(figures["pipeline_events_per_s"][0])
    assert positive(figures["median_ratio"])
    pipeline = figures["pipeline"]
    assert pipeline["events"] == 6000
    assert positive(pipeline["steps_closed"])
    assert pipeline["forecasts_out"] == figures["horizon"] * pipeline["steps_closed"]
    assert pipeline["points_written"] == pipeline["steps_closed"] + pipeline["forecasts_out"]


def test_quality_scores_models_by_horizon_bucket(tmp_path: Path) -> None:
    out = tmp_path / "quality.json"
    models = ("lstm", "last_value", "seasonal_naive")
    bench("quality", "--data", DATA, "--sets", "ETTh1", "--models", ",".join(models),
          "--rows", "200", "--output", out, tmp=tmp_path)  # fmt: skip
    figures = read(out)["ETTh1"]
    assert positive(figures["window"])
    assert set(figures["models"]) == set(models)
    for model in figures["models"].values():
        assert set(model["buckets"]) == {"h=1", "1..24", "1..48"}
        assert all(positive(b["mse"]) for b in model["buckets"].values())
        assert positive(sum(model["served_by"].values()))


def test_evaluate_speed_times_both_ways_and_counts_differing_forecasts(tmp_path: Path) -> None:
    out = tmp_path / "evaluate_speed.json"
    bench("evaluate_speed", "--data", DATA, "--rows", "400", "--models", "lstm,last_value",
          "--output", out, tmp=tmp_path)  # fmt: skip
    figures = read(out)
    assert figures["rows"] == 400
    for model in ("lstm", "last_value"):
        run = figures["models"][model]
        assert positive(run["rows_per_s_one_row_a_batch"])
        assert positive(run["speed_up"])
        assert positive(run["forecasts"])
        assert run["forecasts_differing"] == 0
    assert positive(figures["models"]["lstm"]["retrains"])


def test_warm_start_scores_a_cold_and_a_trained_deployment(tmp_path: Path) -> None:
    out = tmp_path / "warm_start.json"
    bench("warm_start", "--data", DATA, "--history", "300", "--live", "60", "--epochs", "1",
          "--min-train-steps", "100", "--output", out, tmp=tmp_path)  # fmt: skip
    figures = read(out)
    cold, warm = figures["runs"]["cold"], figures["runs"]["warm"]
    assert cold["served"] == {"baseline": cold["forecasts"]}  # not trained live yet
    assert "lstm" in warm["served"]  # trained on the history
    for run in (cold, warm):
        assert positive(run["forecasts"])
        assert all(positive(run[bucket]["mae"]) for bucket in ("h=1", "1..6", "1..24"))


def test_recurrent_step_reports_speed_and_memory_per_series(tmp_path: Path) -> None:
    out = tmp_path / "recurrent_step.json"
    bench("recurrent_step", "--series", "100", "--hidden", "8", "--seconds", "0.1",
          "--output", out, tmp=tmp_path)  # fmt: skip
    (result,) = read(out)["results"]
    assert result["series"] == 100
    for figure in (
        "steps_per_s",
        "forecasts_per_s",
        "state_bytes_per_series",
        "replay_ring_bytes_per_series",
    ):
        assert positive(result[figure]), figure


def test_retrain_reports_training_speed_and_stream_with_and_without(tmp_path: Path) -> None:
    out = tmp_path / "retrain.json"
    bench("retrain", "--series", "50", "--hidden", "8", "--windows", "64", "--seconds", "0.1",
          "--repeat", "1", "--output", out, tmp=tmp_path)  # fmt: skip
    figures = read(out)
    assert [r["threads"] for r in figures["retrain"]] == [1, 2]
    assert all(positive(r["windows_per_s"]) for r in figures["retrain"])
    assert positive(figures["pipeline_events_per_s_without"][0])
    assert positive(figures["pipeline_events_per_s_during"][0])
    assert positive(figures["ratio"])
    assert sum(figures["retrain_outcomes"].values()) >= 1  # a retrain ran to its end
