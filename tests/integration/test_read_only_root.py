"""The daemon as the container runs it (`read_only: true` in docker-compose.yml): the
root filesystem read-only, one writable volume for its state. In a mount namespace of
its own the whole filesystem is remounted read-only but for that volume, and the demo
(a replay with the LSTM retraining on its schedule) runs to its end."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from tests.integration.daemon import REPO, free_port

COMPOSE = REPO / "docker-compose.yml"


def test_the_compose_stack_runs_the_daemon_on_a_read_only_root() -> None:
    service = yaml.safe_load(COMPOSE.read_text())["services"]["streamer"]
    assert service["read_only"] is True
    writable = [v for v in service["volumes"] if not v.endswith(":ro")]
    assert writable == ["streamer-state:/var/lib/streamer"]


def test_the_demo_runs_to_its_end_with_only_its_state_volume_writable(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    config = yaml.safe_load((REPO / "config/demo.yaml").read_text())
    config["sources"][0]["path"] = str(REPO / config["sources"][0]["path"])
    config["pipeline"]["dead_letter"]["path"] = str(state / "dead-letter.jsonl")
    config["sinks"][0]["path"] = str(state / "forecasts.lp")
    config["checkpoint"] = {"enabled": True, "path": str(state / "checkpoint.db"), "every": "2s"}
    config["http"] = {"enabled": True, "bind": f"127.0.0.1:{free_port()}"}
    (state / "streamer.yaml").write_text(yaml.safe_dump(config))
    probe = REPO / ".read-only-probe"
    script = " && ".join(
        [
            "mount --make-rprivate /",
            f"mount --bind {shlex.quote(str(state))} {shlex.quote(str(state))}",
            "mount -o remount,bind,ro /",
            f"! touch {shlex.quote(str(probe))} 2>/dev/null",  # the root is read-only now
            f"exec {shlex.quote(sys.executable)} -m streamer run -c {state / 'streamer.yaml'}",
        ]
    )
    run = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert not probe.exists()
    assert "retrain" in run.stderr
    assert (state / "forecasts.lp").stat().st_size > 100_000
    assert (state / "checkpoint.db").stat().st_size > 0
