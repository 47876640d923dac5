#!/usr/bin/env bash
# Apache Kafka (KRaft) on 127.0.0.1, from Maven Central jars; Java 17+ and Maven.
#
#   scripts/kafka.sh install              fetch the broker's jars into the cache (once; no network after)
#   scripts/kafka.sh start [PORT]         one node, broker + controller, on PORT (9092); prints the
#                                         bootstrap address once the broker answers a metadata request.
#                                         Started again on a stopped node's directory, it keeps its data.
#   scripts/kafka.sh run [PORT]           the same in the foreground (for a harness that owns the process)
#   scripts/kafka.sh stop                 SIGTERM to the node of `start`, and wait for it to exit
#   scripts/kafka.sh cluster-start N [BASE_PORT]
#                                         N nodes, each broker + controller (static quorum), brokers on
#                                         BASE_PORT.. (free ports when omitted), min.insync.replicas=2;
#                                         prints the bootstrap list
#   scripts/kafka.sh cluster-stop         stop every node of the cluster
#   scripts/kafka.sh node-stop ID | node-kill ID | node-start ID
#                                         one cluster node: SIGTERM, SIGKILL, or start it again on its data
#   scripts/kafka.sh secure-start [PORT]  one node whose client listener on PORT takes SASL_SSL only
#                                         (SCRAM-SHA-512 user `driftwood`; certificates made here with
#                                         openssl: $KAFKA_STATE_DIR/tls/ca.pem, password in
#                                         tls/scram-password); a PLAINTEXT listener on another loopback
#                                         port serves the other brokers' traffic and test set-up, and
#                                         is printed second
#   scripts/kafka.sh bootstrap            the bootstrap address of what runs in $KAFKA_STATE_DIR
#   scripts/kafka.sh version [BOOTSTRAP]  the pinned version; with BOOTSTRAP, what that cluster runs
#
# KAFKA_STATE_DIR (default .kafka) holds configuration, data, logs and pids, so brokers in
# different directories run side by side. KAFKA_CACHE_DIR (default ~/.cache/driftwood) holds
# the jars. KAFKA_HEAP_OPTS overrides the heap (-Xms128m -Xmx512m), and KAFKA_OPTS adds JVM
# flags to a node's command line, as in Kafka's scripts. KAFKA_EXTRA_CONFIG (lines of key=value) is appended to a new single node's server.properties,
# e.g. to break it on purpose in a test.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

# The one place the broker's version is pinned (and the log4j that the release tarball ships).
KAFKA_VERSION=4.4.0
LOG4J_VERSION=2.25.3

cache="${KAFKA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/driftwood}/kafka-$KAFKA_VERSION"
state="${KAFKA_STATE_DIR:-.kafka}"
probe_src="scripts/kafka/KafkaProbe.java"
heap="${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
opts="${KAFKA_OPTS:-}"

need_java() {
  need java "Apache Kafka $KAFKA_VERSION needs Java 17 or newer"
  local major
  major=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
  [ "${major%%.*}" -ge 17 ] 2>/dev/null || die "Java $major found; Apache Kafka $KAFKA_VERSION needs 17 or newer"
}

install() {
  need_java
  if [ ! -f "$cache/lib/kafka_2.13-$KAFKA_VERSION.jar" ]; then
    need mvn "installing Apache Kafka needs Maven (and Java 17+)"
    echo "fetching Apache Kafka $KAFKA_VERSION from Maven Central into $cache…" >&2
    mkdir -p "$cache/build"
    write_pom >"$cache/build/pom.xml"
    rm -rf "$cache/lib.part"
    maven "$cache/build" "Maven could not fetch the broker's jars (see above)" \
      dependency:copy-dependencies -DoutputDirectory="$cache/lib.part" -DincludeScope=runtime
    rm -rf "$cache/lib" && mv "$cache/lib.part" "$cache/lib"
  fi
  if [ ! -f "$cache/classes/KafkaProbe.class" ] || [ "$probe_src" -nt "$cache/classes/KafkaProbe.class" ]; then
    mkdir -p "$cache/classes"
    javac -nowarn -cp "$cache/lib/*" -d "$cache/classes" "$probe_src" >&2
  fi
}

write_pom() {
  cat <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>driftwood.local</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <!-- Logging is not in Kafka's POM (the release tarball adds it); slf4j 1.7 needs this binding. -->
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-api</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
EOF
}

# The probe, the formatting and the UUID are Java programs that run for a second: compiled by
# the JIT's first tier only and with the serial collector, each takes about 40% less CPU (1.5
# against 0.9 s here), and the tests start dozens of them.
tool_flags=(-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:-UsePerfData)

probe() { java "${tool_flags[@]}" -cp "$cache/classes:$cache/lib/*" KafkaProbe "$@"; }

# node_config DIR ID PORT CONTROLLER_PORT VOTERS: server.properties of one node. VOTERS is
# empty for a single node (dynamic quorum, formatted --standalone) or the static voter list.
node_config() {
  local dir=$1 id=$2 port=$3 cport=$4 voters=$5 nodes=$6
  local rf=$((nodes < 3 ? nodes : 3)) isr=$((nodes < 3 ? 1 : 2))
  cat <<EOF
process.roles=broker,controller
node.id=$id
$( [ -z "$voters" ] && echo "controller.quorum.bootstrap.servers=127.0.0.1:$cport" || echo "controller.quorum.voters=$voters" )
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
# Internal topics replicated as far as the cluster allows; groups start without waiting.
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
default.replication.factor=$rf
min.insync.replicas=$isr
group.initial.rebalance.delay.ms=0
# Like most production clusters: topics are created on purpose (driftwood --create-topics).
auto.create.topics.enable=false
EOF
}

log_config() {
  cat <<'EOF'
status = warn
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
EOF
}

# format DIR CLUSTER_ID [--standalone]: KRaft storage, unless already formatted.
format() {
  local dir=$1 id=$2; shift 2
  [ -f "$dir/data/meta.properties" ] && return 0
  java "${tool_flags[@]}" -Dlog4j2.configurationFile="$dir/log4j2.properties" \
    -Dkafka.logs.dir="$dir/logs" -cp "$cache/lib/*" \
    kafka.tools.StorageTool format "$@" -t "$id" -c "$dir/server.properties" \
    >"$dir/logs/format.log" 2>&1 || die "formatting $dir failed: $(tail -3 "$dir/logs/format.log")"
}

# java_command DIR: sets the array `cmd` to the command line of the node in DIR.
java_command() {
  local dir=$1 heap_flags extra_flags
  read -r -a heap_flags <<<"$heap"
  read -r -a extra_flags <<<"$opts"
  cmd=(java "${heap_flags[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent "${extra_flags[@]}"
    -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$dir/log4j2.properties" -Dkafka.logs.dir="$dir/logs"
    -cp "$cache/lib/*" kafka.Kafka "$dir/server.properties")
}

# prepare_single DIR PORT: configuration and storage of a one-node cluster (kept when present).
prepare_single() {
  local dir=$1 port=$2
  mkdir -p "$dir/logs"
  dir=$(cd "$dir" && pwd)
  if [ -f "$dir/server.properties" ]; then
    local had
    had=$(sed -n 's#^advertised.listeners=PLAINTEXT://127.0.0.1:##p' "$dir/server.properties")
    [ "$had" = "$port" ] || die "$dir holds a broker on port $had, not $port: stop it and remove $dir, or use another KAFKA_STATE_DIR"
  else
    node_config "$dir" 1 "$port" "$(free_port)" "" 1 >"$dir/server.properties"
    [ -z "${KAFKA_EXTRA_CONFIG:-}" ] || printf '%s\n' "$KAFKA_EXTRA_CONFIG" >>"$dir/server.properties"
    log_config >"$dir/log4j2.properties"
  fi
  format "$dir" "$(probe_uuid)" --standalone
  echo "$dir"
}

probe_uuid() { java "${tool_flags[@]}" -cp "$cache/lib/*" kafka.tools.StorageTool random-uuid; }

# launch DIR: starts the node of DIR in the background and records its pid.
launch() {
  local dir=$1
  alive "$dir/pid" && die "a broker already runs from $dir (pid $(cat "$dir/pid"))"
  java_command "$dir"
  spawn "$dir/pid" "$dir/logs/stdout.log" "${cmd[@]}"
}

bootstrap_of() {
  local dirs=("$@") out=()
  for d in "${dirs[@]}"; do
    out+=("127.0.0.1:$(sed -n 's#^advertised.listeners=PLAINTEXT://127.0.0.1:##p' "$d/server.properties")")
  done
  (IFS=,; echo "${out[*]}")
}

# await BOOTSTRAP NODES DIRS...: until a metadata request lists NODES brokers, or a node dies.
await() {
  local bootstrap=$1 nodes=$2
  poll 18 0 nodes_ready "$@" && return 0
  probe ready "$bootstrap" "$nodes" 1 || die "no broker ready at $bootstrap after 90 s; logs in $state"
}

# nodes_ready BOOTSTRAP NODES DIRS...: whether a metadata request (5 s at most) lists NODES
# brokers; dies when a node in DIRS has exited.
nodes_ready() {
  local bootstrap=$1 nodes=$2; shift 2
  for d in "$@"; do
    alive "$d/pid" || die "the node in $d exited: $(tail -3 "$d/logs/stdout.log" "$d/logs/server.log" 2>/dev/null)"
  done
  probe ready "$bootstrap" "$nodes" 5 2>/dev/null
}

# halt DIR SIGNAL: signal the node and wait for it to exit.
halt() {
  local dir=$1 signal=$2
  stop_pidfile "$dir/pid" "$signal" 600 \
    "node in $dir did not exit within 60 s of SIG$signal; killing it"
}

node_dirs() { ls -d "$state"/node-* 2>/dev/null || true; }

# certificates DIR KEYSTORE_PASSWORD: a CA, and a broker certificate for 127.0.0.1/localhost
# signed by it, in a PKCS12 keystore.
certificates() {
  local dir=$1 pass=$2
  need openssl "the secure broker needs it for certificates"
  (
    cd "$dir"
    server_certificate "driftwood test CA" broker
    openssl pkcs12 -export -in broker.pem -inkey broker.key -certfile ca.pem -out broker.p12 \
      -passout "pass:$pass"
  ) >"$dir/openssl.log" 2>&1 || die "making certificates failed: $(tail -3 "$dir/openssl.log")"
}

# secure_start PORT: see the usage above.
secure_start() {
  local port=$1 dir iport cport pass password
  mkdir -p "$state/logs" "$state/tls"
  dir=$(cd "$state" && pwd)
  [ -f "$dir/server.properties" ] && die "$dir already holds a broker: stop it and remove $dir, or use another KAFKA_STATE_DIR"
  iport=$(free_port); cport=$(free_port)
  pass=$(openssl rand -hex 12); password=$(openssl rand -hex 16)
  certificates "$dir/tls" "$pass"
  (umask 077 && printf '%s' "$password" >"$dir/tls/scram-password")
  node_config "$dir" 1 "$iport" "$cport" "" 1 | sed \
    -e "s#^listeners=.*#listeners=SASL_SSL://127.0.0.1:$port,PLAINTEXT://127.0.0.1:$iport,CONTROLLER://127.0.0.1:$cport#" \
    -e "s#^advertised.listeners=.*#advertised.listeners=PLAINTEXT://127.0.0.1:$iport,SASL_SSL://127.0.0.1:$port#" \
    -e "s#^listener.security.protocol.map=.*#listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL#" \
    >"$dir/server.properties"
  {
    echo "sasl.enabled.mechanisms=SCRAM-SHA-512"
    echo "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
    echo "ssl.keystore.type=PKCS12"
    echo "ssl.keystore.location=$dir/tls/broker.p12"
    echo "ssl.keystore.password=$pass"
    echo "ssl.key.password=$pass"
    echo "# mTLS adds ssl.client.auth=required, ssl.truststore.type=PEM and ssl.truststore.location."
  } >>"$dir/server.properties"
  log_config >"$dir/log4j2.properties"
  format "$dir" "$(probe_uuid)" --standalone \
    --add-scram "SCRAM-SHA-512=[name=driftwood,password=$password]"
  launch "$dir"
  await "127.0.0.1:$iport" 1 "$dir"
  echo "127.0.0.1:$port"
  echo "127.0.0.1:$iport"
}

cluster_start() {
  local n=$1 base=${2:-} voters="" dirs=() cluster_id
  [ "$n" -ge 1 ] 2>/dev/null || die "cluster-start needs a node count"
  [ -z "$(node_dirs)" ] || die "$state already holds a cluster: cluster-stop it and remove $state/node-*"
  local ports=() cports=()
  for id in $(seq 1 "$n"); do
    if [ -n "$base" ]; then ports+=($((base + id - 1))); cports+=($((base + 100 + id - 1)));
    else ports+=("$(free_port)"); cports+=("$(free_port)"); fi
    voters+="${voters:+,}$id@127.0.0.1:${cports[$((id - 1))]}"
  done
  cluster_id=$(probe_uuid)
  for id in $(seq 1 "$n"); do
    local dir="$state/node-$id"
    mkdir -p "$dir/logs"; dir=$(cd "$dir" && pwd)
    node_config "$dir" "$id" "${ports[$((id - 1))]}" "${cports[$((id - 1))]}" "$voters" "$n" >"$dir/server.properties"
    log_config >"$dir/log4j2.properties"
    format "$dir" "$cluster_id"
    dirs+=("$dir")
  done
  # Every node at once: the controllers need a quorum before any broker can register.
  for d in "${dirs[@]}"; do launch "$d"; done
  local bootstrap; bootstrap=$(bootstrap_of "${dirs[@]}")
  await "$bootstrap" "$n" "${dirs[@]}"
  echo "$bootstrap"
}

node_dir() {
  local dir="$state/node-$1"
  [ -f "$dir/server.properties" ] || die "no cluster node $1 in $state"
  echo "$dir"
}

case "${1:-}" in
  install)
    install
    echo "Apache Kafka $KAFKA_VERSION in $cache" ;;
  start|run)
    install
    dir=$(prepare_single "$state" "${2:-9092}")
    if [ "$1" = run ]; then
      java_command "$dir"
      exec "${cmd[@]}" >"$dir/logs/stdout.log" 2>&1
    fi
    launch "$dir"
    await "$(bootstrap_of "$dir")" 1 "$dir"
    bootstrap_of "$dir" ;;
  stop)
    halt "$state" TERM ;;
  secure-start)
    install
    secure_start "${2:-9093}" ;;
  cluster-start)
    install
    cluster_start "${2:-3}" "${3:-}" ;;
  cluster-stop)
    # All at once: stopped one by one, the last nodes would wait for a lost quorum.
    for d in $(node_dirs); do [ -f "$d/pid" ] && kill -TERM "$(cat "$d/pid")" 2>/dev/null || true; done
    for d in $(node_dirs); do halt "$d" TERM; done ;;
  node-stop) halt "$(node_dir "${2:?node id}")" TERM ;;
  node-kill) halt "$(node_dir "${2:?node id}")" KILL ;;
  node-start)
    dir=$(node_dir "${2:?node id}")
    launch "$dir"
    mapfile -t all < <(node_dirs)
    # Asked through the restarted node itself: a killed node stays listed by the others
    # until its broker session expires.
    await "$(bootstrap_of "$dir")" "${#all[@]}" "$dir"
    bootstrap_of "${all[@]}" ;;
  bootstrap)
    if [ -n "$(node_dirs)" ]; then mapfile -t all < <(node_dirs); bootstrap_of "${all[@]}";
    elif [ -f "$state/server.properties" ]; then bootstrap_of "$state";
    else die "nothing configured in $state"; fi ;;
  version)
    if [ -n "${2:-}" ]; then install; echo "Apache Kafka at $2: $(probe version "$2")";
    else echo "$KAFKA_VERSION"; fi ;;
  *)
    sed -n '2,28p' "$0" >&2; exit 2 ;;
esac
