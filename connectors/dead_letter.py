"""Dead-letter outputs: every rejected input with its original bytes and the reason."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from streamer.core.records import Rejection


def rejection_json(rejection: Rejection) -> dict[str, object]:
    """A rejection as a JSON object; the payload as text when it is UTF-8, else base64."""
    position = rejection.position
    record: dict[str, object] = {
        "reason": rejection.reason,
        "detail": rejection.detail,
        "source": position.source if position else None,
        "partition": position.partition if position else None,
        "offset": position.offset if position else None,
    }
    try:
        record["payload"] = rejection.raw.decode("utf-8")
    except UnicodeDecodeError:
        record["payload_base64"] = base64.b64encode(rejection.raw).decode()
    return record


class FileDeadLetter:
    """Append rejections to a file, one JSON object per line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - held open

    def check(self) -> None:
        """Nothing to check: it is written on this machine."""

    def write(self, rejections: list[Rejection]) -> None:
        for rejection in rejections:
            self._file.write(json.dumps(rejection_json(rejection)) + "\n")

    def flush(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            self.flush()
            self._file.close()
