#!/usr/bin/env bash
# `kafka-broker-api-versions.sh --bootstrap-server HOST:PORT` as compose's healthcheck runs it:
# exits 0 once a broker there answers a metadata request (5 s at most), through KafkaProbe
# (scripts/kafka/KafkaProbe.java). It does not list API versions as Kafka's tool does.
set -euo pipefail
[ "${1:-}" = --bootstrap-server ] && [ -n "${2:-}" ] || {
  echo "usage: kafka-broker-api-versions.sh --bootstrap-server HOST:PORT" >&2
  exit 2
}
exec java -cp "/opt/kafka/classes:/opt/kafka/libs/*" KafkaProbe ready "$2" 1 5
