"""An unmodified kafka-python group member without a rebalance listener: no kafkascope, no
OpenTelemetry imports. Iterates over its records until STOP_FILE exists (at most 60 s), then
closes.

Usage: plain_member.py BOOTSTRAP TOPIC GROUP STOP_FILE
"""

import logging
import os
import sys
import time

from kafka import KafkaConsumer


def main() -> None:
    bootstrap, topic, group, stop_file = sys.argv[1:5]
    logging.getLogger().setLevel(logging.INFO)
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id="second",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        heartbeat_interval_ms=500,
        session_timeout_ms=30000,
        consumer_timeout_ms=200,
    )
    deadline = time.monotonic() + 60
    while not os.path.exists(stop_file) and time.monotonic() < deadline:
        for _ in consumer:
            pass
    consumer.close()


if __name__ == "__main__":
    main()
