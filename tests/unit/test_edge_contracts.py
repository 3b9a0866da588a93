"""The edge contracts (tests/contracts) over the sources and sinks that need no service:
memory and replay sources, memory and file sinks. And the contracts catch broken edges."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from connectors.base import Output, Sink, Source
from connectors.file_sink import CSV_HEADER, FileSink, csv_rows
from connectors.memory import MemorySink, MemorySource
from connectors.points import lines
from connectors.replay import ReplaySource
from tests.contracts import sink_contract, source_contract
from tests.contracts.sink_contract import SinkHarness
from tests.contracts.source_contract import SourceHarness


class MemorySourceHarness:
    """A list of payloads; a MemorySource keeps its position in the checkpoint."""

    replays_uncommitted = True
    keeps_commits = False
    has_offsets = False
    finite = True

    def __init__(self, source: Callable[[list[bytes]], Source] | None = None) -> None:
        self.stream: list[bytes] = []
        self.make = source or (lambda stream: MemorySource("memory", stream))

    def produce(self, payloads: Sequence[bytes]) -> None:
        self.stream.extend(payloads)

    def open(self) -> Source:
        return self.make(self.stream)


class ReplaySourceHarness:
    """A CSV file, one payload a row; the position (a row number) lives in the checkpoint."""

    replays_uncommitted = True
    keeps_commits = False
    has_offsets = False
    finite = True

    def __init__(self, path: Path) -> None:
        self.path = path
        path.write_bytes(b"value\n")

    def produce(self, payloads: Sequence[bytes]) -> None:
        with self.path.open("ab") as stream:
            stream.write(b"".join(p + b"\n" for p in payloads))

    def open(self) -> Source:
        return ReplaySource("replay", self.path)


class MemorySinkHarness:
    exact = True

    def __init__(self, sink: Callable[[], MemorySink] = MemorySink) -> None:
        self.make = sink
        self.sinks: list[MemorySink] = []

    def open(self) -> Sink:
        sink = self.make()
        self.sinks.append(sink)
        return sink

    def read(self) -> Counter[str]:
        return Counter(line for s in self.sinks for o in s.outputs for line in lines(o))

    def render(self, output: Output) -> list[str]:
        return lines(output)


class FileSinkHarness:
    exact = True

    def __init__(self, path: Path, format: str) -> None:
        self.path = path
        self.format = format

    def open(self) -> Sink:
        return FileSink(self.path, "csv" if self.format == "csv" else "line_protocol")

    def read(self) -> Counter[str]:
        text = self.path.read_text() if self.path.exists() else ""
        if self.format == "csv" and text:
            assert text.startswith(CSV_HEADER)
            text = text[len(CSV_HEADER) :]
        return Counter(text.splitlines())

    def render(self, output: Output) -> list[str]:
        return csv_rows(output) if self.format == "csv" else lines(output)


SOURCES: dict[str, Callable[[Path], SourceHarness]] = {
    "memory": lambda _: MemorySourceHarness(),
    "replay": lambda tmp: ReplaySourceHarness(tmp / "events.csv"),
}
SINKS: dict[str, Callable[[Path], SinkHarness]] = {
    "memory": lambda _: MemorySinkHarness(),
    "file_line_protocol": lambda tmp: FileSinkHarness(tmp / "out" / "points.lp", "lp"),
    "file_csv": lambda tmp: FileSinkHarness(tmp / "out" / "points.csv", "csv"),
}


def name(contract: Callable[..., None]) -> str:
    return contract.__name__


@pytest.mark.parametrize("contract", source_contract.CONTRACT, ids=name)
@pytest.mark.parametrize("kind", SOURCES)
def test_source_keeps_the_contract(
    kind: str, contract: Callable[[SourceHarness], None], tmp_path: Path
) -> None:
    contract(SOURCES[kind](tmp_path))


@pytest.mark.parametrize("contract", sink_contract.CONTRACT, ids=name)
@pytest.mark.parametrize("kind", SINKS)
def test_sink_keeps_the_contract(
    kind: str, contract: Callable[[SinkHarness], None], tmp_path: Path
) -> None:
    contract(SINKS[kind](tmp_path))


class ForgetfulSource(MemorySource):
    """Broken: a restore starts again from the beginning."""

    def seek(self, positions: Mapping[str, int]) -> None:
        self.next = 0


class GreedySource(MemorySource):
    """Broken: returns everything it has, whatever max_records says."""

    def poll(self, max_records: int, timeout: float) -> list[Any]:
        return super().poll(len(self.payloads), timeout)


class AppendOnlySink(MemorySink):
    """Broken: a restore does not take back what was written after the checkpoint."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


@pytest.mark.parametrize(
    ("contract", "source", "complaint"),
    [
        (
            source_contract.reopened_source_continues_after_what_was_committed,
            lambda stream: ForgetfulSource("memory", stream),
            r"assert \[b'a-000'",  # a committed record came again
        ),
        (
            source_contract.poll_delivers_everything_in_bounded_batches_in_order,
            lambda stream: GreedySource("memory", stream),
            r"poll\(3\) returned 10 records",
        ),
    ],
    ids=["forgetful", "greedy"],
)
def test_the_source_contract_fails_a_broken_source(
    contract: Callable[[SourceHarness], None],
    source: Callable[[list[bytes]], Source],
    complaint: str,
) -> None:
    with pytest.raises(AssertionError, match=complaint):
        contract(MemorySourceHarness(source))


def test_the_sink_contract_fails_a_sink_whose_restore_keeps_a_replayed_write() -> None:
    with pytest.raises(AssertionError):
        sink_contract.rewrite_after_restore_leaves_one_copy(MemorySinkHarness(AppendOnlySink))
