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
influxdb_tls_url() { echo "https://127.0.0.1:$(env_get INFLUXDB_TLS_PORT)"; }

influxdb_healthy() {
  curl -sf "$(influxdb_url)/health" | grep -q '"pass"'
}

influxdb_tls_healthy() {
  curl -sf --cacert "$RUN_DIR/influxdb-tls/tls/ca.crt" "$(influxdb_tls_url)/health" | grep -q '"pass"'
}

# Two servers: the one most tests use (INFLUXDB_URL, plain HTTP) and one that speaks
# only HTTPS (INFLUXDB_TLS_URL), its certificate signed by the test CA in
# INFLUXDB_TLS_CA_FILE; both set up with the same org, bucket and token.
influxdb_up() {
  command -v curl >/dev/null || apt_install curl
  if pid_alive "$RUN_DIR/influxdb.pid" && influxdb_healthy &&
    pid_alive "$RUN_DIR/influxdb-tls.pid" && influxdb_tls_healthy; then
    return 0
  fi
  stop_pid influxdb
  stop_pid influxdb-tls
  local port tls_port
  port=$(keep_port INFLUXDB_PORT 8086)
  tls_port=$(keep_port INFLUXDB_TLS_PORT 8087)
  env_unset_prefix INFLUXDB_
  env_set INFLUXDB_PORT "$port"
  env_set INFLUXDB_TLS_PORT "$tls_port"
  influxdb_start influxdb "$port" influxdb_healthy "$(influxdb_url)"
  test_tls "$RUN_DIR/influxdb-tls/tls"
  influxdb_start influxdb-tls "$tls_port" influxdb_tls_healthy "$(influxdb_tls_url)" \
    --cacert "$RUN_DIR/influxdb-tls/tls/ca.crt" -- \
    --tls-cert "$RUN_DIR/influxdb-tls/tls/server.crt" --tls-key "$RUN_DIR/influxdb-tls/tls/server.key"
  env_set INFLUXDB_URL "$(influxdb_url)"
  env_set INFLUXDB_TLS_URL "$(influxdb_tls_url)"
  env_set INFLUXDB_TLS_CA_FILE "$RUN_DIR/influxdb-tls/tls/ca.crt"
  env_set INFLUXDB_ORG "$INFLUX_ORG"
  env_set INFLUXDB_BUCKET "$INFLUX_BUCKET"
  env_set INFLUXDB_TOKEN "$INFLUX_TOKEN"
  env_set INFLUXDB_VERSION "$INFLUX_VER"
}

# influxdb_start NAME PORT HEALTHY URL [CURL_OPTION... --] [INFLUXD_FLAG...]: start one
# server with its data in RUN_DIR/NAME, kept from the last run (only a first start, or
# a reset, sets it up afresh).
influxdb_start() {
  local name=$1 port=$2 healthy=$3 url=$4 data=$RUN_DIR/$1 log=$RUN_DIR/$1.log fresh=1
  shift 4
  local curl_opts=()
  if [ "${1:-}" = "--cacert" ]; then
    curl_opts=("$1" "$2")
    shift 3
  fi
  [ -f "$data/setup.json" ] && [ -f "$data/influxd.bolt" ] && fresh=0
  [ "$fresh" = 1 ] && rm -rf "$data/engine" "$data/influxd.bolt" "$data/influxd.sqlite"
  mkdir -p "$data"
  # influxd reads ./config.* from its working directory and INFLUXD_* variables; give it
  # its own directory and a clean environment so only these flags count.
  (
    cd "$data" || exit 1
    for v in $(env | sed -n 's/^\(INFLUXD_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
    start_bg "$name" "$log" "$INFLUXD" \
      --bolt-path "$data/influxd.bolt" --engine-path "$data/engine" \
      --sqlite-path "$data/influxd.sqlite" --http-bind-address "127.0.0.1:$port" \
      --reporting-disabled --ui-disabled --log-level warn "$@"
  )
  wait_for "$name" 60 "$log" "$healthy"
  if [ "$fresh" = 1 ]; then
    curl -sf "${curl_opts[@]}" -X POST "$url/api/v2/setup" -H 'Content-Type: application/json' \
      -d "{\"username\":\"streamer\",\"password\":\"streamer-test-password\",\"org\":\"$INFLUX_ORG\",\"bucket\":\"$INFLUX_BUCKET\",\"retentionPeriodSeconds\":0,\"token\":\"$INFLUX_TOKEN\"}" \
      >"$data/setup.json.part" 2>>"$log" || fail "set up $name" "POST /api/v2/setup failed" "$log"
    mv "$data/setup.json.part" "$data/setup.json"
  fi
}

influxdb_down() {
  stop_pid influxdb
  stop_pid influxdb-tls
}

influxdb_kill() {
  kill_pid influxdb
  kill_pid influxdb-tls
}

influxdb_wipe() { rm -rf "$RUN_DIR/influxdb" "$RUN_DIR/influxdb-tls"; }

influxdb_status() {
  if pid_alive "$RUN_DIR/influxdb.pid" && influxdb_healthy &&
    pid_alive "$RUN_DIR/influxdb-tls.pid" && influxdb_tls_healthy; then
    echo "influxdb  up    $(influxdb_url) and $(influxdb_tls_url)  org=$INFLUX_ORG bucket=$INFLUX_BUCKET ($INFLUX_VER)"
  else
    echo "influxdb  down"
    return 1
  fi
}
