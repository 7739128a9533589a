"""One traced message from an "orders" service to a "billing" service on a real Kafka broker.

Starts a single-node Kafka broker (jars from Maven Central, fetched by scripts/setup.sh), sends
one order with ``TracedProducer``, handles it with ``@traced_handler`` in a consumer group, and
prints the trace: one trace id across both services, the handler's log line carrying it.

Run with ``.venv/bin/python -m examples.quickstart``. The full demo, with the Collector, Jaeger
and Prometheus and four services, is ``bash scripts/demo.sh`` (``examples/pipeline``).
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from devstack.kafka import KafkaBroker, subscribe_once_visible
from kafka import KafkaConsumer, KafkaProducer
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kafkascope import (
    TextFormatter,
    TracedProducer,
    configure,
    render_waterfall,
    rows_from_spans,
    traced_handler,
)

log = logging.getLogger("billing")


def run(broker: KafkaBroker) -> int:
    """Send and handle one order; print its trace. Returns the process exit code."""
    topic = broker.create_topic("orders")
    spans = InMemorySpanExporter()
    orders = configure("orders", set_global=False, span_exporter=spans, metrics=False)
    billing = configure("billing", set_global=False, span_exporter=spans, metrics=False)

    producer = TracedProducer(
        KafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all"),
        tracer_provider=orders.tracer_provider,
    )
    order = {"order_id": "A-1001", "amount": 42.5}
    metadata = producer.send(topic, json.dumps(order).encode(), key=b"A-1001").get(timeout=30)
    producer.close(timeout=10)
    print(f"orders  -> sent {order} to {topic}[{metadata.partition}]@{metadata.offset}")

    @traced_handler(
        group="billing", server=broker.bootstrap_servers, tracer_provider=billing.tracer_provider
    )
    def charge(record: object) -> None:
        payload = json.loads(record.value)  # type: ignore[attr-defined]
        with billing.tracer_provider.get_tracer("billing").start_as_current_span("charge card"):
            time.sleep(0.005)
        log.info("charged %s for %.2f", payload["order_id"], payload["amount"])

    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap_servers,
        group_id="billing",
        auto_offset_reset="earliest",
    )
    # Subscribe once the consumer's own metadata has the topic: a group member that joins
    # before that is assigned none of its partitions.
    subscribe_once_visible(consumer, topic)
    handled = 0
    deadline = time.monotonic() + 30
    try:
        while not handled and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    charge(record)
                    handled += 1
    finally:
        consumer.close()
    orders.force_flush()
    billing.force_flush()
    if not handled:
        print("billing -> no message arrived within 30 s", file=sys.stderr)
        return 1
    finished = spans.get_finished_spans()
    trace_ids = {format(s.context.trace_id, "032x") for s in finished if s.context}
    print(f"\ntrace id: {', '.join(sorted(trace_ids))}  ({len(finished)} spans, 2 services)\n")
    print(render_waterfall(rows_from_spans(finished)))
    orders.shutdown()
    billing.shutdown()
    return 0 if len(trace_ids) == 1 else 1


def main() -> int:
    """Start a broker, run the demo, stop the broker."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(TextFormatter("billing -> %(message)s [trace_id=%(trace_id)s]"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    with tempfile.TemporaryDirectory(prefix="kafkascope-demo-") as tmp:
        print("starting Kafka (KRaft, single node) on 127.0.0.1 ...")
        broker = KafkaBroker.start(Path(tmp))
        try:
            print(f"Kafka ready at {broker.bootstrap_servers} in {broker.ready_seconds:.1f}s\n")
            return run(broker)
        finally:
            broker.stop()


if __name__ == "__main__":
    sys.exit(main())
