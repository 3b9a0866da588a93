# Apache Kafka for the integration tests: a single KRaft node (broker + controller) on
# 127.0.0.1, run from the official jars resolved by Maven. Sourced by scripts/services.sh.

KAFKA_VER=3.9.0
KAFKA_POM=$(dirname "${BASH_SOURCE[0]}")/kafka-pom.xml
KAFKA_ROOT=$CACHE/kafka-$KAFKA_VER
KAFKA_LIBS=$KAFKA_ROOT/libs

kafka_installed() { [ -f "$KAFKA_ROOT/.complete" ]; }

kafka_install() {
  kafka_installed && return 0
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  command -v mvn >/dev/null || apt_install maven
  local log=$KAFKA_ROOT/install.log
  rm -rf "$KAFKA_LIBS"
  mkdir -p "$KAFKA_LIBS"
  : >"$log"
  run_logged "resolve Kafka $KAFKA_VER jars with Maven" "$log" \
    mvn -B -q -f "$KAFKA_POM" \
    org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS"
  [ -f "$KAFKA_LIBS/kafka_2.13-$KAFKA_VER.jar" ] ||
    fail "resolve Kafka jars" "kafka_2.13-$KAFKA_VER.jar missing from $KAFKA_LIBS" "$log"
  touch "$KAFKA_ROOT/.complete"
}

kafka_java() {
  java -Dlog4j.configuration="file:$RUN_DIR/kafka/log4j.properties" -cp "$KAFKA_LIBS/*" "$@"
}

kafka_ready() {
  grep -q 'Kafka Server started' "$RUN_DIR/kafka.log" && tcp_open "$(env_get KAFKA_PORT)"
}

# kafka_up: start the broker unless it runs. Its data (topics, offsets, groups) and its
# ports are kept from the last run when there is one: only a first start, or a reset,
# formats fresh storage. Besides PLAINTEXT (KAFKA_PORT) it listens with
#   SASL_SSL (KAFKA_SASL_SSL_PORT): PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, for the user
#     KAFKA_SASL_USER / KAFKA_SASL_PASSWORD (kept across restarts), over TLS;
#   SSL (KAFKA_SSL_PORT): TLS that requires a client certificate;
# both with a server certificate of the test CA in KAFKA_CA_FILE (tests sign client
# certificates with KAFKA_CA_KEY).
kafka_up() {
  if pid_alive "$RUN_DIR/kafka.pid" && kafka_ready && tcp_open "$(env_get KAFKA_SSL_PORT)"; then
    return 0
  fi
  stop_pid kafka
  local port ctrl sasl_port ssl_port dir=$RUN_DIR/kafka log=$RUN_DIR/kafka.log
  port=$(keep_port KAFKA_PORT 9092)
  ctrl=$(keep_port KAFKA_CONTROLLER_PORT 9093)
  while [ "$ctrl" = "$port" ]; do ctrl=$(free_port); done
  sasl_port=$(keep_port KAFKA_SASL_SSL_PORT 9094)
  ssl_port=$(keep_port KAFKA_SSL_PORT 9095)
  local password
  password=$(env_get KAFKA_SASL_PASSWORD)
  [ -n "$password" ] || password=$(random_secret)
  mkdir -p "$dir"
  test_tls "$dir/tls"
  cat >"$dir/log4j.properties" <<PROPS
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaRaftServer=INFO
PROPS
  # Static quorum, formatted without --standalone. Small thread pools for a 2-core box;
  # one partition for internal topics so the first consumer group is created quickly.
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$ctrl
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$ctrl,SASL_SSL://127.0.0.1:$sasl_port,SSL://127.0.0.1:$ssl_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port,SASL_SSL://127.0.0.1:$sasl_port,SSL://127.0.0.1:$ssl_port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL
ssl.keystore.type=PEM
ssl.keystore.location=$dir/tls/server.pem
ssl.truststore.type=PEM
ssl.truststore.location=$dir/tls/ca.crt
listener.name.ssl.ssl.client.auth=required
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_streamer="$password";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
log.dirs=$dir/data
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
PROPS
  : >"$log"
  if [ ! -f "$dir/data/meta.properties" ]; then
    rm -rf "$dir/data"
    # A cluster id that does not start with '-' (it would read as an option).
    local cluster_id
    cluster_id=$(python3 -c 'import base64, uuid
while not (i := base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode())[0].isalnum(): pass
print(i)')
    run_logged "format Kafka storage" "$log" \
      kafka_java -Xmx256m kafka.tools.StorageTool format --cluster-id="$cluster_id" \
      -c "$dir/server.properties"
  fi
  env_unset_prefix KAFKA_
  env_set KAFKA_PORT "$port"
  env_set KAFKA_CONTROLLER_PORT "$ctrl"
  start_bg kafka "$log" java -Xms512m -Xmx1g -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true -Dkafka.logs.dir="$dir/logs" \
    -Dlog4j.configuration="file:$dir/log4j.properties" -cp "$KAFKA_LIBS/*" \
    kafka.Kafka "$dir/server.properties"
  wait_for kafka 90 "$log" kafka_ready
  # SCRAM credentials live in the cluster's metadata: set (again) over PLAINTEXT.
  local mechanism
  for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
    run_logged "Kafka $mechanism user" "$dir/scram.log" kafka_java -Xmx128m \
      kafka.admin.ConfigCommand --bootstrap-server "127.0.0.1:$port" --alter \
      --entity-type users --entity-name streamer --add-config "$mechanism=[password=$password]"
  done
  env_set KAFKA_BOOTSTRAP "127.0.0.1:$port"
  env_set KAFKA_SASL_SSL_PORT "$sasl_port"
  env_set KAFKA_SSL_PORT "$ssl_port"
  env_set KAFKA_CA_FILE "$dir/tls/ca.crt"
  env_set KAFKA_CA_KEY "$dir/tls/ca.key"
  env_set KAFKA_SASL_USER streamer
  env_set KAFKA_SASL_PASSWORD "$password"
  env_set KAFKA_VERSION "$KAFKA_VER"
}

kafka_wipe() { rm -rf "$RUN_DIR/kafka"; }

kafka_down() { stop_pid kafka; }

kafka_kill() { kill_pid kafka; }

kafka_status() {
  if pid_alive "$RUN_DIR/kafka.pid" && kafka_ready; then
    echo "kafka     up    127.0.0.1:$(env_get KAFKA_PORT)  (Apache Kafka $KAFKA_VER, KRaft)"
  else
    echo "kafka     down"
    return 1
  fi
}
