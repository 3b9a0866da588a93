#!/usr/bin/env bash
# Real services for the integration tests, on 127.0.0.1, without Docker:
#   Apache Kafka (KRaft, single node), InfluxDB 2.x, Mosquitto.
#
#   scripts/services.sh install   build/download each one into the cache (idempotent)
#   scripts/services.sh up        install if needed, start what is not running, wait
#                                 until each answers, print where they run; data and
#                                 ports are kept from the last run
#   scripts/services.sh restart   stop (SIGTERM) and start again, keeping data and ports
#   scripts/services.sh reset     stop, wipe the data, start afresh
#   scripts/services.sh down      stop (SIGTERM) only the processes this script started
#   scripts/services.sh kill      SIGKILL them (a crash, for fault tests)
#   scripts/services.sh status    say which are up; exit 1 if any is down
#   scripts/services.sh logs      print the tail of each service's log
#
# Any command takes service names to act on only those (kafka, influxdb, mosquitto).
# Cache: $STREAMER_SERVICES_CACHE (default ~/.cache/streamer-services). Connection facts
# (host:port, InfluxDB org/bucket/token) are written to $STREAMER_SERVICES_RUN/services.env
# (default <cache>/run/services.env), which the tests read.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$here/services/common.sh"
. "$here/services/kafka.sh"
. "$here/services/influxdb.sh"
. "$here/services/mosquitto.sh"

ALL="kafka influxdb mosquitto"
cmd=${1:-status}
shift || true
names=${*:-$ALL}
for n in $names; do
  case " $ALL " in *" $n "*) ;; *) say "unknown service '$n' (known: $ALL)"; exit 2 ;; esac
done

case "$cmd" in
  install)
    for n in $names; do "${n}_install"; done
    ;;
  up)
    for n in $names; do "${n}_install"; done
    for n in $names; do "${n}_up"; done
    for n in $names; do "${n}_status"; done
    echo "connection facts: $ENV_FILE"
    ;;
  restart)
    for n in $names; do "${n}_install"; done
    for n in $names; do "${n}_down"; done
    for n in $names; do "${n}_up"; done
    for n in $names; do "${n}_status"; done
    ;;
  reset)
    for n in $names; do "${n}_install"; done
    for n in $names; do "${n}_down"; "${n}_wipe"; done
    for n in $names; do "${n}_up"; done
    for n in $names; do "${n}_status"; done
    echo "connection facts: $ENV_FILE"
    ;;
  down)
    for n in $names; do "${n}_down"; done
    ;;
  kill)
    for n in $names; do "${n}_kill"; done
    ;;
  status)
    rc=0
    for n in $names; do "${n}_status" || rc=1; done
    exit $rc
    ;;
  logs)
    for n in $names; do
      log=$RUN_DIR/$n.log
      echo "==== $n: $log"
      [ -f "$log" ] && tail -n 60 "$log"
    done
    ;;
  *)
    say "usage: $0 install|up|restart|reset|down|kill|status|logs [kafka] [influxdb] [mosquitto]"
    exit 2
    ;;
esac
