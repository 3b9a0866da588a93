#!/usr/bin/env bash
# The test command (the README names it; .ci/run runs exactly this): make .venv if
# needed, start the real Kafka, InfluxDB and Mosquitto, make sure Docker Compose is at
# hand (the container tests resolve docker-compose.yml with it), then ruff, mypy and pytest.
# Arguments go to pytest (e.g. scripts/test.sh tests/unit -x).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
if [ "${CI:-}" = true ]; then
  # Leave the CI machine as it was found; locally the services stay up for the next run.
  trap 'scripts/services.sh down' EXIT
fi
if ! scripts/services.sh up; then
  echo "test: the test services did not come up (see above)" >&2
  exit 1
fi
scripts/compose.sh version

echo "== ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy" >&2
.venv/bin/mypy
echo "== pytest" >&2
status=0
.venv/bin/pytest "$@" || status=$?
if [ "$status" -ne 0 ]; then
  echo "test: pytest failed; the services' logs follow" >&2
  scripts/services.sh logs >&2
fi
exit "$status"
