"""The image's build stage, run without an engine: the files the Dockerfile copies are
put where it puts them, and its RUN line runs there with its ENV.

Two things differ from a real build, because our machines cannot do them: BuildKit's
cache mount is left out, and torch comes from PyPI (the CUDA build) since PyTorch's CPU
index is not reachable from here, so the check that torch is the CPU build is skipped.
What this shows: scripts/setup.sh installs a working daemon, without the dev tools, from
exactly the files the image has.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests import dockerfile
from tests.integration.daemon import REPO


def build_stage() -> tuple[dict[str, str], list[tuple[str, str]], str]:
    """ENV, COPY (source, destination) and RUN of the Dockerfile's first stage."""
    copies = []
    for args in dockerfile.instructions("COPY", stage=1):
        *sources, dest = args.split()
        copies += [(source, dest) for source in sources]
    (run,) = dockerfile.instructions("RUN", stage=1)
    run = " ".join(a for a in run.split() if not a.startswith("--mount="))
    return dockerfile.env(stage=1), copies, run


def copy(source: Path, dest: Path, into: bool) -> None:
    """COPY's rules: a directory's contents go to dest; a file goes into dest/ or to dest."""
    if source.is_dir():
        shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__"))
    elif into:
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, dest / source.name)
    else:
        shutil.copy(source, dest)


def test_the_build_stage_installs_a_working_daemon_without_dev_tools(tmp_path: Path) -> None:
    env, copies, run = build_stage()
    assert env["STREAMER_EXTRAS"] == ""
    workdir = tmp_path / "opt-streamer"
    workdir.mkdir()
    for source, dest in copies:
        copy(REPO / source, workdir / dest, into=dest.endswith("/"))
    steps = [s.strip() for s in run.split("&&")]
    steps = [s for s in steps if "torch.version.cuda" not in s]
    assert steps[0] == "scripts/setup.sh"
    build_env = {
        **os.environ,  # this machine's package index settings
        **{k: v for k, v in env.items() if k != "UV_TORCH_BACKEND"},
        "UV_LINK_MODE": "hardlink",  # the build's "copy" would copy torch: minutes here
    }
    done = subprocess.run(
        " && ".join(steps),
        shell=True,
        cwd=workdir,
        env=build_env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "streamer 0.1.0" in done.stdout
    bin_dir = workdir / ".venv/bin"
    for tool in ("pytest", "ruff", "mypy", "uv"):
        assert not (bin_dir / tool).exists(), f"{tool} is in the image"
    validate = subprocess.run(
        [str(bin_dir / "streamer"), "config", "validate", str(REPO / "config/container.yaml")],
        # Docker sets HOSTNAME (the container's id) in every container.
        env={**build_env, "INFLUX_TOKEN": "a-token", "HOSTNAME": "3f2a9c1d7e5b"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert validate.returncode == 0, validate.stderr
