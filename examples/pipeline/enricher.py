"""The ``enricher`` service: each order from ``{prefix}orders``, handled in its own
``process_span``, gets its customer looked up (a nested span) and goes on to
``{prefix}orders.enriched`` through ``TracedProducer``: one trace from orders downstream.
An order held for review is forwarded ``REVIEW_SECONDS`` later from a timer thread that runs in
a copy of the handler's context, so its send still continues the trace and carries the
chain's pipeline stamp (its end-to-end latency downstream shows the wait).

    python -m examples.pipeline.enricher --bootstrap HOST:PORT [--prefix P] [--outcomes FILE]
"""

from __future__ import annotations

import contextvars
import json
import logging
import threading
import time
import zlib
from typing import Any

from devstack.kafka import subscribe_once_visible
from kafka import KafkaConsumer, KafkaProducer
from opentelemetry import trace

import kafkascope
from examples.pipeline.service import (
    CONSUMER_OPTIONS,
    REVIEW_SECONDS,
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
    held: list[threading.Timer] = []
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
                        body, key = json.dumps(order).encode(), record.key

                        def forward(body: bytes = body, key: Any = key) -> None:
                            producer.send(topics.enriched, body, key=key)

                        if order.get("review"):
                            # The handler's context (its span, the pipeline stamp) goes along.
                            timer = threading.Timer(
                                REVIEW_SECONDS, contextvars.copy_context().run, args=(forward,)
                            )
                            timer.start()
                            held.append(timer)
                        else:
                            forward()
                        log.info(
                            "enriched order %s: customer tier %s",
                            order["order_id"],
                            order["customer"]["tier"],
                        )
                    outcomes.write(order_id=order["order_id"], status="enriched")
    finally:
        consumer.close()
        for timer in held:
            timer.join(REVIEW_SECONDS + 5)
        producer.flush(timeout=30)
        producer.close(timeout=10)
        outcomes.close()
        telemetry.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
