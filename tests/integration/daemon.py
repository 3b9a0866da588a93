"""Run the real `streamer run` as a child process, and read what it wrote to InfluxDB."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import yaml
from influxdb_client import InfluxDBClient

REPO = Path(__file__).parents[2]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Daemon:
    """`streamer run -c <config>` in its own process, its log in a file."""

    started: ClassVar[list[Daemon]] = []

    def __init__(
        self,
        config: dict[str, Any],
        workdir: Path,
        name: str = "daemon",
        env: dict[str, str] | None = None,
    ) -> None:
        self.env = env or {}
        self.config_path = workdir / f"{name}.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Daemon:
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streamer", "run", "-c", str(self.config_path)],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
            )
        Daemon.started.append(self)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        wait_until(lambda: text in self.log(), timeout, f"{text!r} in the daemon's log", self)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def free_port() -> int:
    """A TCP port nothing listens on now, on 127.0.0.1, below the kernel's ephemeral
    range: a port the kernel hands out (bind to 0) can be taken as the local end of
    some process's outgoing connection before the daemon binds it."""
    low, _ = (int(n) for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    while True:
        port = random.randrange(10_000, min(low, 32_768))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, daemon: Daemon | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if daemon is not None and not daemon.running():
            raise AssertionError(
                f"the daemon exited while waiting for {what}:\n{daemon.log()[-3000:]}"
            )
        time.sleep(0.5)
    log = f"\n{daemon.log()[-3000:]}" if daemon else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{log}")


ForecastKey = tuple[str, int, int]  # series, horizon, target time (ns)


def forecast_points(client: InfluxDBClient, bucket: str) -> list[tuple[ForecastKey, float, str]]:
    """Every forecast point in the bucket: (key, yhat, model), one entry per stored point."""
    tables = client.query_api().query(
        f'from(bucket: "{bucket}") |> range(start: 0) '
        '|> filter(fn: (r) => r._measurement == "forecast" and r._field == "yhat") '
        "|> group()"
    )
    out = []
    for table in tables:
        for r in table.records:
            key = (str(r.values["series"]), int(r.values["horizon"]), epoch_ns(r.get_time()))
            out.append((key, float(r.get_value()), str(r.values["model"])))
    return out


def count_points(client: InfluxDBClient, bucket: str, measurement: str) -> int:
    tables = client.query_api().query(
        f'from(bucket: "{bucket}") |> range(start: 0) '
        f'|> filter(fn: (r) => r._measurement == "{measurement}") '
        '|> filter(fn: (r) => r._field == "yhat" or r._field == "value") '
        "|> group() |> count()"
    )
    return sum(int(r.get_value()) for t in tables for r in t.records)


def epoch_ns(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1) * 1_000
