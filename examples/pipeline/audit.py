"""The ``audit`` service: an UNMODIFIED kafka-python consumer (no kafkascope, no OpenTelemetry
import), traced only because it runs under ``opentelemetry-instrument``, which loads
kafkascope's instrumentor. It records every enriched order and every dead letter.

    opentelemetry-instrument python examples/pipeline/audit.py BOOTSTRAP PREFIX OUTCOMES
"""

import json
import logging
import signal
import sys
import time

from kafka import KafkaConsumer

log = logging.getLogger("audit")
stopping: list[bool] = []


def main() -> None:
    bootstrap, prefix, outcomes_path = sys.argv[1:4]
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s audit %(levelname)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    enriched, dead_letters = f"{prefix}orders.enriched", f"{prefix}orders.dlq"
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"{prefix}audit",
        auto_offset_reset="earliest",
        metadata_max_age_ms=2000,  # new topics: see examples/pipeline/service.py
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        consumer_timeout_ms=200,
    )
    # Subscribe once this consumer's own metadata lists both topics: a group member that joins
    # before that is assigned none of their partitions (see examples/pipeline/service.py).
    while not (
        consumer.partitions_for_topic(enriched) and consumer.partitions_for_topic(dead_letters)
    ):
        time.sleep(0.1)
    consumer.subscribe([enriched, dead_letters])
    said_ready = False
    with open(outcomes_path, "a", encoding="utf-8") as outcomes:
        while not stopping:
            for record in consumer:
                order = json.loads(record.value)
                reason = {
                    key: value.decode(errors="replace")
                    for key, value in record.headers
                    if "error" in key and value is not None
                }
                if record.topic == dead_letters:
                    log.warning("audited dead letter %s: %s", order["order_id"], reason)
                else:
                    log.info("audited order %s", order["order_id"])
                outcomes.write(json.dumps({"order_id": order["order_id"], "topic": record.topic}))
                outcomes.write("\n")
                outcomes.flush()
                if stopping:
                    break
            # Ready once every partition of both topics is ours, not merely some of them.
            wanted = {
                (topic, partition)
                for topic in (enriched, dead_letters)
                for partition in consumer.partitions_for_topic(topic) or ()
            }
            held = {(tp.topic, tp.partition) for tp in consumer.assignment()}
            if not said_ready and len(wanted) == 4 and wanted <= held:
                print("audit ready", flush=True)
                said_ready = True
    consumer.close()


if __name__ == "__main__":
    main()
