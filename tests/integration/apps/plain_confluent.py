"""An unmodified confluent-kafka service: no kafkascope, no OpenTelemetry imports.

Usage: plain_confluent.py BOOTSTRAP TOPIC COUNT {produce|poll|consume}
"""

import logging
import sys
import time

from confluent_kafka import Consumer, Producer

log = logging.getLogger("ledger")


def main() -> None:
    bootstrap, topic, count, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    logging.getLogger().setLevel(logging.INFO)
    if mode == "produce":
        producer = Producer({"bootstrap.servers": bootstrap})
        for i in range(count):
            producer.produce(topic, f"entry {i}".encode(), key=f"k{i}".encode())
        if producer.flush(30) != 0:
            sys.exit("undelivered messages")
        return
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "ledger", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    handled = 0
    deadline = time.monotonic() + 30
    while handled < count and time.monotonic() < deadline:
        if mode == "poll":
            message = consumer.poll(0.5)
            messages = [message] if message is not None else []
        else:
            messages = consumer.consume(num_messages=count, timeout=0.5)
        for message in messages:
            if message.error() is None:
                value = message.value() or b""
                log.info("booked %s at offset %s", value.decode(), message.offset())
                handled += 1
    consumer.close()
    if handled != count:
        sys.exit(f"handled {handled} of {count}")


if __name__ == "__main__":
    main()
