"""One member of the scaled consumer group (tests/scale/test_consumer_group.py), a process.

    python -m tests.scale.apps.group_member BOOTSTRAP TOPIC GROUP SERVICE OTLP_ENDPOINT EVENTS

Handles TOPIC's messages with ``@traced_handler`` (25 ms each: a group under load), commits
after every poll, reports its lag with ``observe_lag``, and appends JSON lines to EVENTS:
``{"event": "revoked", "partitions": [...]}`` from its rebalance listener,
``{"event": "assigned", "partitions": [...], "lag": {partition: messages}}`` after the poll
that completed a rebalance (lag = end offset - the group's committed offset, read from its own
client before it handles anything of the new assignment), and
``{"event": "handled", "id": ..., "partition": ..., "trace": ...}`` per message, and
``{"event": "rejoin_stuck", ...}`` when a rebalance did not end within REJOIN_LIMIT_S and the
member started over with a new consumer.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from typing import Any

from devstack.kafka import subscribe_once_visible
from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.errors import KafkaError
from opentelemetry import trace

from kafkascope import configure, observe_lag, traced_handler

REJOIN_LIMIT_S = 20.0  # a rebalance that takes longer than this is stuck (they take < 7 s here)


def main(argv: list[str]) -> int:
    bootstrap, topic, group, service, endpoint, events_path = argv
    # kafka-python's join/sync/heartbeat story goes to the member's log (a test app: a global
    # logging setup is its own business); a member that drops out of its group says why there.
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(threadName)s %(name)s %(message)s"
    )
    logging.getLogger("kafka.coordinator").setLevel(logging.INFO)
    telemetry = configure(
        service, set_global=False, endpoint=endpoint, protocol="grpc", export_interval_ms=500
    )
    events = open(events_path, "a", buffering=1)  # noqa: SIM115 - closed at exit
    running = True

    def write(event: dict[str, Any]) -> None:
        events.write(json.dumps(event) + "\n")

    def on_term(signum: int, frame: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, on_term)
    pending: list[Any] = []  # an assignment whose lag the main loop reads next
    revoked_at: list[float] = []  # set while a rebalance this member takes part in is open

    class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
        # Runs on kafka-python's IO thread, where blocking consumer calls are refused.
        def on_partitions_revoked(self, revoked: Any) -> None:
            revoked_at[:] = [time.monotonic()]
            write({"event": "revoked", "partitions": sorted(tp.partition for tp in revoked)})

        def on_partitions_assigned(self, assigned: Any) -> None:
            revoked_at.clear()
            pending[:] = [sorted(assigned, key=lambda tp: tp.partition)]

    def join() -> KafkaConsumer:
        joined = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group,
            client_id=service,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
            max_poll_records=20,
        )
        observe_lag(joined, group=group, meter_provider=telemetry.meter_provider)
        subscribe_once_visible(joined, topic, listener=Listener())
        return joined

    consumer = join()

    def report_assignment(parts: list[Any]) -> None:
        """The group's lag on each new partition: what this member takes over."""
        try:
            ends = consumer.end_offsets(parts, timeout_ms=5000) if parts else {}
            lag = {
                tp.partition: ends[tp] - (consumer.committed(tp, timeout_ms=5000) or 0)
                for tp in parts
            }
        except KafkaError:
            # Bounded: without a timeout these requests can wait for minutes on a broker that
            # is rebalancing or just lost a member, and the member then drops out of its
            # group. Asked again after the next poll.
            pending[:] = pending or [parts]
            return
        write(
            {
                "event": "assigned",
                "partitions": [tp.partition for tp in parts],
                "lag": lag,
                "at": time.time(),
            }
        )

    @traced_handler(
        group=group,
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
    )
    def handle(record: Any) -> None:
        time.sleep(0.025)
        trace_id = format(trace.get_current_span().get_span_context().trace_id, "032x")
        write(
            {
                "event": "handled",
                "id": int(record.value),
                "partition": record.partition,
                "trace": trace_id,
            }
        )

    write({"event": "started"})
    try:
        while running:
            if revoked_at and time.monotonic() - revoked_at[0] > REJOIN_LIMIT_S:
                # kafka-python 3.0.12, seen in 1 of ~3 whole-suite runs: the group's leader
                # sent its SyncGroup (the broker logged the assignment and the others got
                # theirs), the response never woke the client's join task, the member's
                # heartbeats stayed off and the broker dropped it; it polled on, in no
                # group, until stopped. A member that does not get back within the limit
                # starts over with a new consumer, as a supervisor restarting it would.
                write({"event": "rejoin_stuck", "seconds": REJOIN_LIMIT_S})
                revoked_at.clear()
                consumer.close(autocommit=False)
                consumer = join()
            batches = consumer.poll(timeout_ms=200)
            if pending:
                report_assignment(pending.pop())
            for records in batches.values():
                for record in records:
                    handle(record)
            if batches:
                try:
                    consumer.commit()
                except KafkaError as exc:  # a rebalance took the partitions: redelivered
                    write({"event": "commit_failed", "error": type(exc).__name__})
    finally:
        consumer.close()
        telemetry.shutdown(timeout_millis=5_000)
        events.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
