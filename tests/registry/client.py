"""An external client of driftwood through a schema registry, with Confluent's stock
serializers only: `produce` writes feature records with AvroSerializer (which registers the
schema under <topic>-value and frames each record with its id); `consume` reads predictions
with AvroDeserializer (which fetches the writer schema by the id in each frame) and prints
them as JSON lines. Run by tests/integration/schema_registry.rs.

    client.py produce BOOTSTRAP REGISTRY_URL TOPIC SCHEMA_FILE ROWS_CSV N
    client.py consume BOOTSTRAP REGISTRY_URL TOPIC N TIMEOUT_S
"""

import csv
import json
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext


def produce(bootstrap, registry_url, topic, schema_file, rows_csv, n):
    registry = SchemaRegistryClient({"url": registry_url})
    with open(schema_file) as f:
        schema = f.read()
    serializer = AvroSerializer(registry, schema)
    producer = Producer({"bootstrap.servers": bootstrap})
    with open(rows_csv) as f:
        rows = list(csv.DictReader(f))
    for i in range(n):
        record = {name: float(value) for name, value in rows[i % len(rows)].items()}
        record.update(id=f"py-{i}", event_time=1_700_000_000_000 + i, label=None)
        value = serializer(record, SerializationContext(topic, MessageField.VALUE))
        producer.produce(topic, value=value, key=f"py-{i}")
        producer.poll(0)
    if producer.flush(30) != 0:
        sys.exit("records left unsent")


def consume(bootstrap, registry_url, topic, n, timeout):
    registry = SchemaRegistryClient({"url": registry_url})
    deserializer = AvroDeserializer(registry)
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"py-reader-{uuid.uuid4()}",
        "auto.offset.reset": "earliest",
    })
    consumer.subscribe([topic])
    seen, deadline = 0, time.time() + timeout
    while seen < n and time.time() < deadline:
        message = consumer.poll(1.0)
        if message is None:
            continue
        if message.error():
            sys.exit(f"consumer error: {message.error()}")
        ctx = SerializationContext(topic, MessageField.VALUE)
        prediction = deserializer(message.value(), ctx)
        schema_id = int.from_bytes(message.value()[1:5], "big")
        # Timestamps come back as datetimes (timestamp-millis): printed as ISO text.
        print(json.dumps({"schema_id": schema_id, **prediction}, default=str), flush=True)
        seen += 1
    consumer.close()
    if seen < n:
        sys.exit(f"read {seen} of {n} predictions within {timeout} s")


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "produce":
        produce(*args[:5], int(args[5]))
    elif mode == "consume":
        consume(*args[:3], int(args[3]), float(args[4]))
    else:
        sys.exit(__doc__)
