"""The ``enricher`` service: each order from ``{prefix}orders``, handled in its own
``process_span``, gets its customer looked up (a nested span) and goes on to
``{prefix}orders.enriched`` through ``TracedProducer``: one trace from orders downstream.

    python -m examples.pipeline.enricher --bootstrap HOST:PORT [--prefix P] [--outcomes FILE]
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from typing import Any

from devstack.kafka import subscribe_once_visible
from kafka import KafkaConsumer, KafkaProducer
from opentelemetry import trace

import kafkascope
from examples.pipeline.service import (
    CONSUMER_OPTIONS,
    Outcomes,
    Stop,
    Topics,
    arguments,
    group_id,
    holds_all_partitions,
    log_to_stderr,
    ready,
)

SERVICE = "enricher"
TIERS = ("bronze", "silver", "gold")
log = logging.getLogger(SERVICE)
tracer = trace.get_tracer("examples.pipeline.enricher")


def lookup_customer(customer_id: str) -> dict[str, str]:
    """The customer's record: a stand-in for a database call, traced as its own span."""
    with tracer.start_as_current_span("lookup customer", attributes={"customer.id": customer_id}):
        time.sleep(0.003)
        return {"id": customer_id, "tier": TIERS[zlib.crc32(customer_id.encode()) % len(TIERS)]}


def main() -> int:
    """Consume, enrich and forward until SIGTERM."""
    stop = Stop()
    args = arguments(__doc__ or SERVICE)
    log_to_stderr(SERVICE)
    telemetry = kafkascope.configure(SERVICE, logs=True)
    topics = Topics.named(args.prefix)
    outcomes = Outcomes(args.outcomes)
    group = group_id(args.prefix, SERVICE)
    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=group,
        **CONSUMER_OPTIONS,
    )
    subscribe_once_visible(consumer, topics.orders)
    kafkascope.observe_lag(consumer)
    producer = kafkascope.TracedProducer(
        KafkaProducer(bootstrap_servers=args.bootstrap, acks="all", linger_ms=5)
    )
    said_ready = False
    try:
        while not stop:
            batch: dict[Any, list[Any]] = consumer.poll(timeout_ms=200)
            if not said_ready and holds_all_partitions(consumer):
                ready(SERVICE)
                said_ready = True
            for records in batch.values():
                for record in records:
                    with kafkascope.process_span(record, group=group, server=args.bootstrap):
                        order = json.loads(record.value)
                        order["customer"] = lookup_customer(order["customer_id"])
                        producer.send(topics.enriched, json.dumps(order).encode(), key=record.key)
                        log.info(
                            "enriched order %s: customer tier %s",
                            order["order_id"],
                            order["customer"]["tier"],
                        )
                    outcomes.write(order_id=order["order_id"], status="enriched")
    finally:
        consumer.close()
        producer.flush(timeout=30)
        producer.close(timeout=10)
        outcomes.close()
        telemetry.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
