#!/usr/bin/env bash
# Make .venv and install Streamer with its dev tools, from the project's own files only.
# Idempotent: does nothing when .venv already matches pyproject.toml. Packages are cached
# under the user's cache directory (uv's cache, or pip's), so a fresh clone installs fast.
#
# The container image (Dockerfile) runs this same script, with two settings:
#   STREAMER_EXTRAS   extras to install (default "dev"; empty: the daemon alone)
#   UV_TORCH_BACKEND  read by uv: "cpu" installs the CPU-only build of torch
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY=${PYTHON:-python3}
extras=${STREAMER_EXTRAS-dev}
spec=.${extras:+[$extras]}
stamp=.venv/.installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1) $spec ${UV_TORCH_BACKEND:-}"
if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi

"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  { echo "setup: Python >= 3.11 is needed (found $("$PY" --version 2>&1))" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
echo "setup: installing Streamer ($spec) into .venv (torch is large: minutes the first time)" >&2
# uv installs from a hard-linked cache: seconds instead of minutes on a repeated fresh clone.
if .venv/bin/python -m pip install -q --disable-pip-version-check 'uv>=0.7.14,<1' 2>/dev/null; then
  VIRTUAL_ENV=$PWD/.venv .venv/bin/python -m uv pip install --python .venv/bin/python -e "$spec"
else
  .venv/bin/python -m pip install --disable-pip-version-check -e "$spec"
fi
echo "$want" >"$stamp"
echo "setup: done (.venv/bin/streamer)" >&2
