"""The lag gauges of confluent-kafka consumers, collected from the test's thread while another
thread polls them: collection must never wait for the poll loop.

confluent-kafka 2.16 makes a call into a ``Consumer`` from a second thread wait while the first
one polls it in a loop, so the gauges read a snapshot taken on the poll loop's thread.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from devstack.kafka import KafkaBroker
from devstack.wait import wait_until
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData

from kafkascope import observe_lag
from kafkascope._core import semconv as sc
from kafkascope.instrumentor import KafkascopeInstrumentor
from tests.integration._kafka_clients import confluent_consumer, producer

pytestmark = pytest.mark.integration

PARTITIONS = 3
PER_PARTITION = 10
HANDLED = 4
"""Records the loop handles from each partition before pausing it: the lag is then 6 each."""
BOUND = 2.0
"""Longest one collection may take, in seconds."""


class Metrics:
    """An SDK meter provider whose reader is collected on a helper thread, with a bound."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])

    def collect(self) -> MetricsData | None:
        """A collection, None when nothing at all was reported."""
        found: list[MetricsData | None] = []
        worker = threading.Thread(
            target=lambda: found.append(self.reader.get_metrics_data()), daemon=True
        )
        worker.start()
        worker.join(BOUND)
        assert not worker.is_alive(), f"collecting metrics took more than {BOUND}s"
        [data] = found
        return data

    def points(self, name: str, topic: str) -> dict[str, float]:
        """``{partition id or "-": value}`` of ``name`` for ``topic`` in a new collection."""
        out: dict[str, float] = {}
        data = self.collect()
        for rm in data.resource_metrics if data is not None else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name != name:
                        continue
                    for point in metric.data.data_points:
                        attrs = dict(point.attributes or {})
                        if attrs.get(sc.MESSAGING_DESTINATION_NAME) == topic:
                            key = str(attrs.get(sc.MESSAGING_DESTINATION_PARTITION_ID, "-"))
                            out[key] = point.value  # type: ignore[union-attr]
        return out

    def until(
        self, name: str, topic: str, wanted: Callable[[dict[str, float]], bool]
    ) -> dict[str, float]:
        """The points once ``wanted(points)``; a TimeoutError naming the last ones if not."""
        last: dict[str, float] = {}

        def found() -> dict[str, float] | None:
            last.clear()
            last.update(self.points(name, topic))
            return dict(last) if wanted(last) else None

        # (Never awaited empty here: an empty dict would read as not yet.)
        return wait_until(found, 30, lambda: f"{name} of {topic} as wanted (last {last})")


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    made = Metrics()
    yield made
    made.provider.shutdown()


@pytest.fixture
def instrumented(metrics: Metrics) -> Iterator[None]:
    instrumentor = KafkascopeInstrumentor()
    instrumentor.instrument(meter_provider=metrics.provider)
    try:
        yield
    finally:
        instrumentor.uninstrument()


def _filled_topic(broker: KafkaBroker) -> str:
    topic = broker.create_topic(f"confluent-lag-{uuid.uuid4().hex[:10]}", partitions=PARTITIONS)
    sent = producer(broker.bootstrap_servers)
    try:
        for partition in range(PARTITIONS):
            for i in range(PER_PARTITION):
                sent.send(topic, f"m{i}".encode(), partition=partition)
        sent.flush(timeout=30)
    finally:
        sent.close(timeout=10)
    return topic


class ConfluentPollLoop:
    """The application's poll loop on its own thread: handles ``HANDLED`` records of each
    partition, then pauses it (on the loop's thread, as confluent-kafka wants)."""

    def __init__(self, consumer: Any, beat: Callable[[], None] | None = None) -> None:
        self.consumer, self.beat = consumer, beat
        self.handled: dict[int, int] = {}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from confluent_kafka import TopicPartition

        while not self.stopped.is_set():
            msg = self.consumer.poll(0.1)
            if msg is not None and msg.error() is None:
                count = self.handled[msg.partition()] = self.handled.get(msg.partition(), 0) + 1
                if count == HANDLED:
                    self.consumer.pause([TopicPartition(msg.topic(), msg.partition())])
            if self.beat is not None:
                self.beat()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


@pytest.fixture
def loops() -> Iterator[list[ConfluentPollLoop]]:
    made: list[ConfluentPollLoop] = []
    yield made
    for loop in made:  # stopped before the consumer closes, even when the test failed
        loop.stop()
        with contextlib.suppress(RuntimeError):  # closed by the test already
            loop.consumer.close()


LAGGING = {str(p): float(PER_PARTITION - HANDLED) for p in range(PARTITIONS)}


def test_a_plain_confluent_consumer_without_beats_reports_no_lag_and_never_blocks_collection(
    metrics: Metrics, loops: list[ConfluentPollLoop], kafka_broker: KafkaBroker
) -> None:
    topic = _filled_topic(kafka_broker)
    consumer = confluent_consumer(kafka_broker.bootstrap_servers, topic)
    observer = observe_lag(consumer, group="g", meter_provider=metrics.provider)
    loops.append(ConfluentPollLoop(consumer))

    def no_lag_reported() -> None:
        assert metrics.points(sc.CONSUMER_LAG, topic) == {}
        time.sleep(0.1)

    wait_until(
        lambda: sum(loops[0].handled.values()) >= PARTITIONS * HANDLED,
        30,
        f"{HANDLED} records of each partition handled",
        step=no_lag_reported,
    )
    assert loops[0].handled == dict.fromkeys(range(PARTITIONS), HANDLED)
    assert metrics.points(sc.CONSUMER_LAG, topic) == {}
    observer.close()


def test_a_plain_confluent_consumer_that_beats_reports_its_lag_while_polled_elsewhere(
    metrics: Metrics, loops: list[ConfluentPollLoop], kafka_broker: KafkaBroker
) -> None:
    topic = _filled_topic(kafka_broker)
    consumer = confluent_consumer(kafka_broker.bootstrap_servers, topic)
    observer = observe_lag(consumer, group="g", meter_provider=metrics.provider)
    loop = ConfluentPollLoop(consumer, beat=observer.beat)
    loops.append(loop)
    assert metrics.until(sc.CONSUMER_LAG, topic, lambda p: p == LAGGING) == LAGGING
    assert loop.handled == dict.fromkeys(range(PARTITIONS), HANDLED)
    loop.stop()
    consumer.close()
    assert metrics.points(sc.CONSUMER_LAG, topic) == LAGGING  # the last snapshot, not asked
    observer.close()  # what a plain consumer's loop does as it closes the consumer
    assert metrics.points(sc.CONSUMER_LAG, topic) == {}
    assert metrics.points(sc.CONSUMER_TIME_LAG, topic) == {}


def test_zero_code_confluent_consumer_reports_lag_and_assignment_while_polled_elsewhere(
    metrics: Metrics, instrumented: None, loops: list[ConfluentPollLoop], kafka_broker: KafkaBroker
) -> None:
    topic = _filled_topic(kafka_broker)
    consumer = confluent_consumer(kafka_broker.bootstrap_servers, topic)
    loop = ConfluentPollLoop(consumer)  # no beat: the instrumented poll() takes the snapshot
    loops.append(loop)
    assert metrics.until(sc.CONSUMER_LAG, topic, lambda p: p == LAGGING) == LAGGING
    assert metrics.points(sc.ASSIGNED_PARTITIONS, topic) == {"-": PARTITIONS}
    loop.stop()
    consumer.close()
    assert metrics.points(sc.CONSUMER_LAG, topic) == {}
    assert metrics.points(sc.ASSIGNED_PARTITIONS, topic) in ({}, {"-": 0})
