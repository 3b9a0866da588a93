"""The file sink: CSV rows, and output made exact again after a restore."""

from __future__ import annotations

import csv
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.field_values import iso_ns
from connectors.file_sink import CSV_HEADER, FileSink
from connectors.points import iso_times
from tests.helpers import output


def test_csv_rows_hold_observed_and_forecast_points(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    sink = FileSink(path, "csv")
    sink.write(output(["a,b"], [[1.5, 2.5]]))
    sink.close()
    with path.open() as stream:
        rows = list(csv.DictReader(stream))
    assert path.read_text().startswith(CSV_HEADER)
    assert [(r["measurement"], r["series"], r["horizon"]) for r in rows] == [
        ("observed", "a,b", ""),
        ("forecast", "a,b", "1"),
        ("forecast", "a,b", "2"),
    ]
    assert rows[0]["time"] == "2026-09-21T14:13:20Z"
    assert rows[2]["time"] == "2026-09-21T14:13:22Z"
    assert (rows[1]["yhat"], rows[1]["issued_at"]) == ("1.5", "2026-09-21T14:13:20Z")


def test_restore_truncates_what_was_written_after_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "out.lp"
    sink = FileSink(path)
    sink.write(output(["a"], [[1.0]]))
    state = sink.state_dict()
    sink.write(output(["b"], [[2.0]]))  # written, then the daemon dies
    sink.close()
    before = path.read_text()

    again = FileSink(path)
    again.load_state_dict(state)
    again.close()
    after = path.read_text()
    assert "series=b" in before
    assert "series=b" not in after
    assert after == before[: state["size"]]


def test_truncate_mode_starts_a_fresh_file_when_there_is_no_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "out.lp"
    path.write_text("old output\n")
    appending = FileSink(path, mode="append")
    appending.start_fresh()
    appending.close()
    assert path.read_text() == "old output\n"
    truncating = FileSink(path, mode="truncate")
    truncating.start_fresh()
    truncating.close()
    assert path.read_text() == ""


@settings(max_examples=200, deadline=None)
@given(
    times=st.lists(st.integers(-(2**40), 2**42).map(lambda ms: ms * 1_000_000), min_size=1),
    extra=st.sampled_from([0, 1_000, 1]),  # whole ms, then µs, then ns in the batch
)
def test_times_written_are_times_a_replay_reads_back(times: list[int], extra: int) -> None:
    # A step on midnight was written `2020-01-01Z`, which no ISO 8601 reader (our own
    # replay source included) takes back.
    times = [*times, times[0] + extra]
    written = iso_times(times)
    assert all("T" in text and text.endswith("Z") for text in written)
    if extra % 1_000 == 0:  # what a replay's ISO 8601 reader holds: microseconds
        assert [iso_ns(text) for text in written] == times
