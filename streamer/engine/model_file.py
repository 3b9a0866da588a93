"""The model file (`streamer model export` / `import`): a trained state moved between
deployments. Its format is in docs/model-file.md.

A model file is one header line of JSON (the format version, what the model was trained
as, when, from how many series) and then the state: the parts of a checkpoint that
belong to the model and its series (forecaster, window, interval errors, drift
references), without source positions or sink state. Tensors are stored as numpy
arrays, and reading accepts nothing but arrays, numbers, strings and containers, so that
opening a model file from elsewhere cannot run code.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAGIC = "streamer-model"
FORMAT = 1
PARTS = ("window", "forecaster", "outcomes", "drift", "on_drift")  # of a checkpoint's state

# The only globals a model file's state may name: numpy's array and dtype rebuilders
# (under numpy 1 and 2 names) and ordered dicts.
_ALLOWED = {
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("collections", "OrderedDict"),
}


class ModelFileError(ValueError):
    """A model file that cannot be written, read or used here; the message says why."""


@dataclass(frozen=True)
class ModelFile:
    header: dict[str, Any]
    state: dict[str, Any]  # a checkpoint's state: PARTS, no positions, no sink state


def write(path: Path, state: dict[str, Any], header: dict[str, Any]) -> dict[str, Any]:
    """Write the model parts of a checkpoint's state with `header` (what it was trained
    as); the header as written. A part other than the forecaster that holds anything but
    arrays, numbers and strings is left out (its reason under `dropped`: it starts afresh
    where the file is imported); such a forecaster raises ModelFileError."""
    parts: dict[str, Any] = {}
    dropped: dict[str, str] = {}
    for part in PARTS:
        try:
            parts[part] = _plain(state.get(part), part)
        except ModelFileError as exc:
            if part == "forecaster":
                raise
            parts[part], dropped[part] = None, str(exc)  # re-learnt where it is imported
    payload = pickle.dumps(parts, protocol=5)
    _unpickle(payload)  # what cannot be read back is refused now, not at import
    header = {
        "format": FORMAT,
        **header,
        "dropped": dropped,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "bytes": len(payload),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(f"{MAGIC} {json.dumps(header, sort_keys=True)}\n".encode())
        f.write(payload)
    tmp.replace(path)
    return header


def read(path: Path) -> ModelFile:
    """A model file's header and state; ModelFileError when it is not one, is of a
    newer format, is damaged, or names anything but plain data."""
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read it ({exc.strerror})") from None
    first, _, payload = blob.partition(b"\n")
    magic, _, text = first.decode(errors="replace").partition(" ")
    if magic != MAGIC:
        raise ModelFileError(f"{path}: not a model file (`streamer model export` writes one)")
    try:
        header = json.loads(text)
    except ValueError:
        raise ModelFileError(f"{path}: its header is not JSON; the file is damaged") from None
    if header.get("format") != FORMAT:
        raise ModelFileError(
            f"{path}: model file format {header.get('format')!r}; this streamer reads format "
            f"{FORMAT} (export it again with this version)"
        )
    if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
        raise ModelFileError(f"{path}: its checksum does not match; the file is damaged")
    parts = _unpickle(payload, path)
    return ModelFile(header, {part: _tensors(parts.get(part)) for part in PARTS})


def mismatches(trained: dict[str, Any], here: dict[str, Any]) -> list[str]:
    """Each setting the file was trained with that differs here, as `key: file X, here Y`."""
    keys = sorted(set(trained) | set(here))
    return [
        f"{key}: the file's model has {trained.get(key)!r}, this config {here.get(key)!r}"
        for key in keys
        if trained.get(key) != here.get(key)
    ]


# --- encoding --------------------------------------------------------------------------


def _plain(value: Any, where: str) -> Any:
    """`value` with every tensor as {"__tensor__": array, "dtype": name}; ModelFileError
    for an object that is neither plain data nor an array."""
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        return {"__tensor__": value.detach().cpu().numpy(), "dtype": str(value.dtype)}
    if isinstance(value, dict):
        return {k: _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, bytes):
        raise ModelFileError(
            f"{where} holds pickled objects (river's own models or detectors), which a "
            "model file cannot carry: reading them back could run code"
        )
    if isinstance(value, np.ndarray) and value.dtype.hasobject:
        return np.array([_plain(v, where) for v in value.ravel()], dtype=object).reshape(
            value.shape
        )
    if value is None or isinstance(value, str | bool | int | float | np.ndarray):
        return value
    if isinstance(value, np.generic):
        return value.item()
    raise ModelFileError(
        f"{where} holds a {type(value).__module__}.{type(value).__qualname__}, which a model "
        "file cannot carry (it carries arrays and plain values only)"
    )


def _tensors(value: Any) -> Any:
    """The inverse of `_plain`."""
    import torch

    if isinstance(value, dict):
        if "__tensor__" in value and set(value) == {"__tensor__", "dtype"}:
            return torch.from_numpy(value["__tensor__"].copy())
        return {k: _tensors(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tensors(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_tensors(v) for v in value)
    return value


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise ModelFileError(f"names {module}.{name}, which a model file may not")
        return super().find_class(module, name)


def _unpickle(payload: bytes, path: Path | None = None) -> dict[str, Any]:
    try:
        parts = _PlainUnpickler(io.BytesIO(payload)).load()
    except ModelFileError as exc:
        raise ModelFileError(f"{path or 'the state'}: {exc}") from None
    except Exception as exc:  # a truncated or garbled payload
        raise ModelFileError(f"{path or 'the state'}: cannot be read ({exc})") from None
    if not isinstance(parts, dict):
        raise ModelFileError(f"{path or 'the state'}: not a model's state")
    return parts
