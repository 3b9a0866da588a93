"""The file `evaluate` reads: a wide CSV (a time column and one column per target),
checked and measured once (`inspect`), then replayed row by row as one event per target
(`WideReplay`), in the fields `make_decoder` reads."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.base import RawRecord, StreamSource
from connectors.codecs import Decoder, TimeUnit
from connectors.replay import ReplaySource, ReplaySourceError, csv_header, csv_records
from streamer.core.records import SeriesKind
from streamer.evaluation.options import EvaluateError, EvaluateOptions


@dataclass(frozen=True)
class FileFacts:
    rows: int  # the rows used
    warmup_time: str  # the time column of the first row after the warm-up
    mean: dict[str, float]
    std: dict[str, float]
    numeric_time: bool


def _rows(path: Path) -> Iterator[dict[str, str]]:
    """The data rows as the replay that follows reads them: one a line."""
    for _, row in csv_records(path):
        yield row


def content(options: EvaluateOptions, rows: int) -> tuple[int, int]:
    """(distinct times, target values that are numbers) in the first `rows` rows: what
    a file that gave nothing to score lacked."""
    times: set[str] = set()
    numbers = 0
    for i, row in enumerate(_rows(options.data)):
        if i >= rows:
            break
        times.add(row.get(options.time_col, ""))
        numbers += sum(_float(row.get(t)) is not None for t in options.targets)
    return len(times), numbers


def inspect(options: EvaluateOptions) -> FileFacts:
    """Check the columns, count the rows, and take the z-score statistics; EvaluateError
    for a file that cannot be read."""
    if not options.data.is_file():
        raise EvaluateError(f"{options.data}: no such file")
    try:
        return _inspect(options, csv_header(options.data))
    except ReplaySourceError as exc:
        raise EvaluateError(str(exc)) from None
    except (OSError, EOFError) as exc:  # damaged further on (a gzip stream cut short)
        raise EvaluateError(f"{options.data}: cannot be read ({exc})") from None


def _inspect(options: EvaluateOptions, header: list[str]) -> FileFacts:
    missing = [c for c in (options.time_col, *options.targets) if c not in header]
    if missing:
        raise EvaluateError(
            f"{options.data}: no column {', '.join(map(repr, missing))}; "
            f"the columns are {', '.join(map(repr, header))}"
        )
    times = [row.get(options.time_col, "") for row in _rows(options.data)]
    if options.rows is not None:
        times = times[: options.rows]
    if len(times) < 4:
        raise EvaluateError(f"{options.data}: {len(times)} data rows; at least 4 are needed")
    warm = max(1, min(len(times) - 1, int(len(times) * options.warmup_fraction)))
    stats_rows = warm if options.zscore_rows is None else min(options.zscore_rows, len(times))
    sums = {t: [0.0, 0.0, 0] for t in options.targets}
    for i, row in enumerate(_rows(options.data)):
        if i >= stats_rows:
            break
        for target in options.targets:
            value = _float(row.get(target))
            if value is not None:
                s = sums[target]
                s[0], s[1], s[2] = s[0] + value, s[1] + value * value, int(s[2]) + 1
    mean = {t: s[0] / s[2] if s[2] else 0.0 for t, s in sums.items()}
    std = {
        t: math.sqrt(max(s[1] / s[2] - mean[t] ** 2, 0.0)) if s[2] else 1.0 for t, s in sums.items()
    }
    return FileFacts(
        rows=len(times),
        warmup_time=times[warm],
        mean=mean,
        std={t: v if v > 0 else 1.0 for t, v in std.items()},
        numeric_time=_float(times[0]) is not None,
    )


def _float(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


class WideReplay(StreamSource):
    """A replay of a wide file's first `facts.rows` rows: each row becomes one event per
    target column, named by the column, with the value standardised if asked.

    A poll returns as many rows as the pipeline asks for, but stops after the first row
    of a step later than `cut()` (when that is not None): the step at which the model
    is due to retrain, so that the retrain comes at the same row as it would with one
    row a poll, and every forecast is the same."""

    def __init__(
        self,
        replay: ReplaySource,
        options: EvaluateOptions,
        facts: FileFacts,
        on_row: Callable[[int], None],
        step_of: Callable[[Any], int | None] = lambda time: None,
        cut: Callable[[], int | None] = lambda: None,
    ) -> None:
        self.name = replay.name
        self.replay = replay
        self.options = options
        self.facts = facts
        self.on_row = on_row
        self.step_of = step_of  # a row's time column -> its step (None: not a time)
        self.cut = cut
        self.done = 0

    def poll(self, max_records: int, timeout: float) -> list[RawRecord]:
        out = []
        targets = self.options.targets
        standard = self.options.normalize == "standard"
        wanted = min(max(1, max_records // len(targets)), self.facts.rows - self.done)
        cut = self.cut()
        for _ in range(wanted):
            polled = self.replay.poll(1, timeout)
            if not polled:
                break
            record = polled[0]
            fields = record.fields or {}
            for target in targets:
                value: Any = fields.get(target)
                number = _float(value)
                if standard and number is not None:
                    value = (number - self.facts.mean[target]) / self.facts.std[target]
                event = {
                    "series": target,
                    "value": value,
                    "time": fields.get(self.options.time_col),
                }
                out.append(RawRecord(record.payload, record.position, fields=event))
            self.done += 1
            self.on_row(self.done)
            if cut is not None:
                step = self.step_of(fields.get(self.options.time_col))
                if step is None or step > cut:
                    break
        return out

    def commit(self, positions: Mapping[str, int]) -> None:
        pass

    def seek(self, positions: Mapping[str, int]) -> None:
        pass

    @property
    def exhausted(self) -> bool:
        return self.done >= self.facts.rows or self.replay.exhausted

    def close(self) -> None:
        self.replay.close()


def make_decoder(time_unit: TimeUnit, kind: SeriesKind = "sensor") -> Decoder:
    """The fields of `WideReplay`'s events, as series of `kind`; any time is accepted,
    however far ahead."""
    return Decoder(
        kind=kind,
        series_field="series",
        value_field="value",
        time_field="time",
        time_unit=time_unit,
        max_future_ns=2**62,
    )
