"""Consumer throughput on a real Kafka broker: uninstrumented, kafkascope, contrib.

Produces --messages records once, then reads them all with a fresh consumer group per run,
iterating the consumer (``for record in consumer``) the way services do. Runs alternate between
the variants; the best of each is reported, as messages/s and as a ratio to uninstrumented.

Run: .venv/bin/python -m benchmarks.bench_broker [--messages N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from devstack.kafka import KafkaBroker, subscribe_once_visible
from kafka import KafkaConsumer, KafkaProducer
from opentelemetry.instrumentation.kafka import KafkaInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from benchmarks.harness import bare, target_line, tracer_provider
from kafkascope import TracedProducer, traced_handler


def fill(broker: KafkaBroker, topic: str, count: int) -> None:
    """Send ``count`` traced records, as an instrumented upstream service would."""
    producer = TracedProducer(
        KafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=5, acks=1),
        tracer_provider=tracer_provider(),
    )
    payload = b'{"order_id": "A-1", "amount": 42.5}'
    for i in range(count):
        producer.send(topic, payload, key=str(i).encode())
    producer.flush(timeout=120)
    producer.close(timeout=10)


def read_all(
    broker: KafkaBroker, topic: str, count: int, handle: Callable[[Any], Any], timeout: float
) -> float:
    """Messages per second for one fresh group reading ``count`` records through ``handle``."""
    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap_servers,
        group_id=f"bench-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=int(timeout * 1000),
        max_poll_records=500,
    )
    subscribe_once_visible(consumer, topic)
    seen = 0
    started = 0.0
    try:
        for record in consumer:
            if seen == 0:
                started = time.perf_counter()  # the group join is not the handler's cost
            handle(record)
            seen += 1
            if seen == count:
                break
        elapsed = time.perf_counter() - started
    finally:
        consumer.close(autocommit=False)
    if seen < count:
        raise RuntimeError(f"read {seen} of {count} records")
    return (count - 1) / elapsed


def run_broker_benchmark(messages: int = 20_000, rounds: int = 2) -> dict[str, float]:
    """Start a broker, fill a topic, measure each variant; print and return messages/s."""
    instrumented = traced_handler(
        group="bench",
        tracer_provider=tracer_provider(),
        meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]),
    )(bare)
    contrib = KafkaInstrumentor()
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="kafkascope-bench-") as tmp:
        broker = KafkaBroker.start(Path(tmp), jvm_options=("-Xms1g", "-Xmx1g"))
        try:
            topic = broker.create_topic(f"bench-{uuid.uuid4().hex[:6]}")
            fill(broker, topic, messages)
            for _ in range(rounds):
                for name in ("uninstrumented", "kafkascope @traced_handler", "contrib"):
                    handle = instrumented if name.startswith("kafkascope") else bare
                    if name == "contrib":
                        contrib.instrument(tracer_provider=tracer_provider())
                    try:
                        rate = read_all(broker, topic, messages, handle, timeout=120)
                    finally:
                        if name == "contrib":
                            contrib.uninstrument()
                    best[name] = max(best.get(name, 0.0), rate)
        finally:
            broker.stop()
    base = best["uninstrumented"]
    print(f"\nReal broker, {messages} records, best of {rounds} per variant")
    print(f"{'variant':40} {'msg/s':>10} {'x uninstrumented':>17}")
    for name, rate in best.items():
        print(f"{name:40} {rate:10.0f} {rate / base:17.2f}")
    print(
        target_line(
            "kafkascope all signals / contrib, throughput",
            best["kafkascope @traced_handler"] / best["contrib"],
            0.9,
            at_least=True,
        )
    )
    return best


def main(argv: Sequence[str] | None = None) -> int:
    """Run the broker benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    run_broker_benchmark(args.messages, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
