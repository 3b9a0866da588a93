#!/usr/bin/env bash
# `docker compose`, for machines without it: our machines have the docker client but no
# compose plugin and no engine. The first call builds Docker Compose (pinned below) from
# its Go module into the cache; later calls run it at once. Used by the tests to parse and
# resolve docker-compose.yml exactly as `docker compose` does (`config` needs no engine).
#
#   scripts/compose.sh config --format json     # any docker compose arguments
#
# Cache: $STREAMER_TOOLS_CACHE (default ~/.cache/streamer-tools). Needs Go (>= 1.21).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VERSION=v2.29.7
cache=${STREAMER_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/streamer-tools}
bin=$cache/docker-compose-$VERSION/docker-compose

if docker compose version >/dev/null 2>&1; then
  exec docker compose "$@"
fi
if [ ! -x "$bin" ]; then
  command -v go >/dev/null ||
    { echo "compose: neither 'docker compose' nor Go (to build it) is installed" >&2; exit 1; }
  echo "compose: building Docker Compose $VERSION into $bin (a few minutes, once)" >&2
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/build.XXXXXX")
  GOBIN=$tmp GOFLAGS=-mod=mod go install \
    -ldflags "-X github.com/docker/compose/v2/internal.Version=$VERSION" \
    "github.com/docker/compose/v2/cmd@$VERSION"
  mkdir -p "$(dirname "$bin")"
  mv "$tmp/cmd" "$bin"
  rmdir "$tmp"
fi
exec "$bin" "$@"
