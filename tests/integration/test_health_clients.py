"""observe_health against real confluent-kafka and aiokafka consumers on the real broker, asked
over real HTTP while their poll loops run, stop, or retry one message forever."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from devstack.kafka import KafkaBroker

from kafkascope import ConsumerHealth, observe_health
from tests.integration._health_probes import assert_no_progress_while_lag_grows, probe, probe_until
from tests.integration._kafka_clients import confluent_consumer, fill, new_group, producer

pytestmark = pytest.mark.integration


class ConfluentPollLoop:
    """The user's confluent-kafka poll loop on its own thread, until ``stop()``."""

    def __init__(
        self,
        consumer: Any,
        handle: Callable[[Any], object] = print,
        beat: Callable[[], None] | None = None,
    ) -> None:
        self.consumer, self.handle, self.beat = consumer, handle, beat
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.is_set():
            if self.beat is not None:
                self.beat()
            msg = self.consumer.poll(0.1)
            if msg is not None and msg.error() is None:
                self.handle(msg)

    def stop(self) -> float:
        self.stopped.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()
        return time.monotonic()


class Confluents:
    """The test's confluent-kafka consumers and loops: loops stopped, then consumers closed."""

    def __init__(self, servers: str) -> None:
        self.servers = servers
        self.consumers: list[Any] = []
        self.loops: list[ConfluentPollLoop] = []

    def consumer(self, topic: str) -> Any:
        self.consumers.append(confluent_consumer(self.servers, topic))
        return self.consumers[-1]

    def loop(self, consumer: Any, *args: Any, **kwargs: Any) -> ConfluentPollLoop:
        self.loops.append(ConfluentPollLoop(consumer, *args, **kwargs))
        return self.loops[-1]

    def close(self) -> None:
        for loop in self.loops:
            loop.stop()
        for consumer in self.consumers:
            with contextlib.suppress(RuntimeError):  # closed by the test already
                consumer.close()


@pytest.fixture
def confluents(kafka_broker: KafkaBroker) -> Iterator[Confluents]:
    made = Confluents(kafka_broker.bootstrap_servers)
    yield made
    made.close()


def _assert_stalled(health: ConsumerHealth, loop: ConfluentPollLoop, stalled_after: float) -> None:
    stopped = loop.stop()
    status, report = probe_until(health, lambda s, r: s != 200, timeout=10)
    assert status == 503, report
    assert time.monotonic() - stopped > stalled_after - 0.15  # the last poll began <= 0.1 s before
    [reason] = report["reasons"]
    assert reason.startswith("poll loop stalled: no poll for "), reason
    assert report["seconds_since_poll"] > stalled_after


def test_instrumented_confluent_consumer_is_healthy_while_polling_then_stalls(
    instrumented: None, confluents: Confluents, topic_factory: Callable[..., str]
):
    topic = topic_factory()
    fill(confluents.servers, topic, 3)
    found = confluents.consumer(topic)
    seen: list[Any] = []
    with observe_health(found, port=0, stalled_after=1.5, unassigned_after=30) as health:
        loop = confluents.loop(found, seen.append)  # no beat(): the instrumented poll beats
        status, report = probe_until(
            health, lambda s, r: s == 200 and len(seen) == 3 and r["assigned_partitions"] == 1
        )
        assert (status, len(seen), report["assigned_partitions"]) == (200, 3, 1), report
        assert report["reasons"] == []
        _assert_stalled(health, loop, 1.5)


def test_closing_an_instrumented_confluent_consumer_answers_503_consumer_closed(
    instrumented: None, confluents: Confluents, topic_factory: Callable[..., str]
):
    found = confluents.consumer(topic_factory())
    with observe_health(found, port=0) as health:
        loop = confluents.loop(found)
        assert probe_until(health, lambda s, r: s == 200)[0] == 200
        loop.stop()
        found.close()
        status, report = probe(health)
    assert (status, report["reasons"]) == (503, ["consumer closed"])


def test_plain_confluent_consumer_is_seen_through_beat_with_its_lag(
    confluents: Confluents, topic_factory: Callable[..., str]
):
    topic = topic_factory()
    fill(confluents.servers, topic, 5)
    found = confluents.consumer(topic)
    release = threading.Event()
    seen: list[Any] = []

    def hold_after_two(msg: Any) -> None:  # pauses after two; resumes once released
        seen.append(msg)
        if len(seen) == 2:
            found.pause(found.assignment())

    def turn() -> None:  # on the loop's thread: another thread's call would wait for the loop
        if release.is_set() and len(seen) == 2:
            found.resume(found.assignment())
        health.beat()

    with observe_health(found, port=0, stalled_after=1.5, unassigned_after=30) as health:
        loop = confluents.loop(found, hold_after_two, beat=turn)
        status, report = probe_until(health, lambda s, r: s == 200 and r["lag"] == 3)
        assert (status, report["lag"], len(seen)) == (200, 3, 2), report  # position 2 of 5
        assert report["assigned_partitions"] == 1
        release.set()
        status, report = probe_until(health, lambda s, r: len(seen) == 5 and r["lag"] == 0)
        assert (status, report["lag"], len(seen)) == (200, 0, 5), report
        _assert_stalled(health, loop, 1.5)


def test_plain_confluent_consumer_without_beat_says_how_polls_are_seen(
    confluents: Confluents, topic_factory: Callable[..., str]
):
    found = confluents.consumer(topic_factory())
    with observe_health(found, port=0, stalled_after=1.0, unassigned_after=1.0) as health:
        confluents.loop(found)  # polls, but nothing tells kafkascope
        status, report = probe_until(health, lambda s, r: len(r["reasons"]) == 2)
    assert status == 503
    unassigned, stalled = report["reasons"]
    assert unassigned.startswith("no partitions assigned for ")
    assert stalled.startswith("poll loop stalled: no poll for ")
    assert stalled.endswith(
        "(polls are seen only through beat() or kafkascope's instrumented Consumer)"
    )


def test_instrumented_confluent_consumer_retrying_forever_while_lag_grows_is_503(
    instrumented: None, confluents: Confluents, topic_factory: Callable[..., str]
):
    import confluent_kafka

    topic = topic_factory()
    fill(confluents.servers, topic, 1)
    found = confluents.consumer(topic)
    handled: list[int] = []

    def retry_forever(msg: Any) -> None:  # the handler fails, the loop seeks back to retry
        handled.append(msg.offset())
        found.seek(confluent_kafka.TopicPartition(msg.topic(), msg.partition(), msg.offset()))

    sent = producer(confluents.servers)
    try:
        with observe_health(found, port=0, no_progress_after=1.5, stalled_after=30) as health:
            confluents.loop(found, retry_forever)
            assert_no_progress_while_lag_grows(health, handled, lambda: sent.send(topic, b"more"))
    finally:
        sent.close()


async def _probe_until(
    health: ConsumerHealth, ok: Callable[[int, dict[str, Any]], bool], *, timeout: float = 20.0
) -> tuple[int, dict[str, Any]]:
    # urllib blocks: off the event loop, which must go on running the consumer
    return await asyncio.to_thread(probe_until, health, ok, timeout=timeout)


def test_aiokafka_consumer_is_healthy_while_its_task_polls_then_stalls(
    kafka_broker: KafkaBroker, topic_factory: Callable[..., str]
):
    import aiokafka

    topic = topic_factory()
    fill(kafka_broker.bootstrap_servers, topic, 3)

    async def scenario() -> tuple[int, dict[str, Any], float]:
        found = aiokafka.AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_broker.bootstrap_servers,
            group_id=new_group(),
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await found.start()
        seen: list[Any] = []
        hang = asyncio.Event()

        async def poll_loop() -> None:
            while True:
                for records in (await found.getmany(timeout_ms=100)).values():
                    seen.extend(records)
                if len(seen) == 3:
                    await hang.wait()  # a handler that never returns: no more getmany()

        try:
            with observe_health(found, port=0, stalled_after=1.5) as health:
                task = asyncio.create_task(poll_loop())
                status, report = await _probe_until(
                    health, lambda s, r: s == 200 and len(seen) == 3 and r["lag"] == 0
                )
                assert (status, len(seen)) == (200, 3), report
                assert report["assigned_partitions"] == 1
                stopped = time.monotonic()  # the loop hangs; the event loop and fetcher go on
                status, report = await _probe_until(health, lambda s, r: s != 200, timeout=10)
                task.cancel()
                return status, report, time.monotonic() - stopped
        finally:
            await found.stop()

    status, report, waited = asyncio.run(scenario())
    assert status == 503, report
    assert waited > 1.5 - 0.15
    [reason] = report["reasons"]
    assert reason.startswith("poll loop stalled: no poll for "), reason


def test_aiokafka_consumer_waiting_in_getone_is_not_stalled_and_closed_is_503(
    kafka_broker: KafkaBroker, topic_factory: Callable[..., str]
):
    import aiokafka

    topic = topic_factory()

    async def scenario() -> tuple[tuple[int, dict[str, Any]], tuple[int, dict[str, Any]]]:
        found = aiokafka.AIOKafkaConsumer(
            bootstrap_servers=kafka_broker.bootstrap_servers, auto_offset_reset="earliest"
        )
        found.assign([aiokafka.TopicPartition(topic, 0)])
        await found.start()
        try:
            with observe_health(found, port=0, stalled_after=1.0) as health:
                waiting = asyncio.create_task(found.getone())  # an empty topic: waits
                await asyncio.sleep(1.5)
                alive = await asyncio.to_thread(probe, health)
                waiting.cancel()
                await found.stop()
                closed = await asyncio.to_thread(probe, health)
        finally:
            await found.stop()
        return alive, closed

    (status, report), closed = asyncio.run(scenario())
    assert (status, report["reasons"], report["assigned_partitions"]) == (200, [], 1)
    assert report["seconds_since_poll"] < 1.0
    assert closed[0] == 503
    assert closed[1]["reasons"] == ["consumer closed"]
