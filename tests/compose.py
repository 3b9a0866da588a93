"""docker-compose.yml as Docker Compose resolves it (scripts/compose.sh `config`, which
needs no engine), with the committed .env.example as its .env."""

from __future__ import annotations

import json
import os
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).parents[1]
ENV_EXAMPLE = REPO / ".env.example"


def compose(*args: str, env_file: Path = ENV_EXAMPLE) -> subprocess.CompletedProcess[str]:
    """scripts/compose.sh with only PATH and the cache locations from our environment, so
    no stray INFLUX_TOKEN of the caller's can stand in for the env file."""
    keep = ("PATH", "HOME", "XDG_CACHE_HOME", "GOPATH", "STREAMER_TOOLS_CACHE")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    return subprocess.run(
        [str(REPO / "scripts/compose.sh"), "--env-file", str(env_file), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@cache
def stack() -> dict[str, Any]:
    """The resolved compose model (services, volumes, ...)."""
    done = compose("config", "--format", "json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def service(name: str) -> dict[str, Any]:
    return dict(stack()["services"][name])


def mounts(name: str) -> dict[str, str]:
    """target -> source (a repo path for bind mounts, the volume name otherwise)."""
    return {m["target"]: m["source"] for m in service(name).get("volumes", [])}


def env_example() -> dict[str, str]:
    lines = ENV_EXAMPLE.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def flags(name: str) -> dict[str, str]:
    """A service's `--name=value` command arguments."""
    return dict(arg.removeprefix("--").split("=", 1) for arg in service(name)["command"])
