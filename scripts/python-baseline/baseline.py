"""The Python stack driftwood replaces, measured on the same broker and input.

Consumes driftwood's Avro feature records with confluent-kafka, decodes them with fastavro,
scores them with a scikit-learn random forest trained like driftwood's bundled model (100
trees, depth 10, seed 42, the same data set), encodes predictions with fastavro and produces
them, storing offsets only after delivery (at-least-once, as driftwood). Two modes:

  single  one message at a time, as a request handler (FastAPI + scikit-learn) scores
  batch   micro-batches of up to 1,024 messages through one predict call

Prints one JSON line: records scored and records per second. `--mode create-topics` only
creates the two topics (3 partitions): brokers here do not create topics on first use.
"""

import argparse
import io
import json
import resource
import time
from pathlib import Path

import fastavro
import numpy as np
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def cpu_seconds() -> float:
    """User + system CPU time of this process, every thread (librdkafka's too), as driftwood
    bench reads it from /proc/<pid>/stat."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--input-topic", required=True)
    parser.add_argument("--output-topic", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--mode", choices=["create-topics", "single", "batch"], required=True)
    args = parser.parse_args()
    if args.mode == "create-topics":
        admin = AdminClient({"bootstrap.servers": args.bootstrap_servers})
        topics = [NewTopic(t, num_partitions=3) for t in (args.input_topic, args.output_topic)]
        for future in admin.create_topics(topics).values():
            future.result(30)
        return

    data = load_breast_cancer()
    names = [n.replace(" ", "_") for n in data.feature_names]
    model = RandomForestClassifier(n_estimators=100, max_depth=10, random_state=42)
    model.fit(data.data, data.target)
    classes = [int(c) for c in model.classes_]

    features = fastavro.parse_schema(json.loads((SCHEMAS / "features.avsc").read_text()))
    prediction = fastavro.parse_schema(json.loads((SCHEMAS / "prediction.avsc").read_text()))

    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap_servers,
            "group.id": f"python-baseline-{args.mode}-{time.time_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.offset.store": False,
        }
    )
    producer = Producer(
        {
            "bootstrap.servers": args.bootstrap_servers,
            "enable.idempotence": True,
            "linger.ms": 5,
        }
    )

    def store(message):
        def on_delivery(err, _):
            if err is None:
                consumer.store_offsets(message)

        return on_delivery

    def score(messages):
        records = [
            fastavro.schemaless_reader(io.BytesIO(m.value()), features, None) for m in messages
        ]
        rows = np.array([[r[n] for n in names] for r in records])
        probabilities = model.predict_proba(rows)
        now = int(time.time() * 1000)
        for message, record, p in zip(messages, records, probabilities):
            winner = int(np.argmax(p))
            out = io.BytesIO()
            fastavro.schemaless_writer(
                out,
                prediction,
                {
                    "id": record["id"],
                    "model_name": "breast-cancer",
                    "model_version": "sklearn",
                    "predicted_label": classes[winner],
                    "confidence": float(p[winner]),
                    "probabilities": [
                        {"label": c, "probability": float(q)} for c, q in zip(classes, p)
                    ],
                    "actual_label": record.get("label"),
                    "source_topic": message.topic(),
                    "source_partition": message.partition(),
                    "source_offset": message.offset(),
                    "event_time": record["event_time"],
                    "scored_at": now,
                },
            )
            producer.produce(
                args.output_topic, out.getvalue(), key=message.key(), on_delivery=store(message)
            )
        producer.poll(0)

    consumer.subscribe([args.input_topic])
    scored, started = 0, None
    batch = 1 if args.mode == "single" else 1024
    while scored < args.count:
        messages = [
            m for m in consumer.consume(num_messages=batch, timeout=1.0) if m.error() is None
        ]
        if not messages:
            continue
        if started is None:
            started, cpu_started = time.monotonic(), cpu_seconds()
        if args.mode == "single":
            for m in messages:
                score([m])
        else:
            score(messages)
        scored += len(messages)
    producer.flush(30)
    elapsed = time.monotonic() - started
    cpu = cpu_seconds() - cpu_started
    consumer.close()
    print(
        json.dumps(
            {
                "mode": args.mode,
                "records": scored,
                "seconds": round(elapsed, 3),
                "records_per_second": round(scored / elapsed, 1),
                "cpu_us_per_record": round(cpu * 1e6 / scored, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
