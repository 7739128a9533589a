"""An unmodified kafka-python consumer service: no kafkascope, no OpenTelemetry imports.

Usage: plain_consumer.py BOOTSTRAP TOPIC GROUP COUNT {iterate|poll}
"""

import json
import logging
import sys
import time

from kafka import KafkaConsumer

log = logging.getLogger("billing")


def main() -> None:
    bootstrap, topic, group, count, mode = sys.argv[1:6]
    wanted = int(count)
    logging.getLogger().setLevel(logging.INFO)
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        consumer_timeout_ms=30_000,
    )
    handled = 0
    if mode == "iterate":
        for record in consumer:
            log.info(
                "handled order %s at offset %s", json.loads(record.value)["order"], record.offset
            )
            handled += 1
            if handled == wanted:
                break
    else:
        deadline = time.monotonic() + 30
        while handled < wanted and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    log.info("handled order %s in a batch", json.loads(record.value)["order"])
                    handled += 1
            consumer.commit()
    consumer.close()
    if handled != wanted:
        sys.exit(f"handled {handled} of {wanted}")


if __name__ == "__main__":
    main()
