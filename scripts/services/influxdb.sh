# InfluxDB 2.x for the integration tests: built from its Go module with libflux (Rust)
# through influxdata's pkg-config wrapper, cached, started on 127.0.0.1 and set up
# non-interactively. Sourced by scripts/services.sh after common.sh.
#
# Pin: v2.9.1. v2.10.0 is newer but its flux v0.201.0 and pkg-config v0.3.1 module zips
# are not served by the module proxy here, so it cannot be built.

INFLUX_VER=${STREAMER_INFLUXDB_VERSION:-v2.9.1}
INFLUX_PKGCFG_VER=v0.3.0 # must match influxdb's go.mod (v0.3.0 for 2.9.x)
INFLUX_ROOT=$CACHE/influxdb-$INFLUX_VER
INFLUXD=$INFLUX_ROOT/bin/influxd
INFLUX_ORG=streamer
INFLUX_BUCKET=streamer
INFLUX_TOKEN=streamer-test-operator-token

influxdb_installed() {
  [ -x "$INFLUXD" ] && "$INFLUXD" version 2>/dev/null | grep -q "${INFLUX_VER#v}"
}

influxdb_install() {
  influxdb_installed && return 0
  command -v pkg-config >/dev/null || apt_install pkg-config
  command -v go >/dev/null || fail "build influxdb" "Go >= 1.25.10 is needed on PATH"
  command -v cargo >/dev/null || fail "build influxdb" "Rust (rustup, stable) is needed on PATH"
  local log=$INFLUX_ROOT/build.log
  mkdir -p "$INFLUX_ROOT"
  : >"$log"
  say "building influxd $INFLUX_VER from source: about 7 minutes on 2 cores, the first time only (log: $log)"
  bash "$(dirname "${BASH_SOURCE[0]}")/build-influxd.sh" "$INFLUX_VER" "$INFLUX_PKGCFG_VER" "$INFLUX_ROOT" >>"$log" 2>&1 ||
    fail "build influxdb $INFLUX_VER: $(sed -n 's/^== step: //p' "$log" | tail -n 1)" "the step failed" "$log"
  influxdb_installed || fail "build influxdb" "built binary does not report version $INFLUX_VER" "$log"
  say "influxd $INFLUX_VER built: $INFLUXD"
}

influxdb_url() { echo "http://127.0.0.1:$(env_get INFLUXDB_PORT)"; }

influxdb_healthy() {
  curl -sf "$(influxdb_url)/health" | grep -q '"pass"'
}

influxdb_up() {
  command -v curl >/dev/null || apt_install curl
  if pid_alive "$RUN_DIR/influxdb.pid" && influxdb_healthy; then
    return 0
  fi
  stop_pid influxdb
  local port data=$RUN_DIR/influxdb log=$RUN_DIR/influxdb.log fresh=1
  port=$(keep_port INFLUXDB_PORT 8086)
  # Data (buckets, points, the token) is kept from the last run; only a first start, or
  # a reset, sets the server up afresh.
  [ -f "$data/setup.json" ] && [ -f "$data/influxd.bolt" ] && fresh=0
  [ "$fresh" = 1 ] && rm -rf "$data"
  mkdir -p "$data"
  env_unset_prefix INFLUXDB_
  env_set INFLUXDB_PORT "$port"
  # influxd reads ./config.* from its working directory and INFLUXD_* variables; give it
  # an empty directory and a clean environment so only these flags count.
  (
    cd "$data" || exit 1
    for v in $(env | sed -n 's/^\(INFLUXD_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
    start_bg influxdb "$log" "$INFLUXD" \
      --bolt-path "$data/influxd.bolt" --engine-path "$data/engine" \
      --sqlite-path "$data/influxd.sqlite" --http-bind-address "127.0.0.1:$port" \
      --reporting-disabled --ui-disabled --log-level warn
  )
  wait_for influxdb 60 "$log" influxdb_healthy
  if [ "$fresh" = 1 ]; then
    curl -sf -X POST "$(influxdb_url)/api/v2/setup" -H 'Content-Type: application/json' \
      -d "{\"username\":\"streamer\",\"password\":\"streamer-test-password\",\"org\":\"$INFLUX_ORG\",\"bucket\":\"$INFLUX_BUCKET\",\"retentionPeriodSeconds\":0,\"token\":\"$INFLUX_TOKEN\"}" \
      >"$data/setup.json.part" 2>>"$log" || fail "set up influxdb" "POST /api/v2/setup failed" "$log"
    mv "$data/setup.json.part" "$data/setup.json"
  fi
  env_set INFLUXDB_URL "$(influxdb_url)"
  env_set INFLUXDB_ORG "$INFLUX_ORG"
  env_set INFLUXDB_BUCKET "$INFLUX_BUCKET"
  env_set INFLUXDB_TOKEN "$INFLUX_TOKEN"
  env_set INFLUXDB_VERSION "$INFLUX_VER"
}

influxdb_down() { stop_pid influxdb; }

influxdb_kill() { kill_pid influxdb; }

influxdb_wipe() { rm -rf "$RUN_DIR/influxdb"; }

influxdb_status() {
  if pid_alive "$RUN_DIR/influxdb.pid" && influxdb_healthy; then
    echo "influxdb  up    $(influxdb_url)  org=$INFLUX_ORG bucket=$INFLUX_BUCKET ($INFLUX_VER)"
  else
    echo "influxdb  down"
    return 1
  fi
}
