"""An unmodified kafka-python producer: no kafkascope, no OpenTelemetry imports.

Usage: plain_producer.py BOOTSTRAP TOPIC COUNT
"""

import json
import sys

from kafka import KafkaProducer


def main() -> None:
    bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for i in range(count):
        producer.send(topic, json.dumps({"order": i}).encode(), key=f"order-{i}".encode())
    producer.flush(timeout=30)
    producer.close(timeout=10)


if __name__ == "__main__":
    main()
