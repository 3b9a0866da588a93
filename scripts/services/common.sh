# Shared helpers for scripts/services.sh: cache and run directories, ports, pid files,
# waiting with a deadline, and reporting a failed step with its log.
# Sourced, never run.

CACHE=${STREAMER_SERVICES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/streamer-services}
RUN_DIR=${STREAMER_SERVICES_RUN:-$CACHE/run}
ENV_FILE=$RUN_DIR/services.env
mkdir -p "$CACHE" "$RUN_DIR"

say() { printf '[services] %s\n' "$*" >&2; }

# fail STEP WHY [LOG]: report a failed step, show the tail of its log, exit 1.
fail() {
  say "FAILED: $1: $2"
  if [ -n "${3:-}" ] && [ -f "$3" ]; then
    say "log: $3 (last 40 lines follow)"
    tail -n 40 "$3" | sed 's/^/    | /' >&2
  fi
  exit 1
}

# run_logged STEP LOG CMD...: run CMD with its output in LOG; fail naming STEP if it fails.
run_logged() {
  local step=$1 log=$2
  shift 2
  say "$step (log: $log)"
  if ! "$@" >>"$log" 2>&1; then
    fail "$step" "command failed: $*" "$log"
  fi
}

# test_tls DIR: a test CA (ca.crt, ca.key) and a server certificate for 127.0.0.1 and
# localhost (server.crt, server.key, and both in server.pem), made once: kept across
# restarts, so clients keep trusting the same CA.
test_tls() {
  local dir=$1
  [ -f "$dir/server.pem" ] && return 0
  command -v openssl >/dev/null || apt_install openssl
  mkdir -p "$dir"
  local log=$dir/openssl.log
  run_logged "test CA" "$log" openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
    -subj "/CN=streamer test CA" -keyout "$dir/ca.key" -out "$dir/ca.crt"
  run_logged "test server key" "$log" openssl req -newkey rsa:2048 -nodes \
    -subj "/CN=localhost" -keyout "$dir/server.key" -out "$dir/server.csr"
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$dir/server.ext"
  run_logged "test server certificate" "$log" openssl x509 -req -in "$dir/server.csr" \
    -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days 3650 \
    -extfile "$dir/server.ext" -out "$dir/server.crt"
  cat "$dir/server.key" "$dir/server.crt" >"$dir/server.pem"
}

# random_secret: a fresh password for a test user (hex, 24 characters).
random_secret() {
  python3 -c 'import secrets; print(secrets.token_hex(12))'
}

port_in_use() {
  python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)
PY
}

# free_port: a port the kernel says is free on 127.0.0.1 now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# pick_port PREFERRED: the preferred port if free on 127.0.0.1, else a free one.
pick_port() {
  if port_in_use "$1"; then free_port; else echo "$1"; fi
}

# keep_port KEY PREFERRED: the port recorded under KEY when nothing listens on it (a
# restart keeps its address, so clients can reconnect), else pick_port PREFERRED. A port
# a stopped service just left may still be in TIME_WAIT; the services reuse it anyway.
keep_port() {
  local recorded
  recorded=$(env_get "$1")
  if [ -n "$recorded" ] && ! tcp_open "$recorded"; then
    echo "$recorded"
  else
    pick_port "$2"
  fi
}

tcp_open() {
  python3 - "$1" <<'PY'
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}

pid_alive() {
  local pidfile=$1
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# start_bg NAME LOG CMD...: start CMD in its own session, record its pid in RUN_DIR/NAME.pid.
start_bg() {
  local name=$1 log=$2
  shift 2
  setsid "$@" >"$log" 2>&1 < /dev/null &
  echo $! >"$RUN_DIR/$name.pid"
}

# kill_pid NAME: SIGKILL the process we started (a crash, for fault tests); forget its pid.
kill_pid() { signal_pid "$1" KILL killed; }

# stop_pid NAME: SIGTERM the process we started, SIGKILL after 30 s; forget its pid.
stop_pid() { signal_pid "$1" TERM stopped; }

# signal_pid NAME SIGNAL WORD: send SIGNAL, wait up to 30 s for the exit (then SIGKILL).
signal_pid() {
  local pidfile=$RUN_DIR/$1.pid pid
  if pid_alive "$pidfile"; then
    pid=$(cat "$pidfile")
    kill -"$2" "$pid" 2>/dev/null
    for _ in $(seq 1 60); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    say "$1 $3 (pid $pid)"
  fi
  rm -f "$pidfile"
}

# wait_for NAME SECONDS LOG CHECK...: poll CHECK until it succeeds; fail with LOG on timeout
# or when the process died.
wait_for() {
  local name=$1 seconds=$2 log=$3 deadline
  shift 3
  deadline=$((SECONDS + seconds))
  while ! "$@" >/dev/null 2>&1; do
    if ! pid_alive "$RUN_DIR/$name.pid"; then
      fail "start $name" "the process exited" "$log"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      fail "start $name" "not ready after ${seconds}s" "$log"
    fi
    sleep 0.5
  done
}

# env_get KEY: a value from the connection facts file.
env_get() {
  [ -f "$ENV_FILE" ] && sed -n "s/^$1=//p" "$ENV_FILE" | tail -n 1
}

# env_set KEY VALUE: record a connection fact (one KEY=VALUE line per key).
env_set() {
  touch "$ENV_FILE"
  sed -i "/^$1=/d" "$ENV_FILE"
  echo "$1=$2" >>"$ENV_FILE"
}

env_unset_prefix() {
  [ -f "$ENV_FILE" ] && sed -i "/^$1/d" "$ENV_FILE"
  return 0
}

# apt_install PKG...: install Debian packages (as root, or through sudo).
apt_install() {
  local sudo='' log=$CACHE/apt.log
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  say "installing $* from Debian's packages (log: $log)"
  {
    $sudo apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
  } >>"$log" 2>&1 || fail "apt-get install $*" "apt-get failed" "$log"
}
