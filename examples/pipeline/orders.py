"""The ``orders`` service: places orders on ``{prefix}orders`` with ``TracedProducer``.

Each order is placed in its own ``place order`` span, so it starts its own trace; the service
prints one JSON line per order on stdout with its trace id (the demo and the tests follow it).

    python -m examples.pipeline.orders --bootstrap HOST:PORT [--count N] [--rate R] [--first N]
"""

from __future__ import annotations

import json
import logging
import time

from kafka import KafkaProducer
from opentelemetry import trace

import kafkascope
from examples.pipeline.service import (
    DECLINED_CARD,
    Stop,
    Topics,
    arguments,
    declined,
    held_for_review,
    log_to_stderr,
)

SERVICE = "orders"
log = logging.getLogger(SERVICE)


def order(n: int) -> dict[str, object]:
    """Order number ``n``: the same every time, every fifth one with a card billing declines."""
    return {
        "order_id": f"ORD-{n:05d}",
        "customer_id": f"C-{n % 7:03d}",
        "amount": round(10 + (n * 7.31) % 90, 2),
        "card": DECLINED_CARD if declined(n) else f"4242-4242-4242-{n % 10_000:04d}",
        "review": held_for_review(n),
    }


def main() -> int:
    """Place ``--count`` orders (0: until SIGTERM) at ``--rate`` per second."""
    stop = Stop()
    args = arguments(
        __doc__ or SERVICE,
        ("--count", {"type": int, "default": 0, "help": "orders to place; 0 = until stopped"}),
        ("--rate", {"type": float, "default": 20.0, "help": "orders per second"}),
        ("--first", {"type": int, "default": 1, "help": "number of the first order"}),
    )
    log_to_stderr(SERVICE)
    telemetry = kafkascope.configure(SERVICE, logs=True)
    topics = Topics.named(args.prefix)
    tracer = trace.get_tracer("examples.pipeline.orders")
    producer = kafkascope.TracedProducer(
        KafkaProducer(bootstrap_servers=args.bootstrap, acks="all", linger_ms=5)
    )
    placed = 0
    started = time.monotonic()
    try:
        n = args.first
        while not stop and (args.count == 0 or placed < args.count):
            body = order(n)
            with tracer.start_as_current_span(
                "place order", attributes={"order.id": str(body["order_id"])}
            ) as span:
                producer.send(
                    topics.orders, json.dumps(body).encode(), key=str(body["order_id"]).encode()
                )
                log.info("placed order %s for %.2f", body["order_id"], body["amount"])
                trace_id = format(span.get_span_context().trace_id, "032x")
            print(
                json.dumps({"n": n, "order_id": body["order_id"], "trace_id": trace_id}),
                flush=True,
            )
            placed += 1
            n += 1
            pause = started + placed / args.rate - time.monotonic()
            if pause > 0 and stop.wait(pause):
                break
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)
        log.info("placed %d orders", placed)
        telemetry.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
