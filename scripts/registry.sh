#!/usr/bin/env bash
# Apicurio Registry on 127.0.0.1, built from Maven Central jars with
# Quarkus' build (scripts/registry/pom.xml says how); Java 17+ and Maven. It serves the
# Confluent-compatible Schema Registry API under /apis/ccompat/v7.
#
#   scripts/registry.sh install        fetch and build it into the cache (once; no network after)
#   scripts/registry.sh start [PORT]   start it on PORT (8081); prints the Confluent-compatible
#                                      URL once it answers
#   scripts/registry.sh run [PORT]     the same in the foreground (for a harness that owns it)
#   scripts/registry.sh secure-start [PORT]
#                                      the same over HTTPS only, client certificates required:
#                                      a CA, a server certificate for localhost/127.0.0.1 and a
#                                      client certificate are made with openssl in
#                                      $REGISTRY_STATE_DIR/tls (ca.pem, client.pem, client.key)
#   scripts/registry.sh stop           SIGTERM to the registry of `start`, and wait for it to exit
#   scripts/registry.sh version        the pinned version
#
# REGISTRY_STATE_DIR (default .registry) holds its pid, log and schemas (H2 database files in
# data/, the storage of Apicurio's in-memory build pointed at a file): started again on the
# same directory, it keeps its schemas and ids, as a production registry does.
# KAFKA_CACHE_DIR (default ~/.cache/driftwood) holds the build.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

REGISTRY_VERSION=$(sed -n 's#^  <version>\(.*\)</version>#\1#p' scripts/registry/pom.xml | head -1)
cache="${KAFKA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/driftwood}/apicurio-registry-$REGISTRY_VERSION"
state="${REGISTRY_STATE_DIR:-.registry}"
runner="$cache/build/target/apicurio-registry-$REGISTRY_VERSION-runner.jar"

install() {
  need java "Apicurio Registry needs Java 17 or newer"
  # Built again when the POM or the build's properties change (by content: a fresh clone's
  # files are all new).
  local stamp
  stamp=$( (cat scripts/registry/pom.xml; build_properties) | sha256sum | cut -c1-16)
  if [ -f "$runner" ] && [ "$(cat "$cache/build/.stamp" 2>/dev/null)" = "$stamp" ]; then return 0; fi
  need mvn "building Apicurio Registry needs Maven (and Java 17+)"
  echo "building Apicurio Registry $REGISTRY_VERSION from Maven Central into $cache…" >&2
  rm -rf "$cache/build" && mkdir -p "$cache/build/src/main/resources"
  cp scripts/registry/pom.xml "$cache/build/pom.xml"
  local app="io.apicurio:apicurio-registry-app:$REGISTRY_VERSION"
  maven "$cache/build" "Maven could not fetch $app (see above)" \
    dependency:copy -Dartifact="$app" -DoutputDirectory="$cache/build/app"
  # The release's own configuration, and the published app jar indexed as the application.
  unzip -p "$cache/build/app/apicurio-registry-app-$REGISTRY_VERSION.jar" application.properties \
    >"$cache/build/src/main/resources/application.properties"
  build_properties >>"$cache/build/src/main/resources/application.properties"
  maven "$cache/build" "building Apicurio Registry failed (see above)" package
  [ -f "$runner" ] || die "the build made no $runner"
  echo "$stamp" >"$cache/build/.stamp"
}

# What the build adds to the release's application.properties.
build_properties() {
  cat <<'PROPS'
quarkus.index-dependency.registry.group-id=io.apicurio
quarkus.index-dependency.registry.artifact-id=apicurio-registry-app
# Fixed at build time: over HTTPS (secure-start) a client certificate is required. Plain HTTP
# is not affected.
quarkus.http.ssl.client-auth=required
PROPS
}

# command_line PORT [PROPERTY...]: sets the array `cmd` to the registry's command line, its
# schemas in $state/data, with the given -D properties (HTTPS for secure-start).
command_line() {
  local port=$1; shift
  cmd=(java -Xms64m -Xmx384m -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$port"
    -Dquarkus.datasource.jdbc.url="jdbc:h2:file:$(cd "$state" && pwd)/data/registry"
    "$@" -jar "$runner")
}

# The properties of HTTPS on PORT only (plain HTTP on a port of Quarkus' choosing, refused),
# with the certificates of `certificates`.
secure_properties() {
  local port=$1 tls="$state/tls"
  echo "-Dquarkus.http.ssl-port=$port"
  echo "-Dquarkus.http.insecure-requests=disabled"
  echo "-Dquarkus.http.ssl.certificate.key-store-file=$tls/server.p12"
  echo "-Dquarkus.http.ssl.certificate.key-store-file-type=PKCS12"
  echo "-Dquarkus.http.ssl.certificate.key-store-password=changeit"
  echo "-Dquarkus.http.ssl.certificate.trust-store-file=$tls/trust.p12"
  echo "-Dquarkus.http.ssl.certificate.trust-store-file-type=PKCS12"
  echo "-Dquarkus.http.ssl.certificate.trust-store-password=changeit"
}

# certificates: a CA; a server certificate for localhost and 127.0.0.1 signed by it (PKCS12);
# a client certificate signed by it (PEM, PKCS#8 key); the CA as the server's trust store.
certificates() {
  local tls="$state/tls"
  need openssl "the secure registry needs it for certificates"
  mkdir -p "$tls"
  (
    cd "$tls"
    server_certificate "driftwood test registry CA" server
    openssl pkcs12 -export -in server.pem -inkey server.key -out server.p12 -passout pass:changeit
    openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj "/CN=driftwood"
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 7
    rm -f trust.p12
    keytool -importcert -noprompt -alias ca -file ca.pem -keystore trust.p12 -storetype PKCS12 \
      -storepass changeit
  ) >"$state/openssl.log" 2>&1 || die "making certificates failed: $(tail -3 "$state/openssl.log")"
}

# await URL [CURL_ARGS...]: until the Confluent-compatible API at URL answers, or the
# process dies.
await() {
  local url=$1
  poll 600 0.1 answers "$@" || die "no registry answering at $url after 60 s; log in $state/registry.log"
  echo "$url"
}

# answers URL [CURL_ARGS...]: whether the Confluent-compatible API at URL answers (2 s at
# most); dies when the registry has exited.
answers() {
  local url=$1; shift
  alive "$state/pid" || die "the registry exited: $(tail -5 "$state/registry.log" 2>/dev/null)"
  curl -fsS -m 2 "$@" "$url/subjects" >/dev/null 2>&1
}

case "${1:-}" in
  install)
    install
    echo "Apicurio Registry $REGISTRY_VERSION in $cache" ;;
  start|run|secure-start)
    install
    port=${2:-8081}
    mkdir -p "$state"
    alive "$state/pid" && die "a registry already runs from $state (pid $(cat "$state/pid"))"
    if [ "$1" = secure-start ]; then
      certificates
      mapfile -t secure < <(secure_properties "$port")
      command_line 0 "${secure[@]}"
    else
      command_line "$port"
    fi
    [ "$1" = run ] && exec "${cmd[@]}"
    spawn "$state/pid" "$state/registry.log" "${cmd[@]}"
    if [ "$1" = secure-start ]; then
      tls="$state/tls"
      await "https://localhost:$port/apis/ccompat/v7" --cacert "$tls/ca.pem" \
        --cert "$tls/client.pem" --key "$tls/client.key"
    else
      await "http://127.0.0.1:$port/apis/ccompat/v7"
    fi ;;
  stop) stop_pidfile "$state/pid" TERM 300 ;;
  version) echo "$REGISTRY_VERSION" ;;
  *) sed -n '2,20p' "$0" >&2; exit 2 ;;
esac
