"""Soak: many messages through the real broker with full instrumentation.

Fills a topic, then consumes every record with an uninstrumented loop and with a fully
instrumented one (@traced_handler with traces, metrics and log correlation exporting to a
discarding exporter), and reports throughput ratio, RSS at start and end, exceptions, and
whether every consumed message was counted exactly once by kafkascope's consumed-messages
counter.

Run: .venv/bin/python -m benchmarks.soak [--messages 100000]
"""

from __future__ import annotations

import argparse
import logging
import resource
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.kafka import KafkaBroker, subscribe_once_visible
from kafka import KafkaConsumer, KafkaProducer
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.semconv._incubating.attributes import messaging_attributes as msg
from opentelemetry.semconv._incubating.metrics import messaging_metrics

from benchmarks.bench_handlers import tracer_provider
from kafkascope import MessageLogFilter, traced_handler

log = logging.getLogger("soak")


@dataclass(frozen=True)
class SoakResult:
    """What one soak pass measured."""

    messages: int
    rate: float
    rss_start_mb: float
    rss_end_mb: float
    exceptions: int
    distinct_offsets: int
    counted: int | None


def rss_mb() -> float:
    """Peak resident set size of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fill(bootstrap: str, topic: str, count: int) -> None:
    """Send ``count`` small records (uninstrumented: the producer is not what is measured)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=10, acks=1)
    payload = b'{"order_id": "A-1", "amount": 42.5}'
    for i in range(count):
        producer.send(topic, payload, key=str(i).encode())
    producer.flush(timeout=300)
    producer.close(timeout=10)


def counted(reader: InMemoryMetricReader, group: str) -> int:
    """kafkascope's consumed-messages total for ``group``."""
    data = reader.get_metrics_data()
    total = 0
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name != messaging_metrics.MESSAGING_CLIENT_CONSUMED_MESSAGES:
                    continue
                for point in metric.data.data_points:
                    attrs = point.attributes or {}
                    if attrs.get(msg.MESSAGING_CONSUMER_GROUP_NAME) == group:
                        total += int(point.value)  # type: ignore[union-attr]
    return total


def consume(bootstrap: str, topic: str, count: int, *, instrumented: bool) -> SoakResult:
    """Read ``count`` records in a fresh group; instrumented or bare."""
    group = f"soak-{uuid.uuid4().hex[:8]}"
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    handler = logging.Handler()
    handler.addFilter(MessageLogFilter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    offsets: set[tuple[int, int]] = set()
    exceptions = 0

    def body(record: Any) -> None:
        offsets.add((record.partition, record.offset))

    handle = (
        traced_handler(group=group, tracer_provider=tracer_provider(), meter_provider=meters)(body)
        if instrumented
        else body
    )
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=1000,
    )
    subscribe_once_visible(consumer, topic)
    start_rss = rss_mb()
    started = 0.0
    seen = 0
    deadline = time.monotonic() + 600
    try:
        while seen < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                if not started:
                    started = time.perf_counter()
                for record in records:
                    try:
                        handle(record)
                    except Exception:
                        exceptions += 1
                    seen += 1
        elapsed = time.perf_counter() - started
    finally:
        consumer.close(autocommit=False)
        log.removeHandler(handler)
    return SoakResult(
        messages=seen,
        rate=seen / elapsed if elapsed > 0 else 0.0,
        rss_start_mb=start_rss,
        rss_end_mb=rss_mb(),
        exceptions=exceptions,
        distinct_offsets=len(offsets),
        counted=counted(reader, group) if instrumented else None,
    )


def run(messages: int) -> tuple[SoakResult, SoakResult]:
    """Start a broker, fill a topic, soak bare then instrumented; print the figures."""
    with tempfile.TemporaryDirectory(prefix="kafkascope-soak-") as tmp:
        broker = KafkaBroker.start(Path(tmp), jvm_options=("-Xms1g", "-Xmx1g"))
        try:
            topic = broker.create_topic(f"soak-{uuid.uuid4().hex[:6]}")
            fill(broker.bootstrap_servers, topic, messages)
            bare = consume(broker.bootstrap_servers, topic, messages, instrumented=False)
            full = consume(broker.bootstrap_servers, topic, messages, instrumented=True)
        finally:
            broker.stop()
    print(f"soak: {messages} messages through a real broker")
    for name, result in (("uninstrumented", bare), ("kafkascope (all signals)", full)):
        print(
            f"  {name:26} {result.rate:9.0f} msg/s  RSS {result.rss_start_mb:.0f} -> "
            f"{result.rss_end_mb:.0f} MB  exceptions {result.exceptions}  "
            f"distinct offsets {result.distinct_offsets}  counted {result.counted}"
        )
    print(f"  throughput ratio {full.rate / bare.rate:.2f}")
    return bare, full


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args(argv)
    _, full = run(args.messages)
    ok = full.exceptions == 0 and full.counted == full.distinct_offsets == args.messages
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
