#!/usr/bin/env bash
# Regenerate tests/data/line_protocol_vectors.jsonl: the cases make_cases.py writes, each
# with the verdicts of InfluxDB's own line protocol parser (main.go). Needs Go 1.23 or later
# and the Go module proxy (or a module cache holding influxdb/v2 v2.7.12).
#
#   scripts/line_protocol_reference/regenerate.sh [make_cases.py options, e.g. --seed 7]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
go="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
out="$root/tests/data/line_protocol_vectors.jsonl"
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT

# -checklinkname=0: main.go reaches the parser's unexported scanLine with go:linkname.
(cd "$here" && "$go" build -ldflags=-checklinkname=0 -o "$build/reference" .)
mkdir -p "$(dirname "$out")"
"$python" "$here/make_cases.py" "$@" > "$build/cases.jsonl"
"$build/reference" < "$build/cases.jsonl" > "$build/vectors.jsonl"
mv "$build/vectors.jsonl" "$out"
echo "$(wc -l < "$out") cases, $(wc -c < "$out") bytes: $out"
