"""The model file keeps a trained state exactly, carries only plain data, and says what
it left out and why."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from streamer.engine import model_file
from streamer.engine.model_file import ModelFileError


def state() -> dict[str, object]:
    return {
        "forecaster": {
            "net": {"weight": torch.arange(6, dtype=torch.float32).reshape(2, 3)},
            "names": np.array(["a", "b"], dtype=object),
            "version": 3,
        },
        "window": {"last": np.array([5, 7])},
        "outcomes": None,
        "drift": {"feeds": pickle.dumps({"a": 1})},  # as river's detectors are kept
        "on_drift": {"last_retrain_ns": None},
        "positions": {"ticks": {"0": 10}},  # never carried
        "sinks": [{"offset": 3}],
    }


def test_the_state_comes_back_exactly_and_pickled_objects_are_left_out_saying_so(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.model"
    header = model_file.write(path, state(), {"layout": {"model.horizon": 3}})
    assert "drift.feeds holds pickled objects" in header["dropped"]["drift"]
    found = model_file.read(path)
    net = found.state["forecaster"]["net"]["weight"]
    assert torch.equal(net, torch.arange(6, dtype=torch.float32).reshape(2, 3))
    assert found.state["forecaster"]["names"].tolist() == ["a", "b"]
    assert found.state["drift"] is None
    assert set(found.state) == {"window", "forecaster", "outcomes", "drift", "on_drift"}
    assert found.header["layout"] == {"model.horizon": 3}


def test_a_forecaster_that_is_not_plain_data_cannot_be_exported(tmp_path: Path) -> None:
    bad = {**state(), "forecaster": {"models": pickle.dumps([1])}}
    with pytest.raises(ModelFileError, match=r"forecaster\.models holds pickled objects"):
        model_file.write(tmp_path / "m.model", bad, {})


def test_a_damaged_or_foreign_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.model"
    model_file.write(path, state(), {})
    truncated = tmp_path / "cut.model"
    truncated.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ModelFileError, match="checksum does not match"):
        model_file.read(truncated)
    other = tmp_path / "notes.txt"
    other.write_text("hello\n")
    with pytest.raises(ModelFileError, match="not a model file"):
        model_file.read(other)
