"""An unmodified kafka-python consumer service that hands each order to a thread pool: no
kafkascope imports; its own span in the worker through the OpenTelemetry API only.

Each worker waits until the loop has moved past its record (the record's process span has
ended by then), then starts a ``charge card`` span and logs a line.

Usage: handoff_consumer.py BOOTSTRAP TOPIC GROUP COUNT
"""

import logging
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from kafka import KafkaConsumer
from opentelemetry import trace

log = logging.getLogger("billing")
tracer = trace.get_tracer("billing")


def charge(offset: int, loop_done: threading.Event) -> None:
    loop_done.wait(timeout=60)
    with tracer.start_as_current_span("charge card"):
        log.info("charged the order at offset %s", offset)


def main() -> None:
    bootstrap, topic, group, count = sys.argv[1:5]
    wanted = int(count)
    logging.getLogger().setLevel(logging.INFO)
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        consumer_timeout_ms=30_000,
    )
    loop_done = threading.Event()
    futures = []
    with ThreadPoolExecutor(max_workers=wanted) as pool:
        for record in consumer:
            futures.append(pool.submit(charge, record.offset, loop_done))
            if len(futures) == wanted:
                break
        consumer.close()
        loop_done.set()
        for future in futures:
            future.result()
    if len(futures) != wanted:
        sys.exit(f"handled {len(futures)} of {wanted}")


if __name__ == "__main__":
    main()
