# Mosquitto MQTT broker for the integration tests, from Debian's package, started by hand
# with its own config on 127.0.0.1. Sourced by scripts/services.sh.

mosquitto_bin() { command -v mosquitto || echo /usr/sbin/mosquitto; }

mosquitto_install() {
  [ -x "$(mosquitto_bin)" ] || apt_install mosquitto
}

# The broker has four listeners on 127.0.0.1 (per_listener_settings):
#   MQTT_PORT         plain, anonymous: most tests;
#   MQTT_TLS_PORT     TLS (a server certificate of the CA in MQTT_CA_FILE), users from a
#                     password_file (MQTT_USER / MQTT_PASSWORD may read secure/allowed/#,
#                     MQTT_PRODUCER / MQTT_PRODUCER_PASSWORD may write secure/#) and an
#                     acl_file;
#   MQTT_MTLS_PORT    TLS that requires a client certificate of that CA; its CN is the
#                     user (MQTT_CERT_USER may read secure/allowed/#). Tests sign their
#                     own with MQTT_CA_KEY;
#   MQTT_DYNSEC_PORT  plain, users and ACLs of the dynamic security plugin, which (unlike
#                     an acl_file) refuses a subscription it does not allow.
mosquitto_up() {
  if pid_alive "$RUN_DIR/mosquitto.pid" && tcp_open "$(env_get MQTT_PORT)" \
    && tcp_open "$(env_get MQTT_DYNSEC_PORT)"; then
    return 0
  fi
  stop_pid mosquitto
  local port tls_port mtls_port dynsec_port dir=$RUN_DIR/mosquitto log=$RUN_DIR/mosquitto.log
  port=$(keep_port MQTT_PORT 1883)
  tls_port=$(keep_port MQTT_TLS_PORT 8883)
  mtls_port=$(keep_port MQTT_MTLS_PORT 8884)
  dynsec_port=$(keep_port MQTT_DYNSEC_PORT 1884)
  mkdir -p "$dir"
  test_tls "$dir/tls"
  # The users' passwords are kept across restarts, as the ports are: a test that
  # restarts the broker leaves the others' facts true.
  local password producer_password admin_password
  password=$(env_get MQTT_PASSWORD)
  producer_password=$(env_get MQTT_PRODUCER_PASSWORD)
  [ -n "$password" ] || password=$(random_secret)
  [ -n "$producer_password" ] || producer_password=$(random_secret)
  admin_password=$(random_secret)
  rm -f "$dir/passwd" "$dir/dynsec.json"
  mosquitto_passwd -b -c "$dir/passwd" streamer "$password" >/dev/null
  mosquitto_passwd -b "$dir/passwd" producer "$producer_password" >/dev/null
  cat >"$dir/acl" <<ACL
user streamer
topic read secure/allowed/#

user producer
topic write secure/#

user streamer-client
topic read secure/allowed/#
ACL
  run_logged "mosquitto dynsec init" "$log" \
    mosquitto_ctrl dynsec init "$dir/dynsec.json" admin "$admin_password"
  env_unset_prefix MQTT_
  env_set MQTT_PORT "$port"
  # `user root` keeps the process as the invoking user (as root it would otherwise drop
  # to the `mosquitto` user); it needs no writable files but the plugin's own, with
  # persistence off.
  local tls="cafile $dir/tls/ca.crt
certfile $dir/tls/server.crt
keyfile $dir/tls/server.key"
  cat >"$dir/mosquitto.conf" <<CONF
per_listener_settings true
persistence false
user $(id -un)
log_dest stdout
log_type error
log_type warning
log_type notice

listener $port 127.0.0.1
allow_anonymous true

listener $tls_port 127.0.0.1
$tls
allow_anonymous false
password_file $dir/passwd
acl_file $dir/acl

listener $mtls_port 127.0.0.1
$tls
require_certificate true
use_identity_as_username true
allow_anonymous false
acl_file $dir/acl

listener $dynsec_port 127.0.0.1
allow_anonymous false
plugin $(mosquitto_dynsec_plugin)
plugin_opt_config_file $dir/dynsec.json
CONF
  start_bg mosquitto "$log" "$(mosquitto_bin)" -c "$dir/mosquitto.conf"
  wait_for mosquitto 15 "$log" tcp_open "$port"
  wait_for mosquitto 15 "$log" tcp_open "$dynsec_port"
  local ctrl=(mosquitto_ctrl -h 127.0.0.1 -p "$dynsec_port" -u admin -P "$admin_password" dynsec)
  {
    "${ctrl[@]}" createClient streamer -p "$password" &&
      "${ctrl[@]}" createRole reader &&
      "${ctrl[@]}" addRoleACL reader subscribePattern 'secure/allowed/#' allow &&
      "${ctrl[@]}" addClientRole streamer reader
  } >>"$log" 2>&1 || fail "mosquitto dynsec users" "mosquitto_ctrl failed" "$log"
  env_set MQTT_HOST 127.0.0.1
  env_set MQTT_TLS_PORT "$tls_port"
  env_set MQTT_MTLS_PORT "$mtls_port"
  env_set MQTT_DYNSEC_PORT "$dynsec_port"
  env_set MQTT_CA_FILE "$dir/tls/ca.crt"
  env_set MQTT_CA_KEY "$dir/tls/ca.key"
  env_set MQTT_USER streamer
  env_set MQTT_PASSWORD "$password"
  env_set MQTT_PRODUCER producer
  env_set MQTT_PRODUCER_PASSWORD "$producer_password"
  env_set MQTT_CERT_USER streamer-client
  env_set MQTT_VERSION "$("$(mosquitto_bin)" -h 2>/dev/null | sed -n 's/^mosquitto version \([^ ]*\).*/\1/p')"
}

mosquitto_dynsec_plugin() {
  local found
  found=$(find /usr/lib -name mosquitto_dynamic_security.so 2>/dev/null | head -n 1)
  echo "${found:-/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so}"
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
