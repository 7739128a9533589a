"""The ``billing`` service: charges enriched orders in batches and dead-letters declined ones.

Each ``poll()`` is one ``@traced_batch_handler`` call (one span linked to every message); inside
it each order is charged in its own ``process_span``, a child of the enricher's send, so the
order's trace continues here. A declined order fails its process span (ERROR, ``error.type``)
and goes to ``{prefix}orders.dlq`` through ``kafkascope.dead_letter``, whose send span links to
that span.

The batch span records no metrics of its own (``metrics=False``): the per-order spans
count every message and time every charge, so counts and histograms match messages.

    python -m examples.pipeline.billing --bootstrap HOST:PORT [--prefix P] [--outcomes FILE]
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from devstack.kafka import subscribe_once_visible
from kafka import KafkaConsumer, KafkaProducer
from opentelemetry import trace

import kafkascope
from examples.pipeline.service import (
    CONSUMER_OPTIONS,
    DECLINED_CARD,
    Outcomes,
    PaymentDeclinedError,
    Stop,
    Topics,
    arguments,
    group_id,
    holds_all_partitions,
    log_to_stderr,
    ready,
)

SERVICE = "billing"
log = logging.getLogger(SERVICE)
tracer = trace.get_tracer("examples.pipeline.billing")


def authorize(order: dict[str, Any]) -> None:
    """Ask the (pretend) payment provider; raises for the card it always declines."""
    with tracer.start_as_current_span(
        "authorize payment", attributes={"order.id": order["order_id"]}
    ):
        time.sleep(0.002)
        if order["card"] == DECLINED_CARD:
            raise PaymentDeclinedError(f"card declined for order {order['order_id']}")


def batch_handler(
    producer: kafkascope.TracedProducer,
    topics: Topics,
    *,
    group: str,
    bootstrap: str,
    outcomes: Outcomes,
) -> Callable[[dict[Any, list[Any]]], None]:
    """The batch handler for one consumer, traced by ``@traced_batch_handler``."""

    def charge(record: Any) -> None:
        order = json.loads(record.value)
        with kafkascope.process_span(record, group=group, server=bootstrap):
            try:
                authorize(order)
            except PaymentDeclinedError as exc:
                kafkascope.dead_letter(producer, record, exc, topic=topics.dead_letter)
                log.warning(
                    "declined order %s, sent to %s: %s", order["order_id"], topics.dead_letter, exc
                )
                outcomes.write(order_id=order["order_id"], status="dead-lettered")
                raise
            log.info("charged order %s: %.2f", order["order_id"], order["amount"])
        outcomes.write(order_id=order["order_id"], status="charged")

    @kafkascope.traced_batch_handler(group=group, server=bootstrap, metrics=False)
    def handle(batch: dict[Any, list[Any]]) -> None:
        for records in batch.values():
            for record in records:
                try:
                    charge(record)
                except PaymentDeclinedError:
                    continue  # dead-lettered; the rest of the batch goes on

    return handle


def main() -> int:
    """Consume in batches until SIGTERM."""
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
        max_poll_records=50,
    )
    subscribe_once_visible(consumer, topics.enriched)
    kafkascope.observe_lag(consumer)
    producer = kafkascope.TracedProducer(
        KafkaProducer(bootstrap_servers=args.bootstrap, acks="all", linger_ms=5)
    )
    handle = batch_handler(
        producer, topics, group=group, bootstrap=args.bootstrap, outcomes=outcomes
    )
    said_ready = False
    try:
        while not stop:
            batch: dict[Any, list[Any]] = consumer.poll(timeout_ms=200)
            if not said_ready and holds_all_partitions(consumer):
                ready(SERVICE)
                said_ready = True
            if batch:
                handle(batch)
    finally:
        consumer.close()
        producer.flush(timeout=30)
        producer.close(timeout=10)
        outcomes.close()
        telemetry.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
