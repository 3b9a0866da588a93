# Mosquitto MQTT broker for the integration tests, from Debian's package, started by hand
# with its own config on 127.0.0.1. Sourced by scripts/services.sh.

mosquitto_bin() { command -v mosquitto || echo /usr/sbin/mosquitto; }

mosquitto_install() {
  [ -x "$(mosquitto_bin)" ] || apt_install mosquitto
}

mosquitto_up() {
  if pid_alive "$RUN_DIR/mosquitto.pid" && tcp_open "$(env_get MQTT_PORT)"; then
    return 0
  fi
  stop_pid mosquitto
  local port dir=$RUN_DIR/mosquitto log=$RUN_DIR/mosquitto.log
  port=$(keep_port MQTT_PORT 1883)
  mkdir -p "$dir"
  env_unset_prefix MQTT_
  env_set MQTT_PORT "$port"
  # `user root` keeps the process as the invoking user (as root it would otherwise drop
  # to the `mosquitto` user); it needs no writable files with persistence off.
  cat >"$dir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
user $(id -un)
log_dest stdout
log_type error
log_type warning
log_type notice
CONF
  start_bg mosquitto "$log" "$(mosquitto_bin)" -c "$dir/mosquitto.conf"
  wait_for mosquitto 15 "$log" tcp_open "$port"
  env_set MQTT_HOST 127.0.0.1
  env_set MQTT_VERSION "$("$(mosquitto_bin)" -h 2>/dev/null | sed -n 's/^mosquitto version \([^ ]*\).*/\1/p')"
}

mosquitto_down() { stop_pid mosquitto; }

mosquitto_kill() { kill_pid mosquitto; }

# Nothing to wipe: persistence is off.
mosquitto_wipe() { :; }

mosquitto_status() {
  if pid_alive "$RUN_DIR/mosquitto.pid" && tcp_open "$(env_get MQTT_PORT)"; then
    echo "mosquitto up    127.0.0.1:$(env_get MQTT_PORT)  (Mosquitto $(env_get MQTT_VERSION))"
  else
    echo "mosquitto down"
    return 1
  fi
}
