"""observe_health against a real kafka-python consumer on the real broker, asked over real HTTP
while its poll loop runs, stops, or retries one message forever."""

from __future__ import annotations

import http.client
import socket
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from devstack.kafka import KafkaBroker
from devstack.wait import wait_until
from kafka import KafkaConsumer

from kafkascope import ConsumerHealth, observe_health
from tests.integration._health_probes import assert_no_progress_while_lag_grows, probe, probe_until
from tests.integration._kafka_clients import consumer, new_group, producer

pytestmark = pytest.mark.integration


class PollLoop:
    """The user's poll loop, on its own thread, until ``stop()``."""

    def __init__(self, found: KafkaConsumer, handle: Callable[[Any], object] = print) -> None:
        self.consumer, self.handle = found, handle
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.is_set():
            for records in self.consumer.poll(timeout_ms=100).values():
                for record in records:
                    self.handle(record)

    def stop(self) -> float:
        self.stopped.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()
        return time.monotonic()


@pytest.fixture
def consumers() -> Iterator[list[KafkaConsumer]]:
    made: list[KafkaConsumer] = []
    yield made
    for found in made:
        found.close()


@pytest.fixture
def loops(consumers: list[KafkaConsumer]) -> Iterator[Callable[..., PollLoop]]:
    """Starts the test's poll loops; stops those still running before their consumers close
    (a loop left polling a closed consumer fails the next test from its thread)."""
    started: list[PollLoop] = []

    def start(found: KafkaConsumer, handle: Callable[[Any], object] = print) -> PollLoop:
        started.append(PollLoop(found, handle))
        return started[-1]

    yield start
    for loop in started:
        loop.stop()


def test_healthy_while_polling_then_503_once_the_poll_loop_stops(
    kafka_broker: KafkaBroker,
    topic_factory: Callable[..., str],
    consumers: list[KafkaConsumer],
    loops: Callable[..., PollLoop],
):
    topic = topic_factory()
    sent = producer(kafka_broker.bootstrap_servers)
    for i in range(3):
        sent.send(topic, f"m{i}".encode())
    sent.flush()
    sent.close()
    found = consumer(kafka_broker.bootstrap_servers, topic, new_group())
    consumers.append(found)
    seen: list[Any] = []
    with observe_health(found, port=0, stalled_after=1.5) as health:
        loop = loops(found, seen.append)
        # The report is read before ``seen``: it may predate the assignment of records seen.
        status, report = probe_until(
            health, lambda s, r: s == 200 and len(seen) == 3 and r["assigned_partitions"] == 1
        )
        assert (status, len(seen), report["assigned_partitions"]) == (200, 3, 1), report
        assert report["reasons"] == []
        stopped = loop.stop()
        status, report = probe_until(health, lambda s, r: s != 200, timeout=10)
        waited = time.monotonic() - stopped
    assert status == 503
    assert report["seconds_since_poll"] > 1.5
    assert waited > 1.5 - 0.15  # the loop's last poll began up to its 100 ms timeout earlier
    [reason] = report["reasons"]
    assert reason.startswith("poll loop stalled: no poll for ")
    assert report["healthy"] is False


def test_503_when_no_partition_is_assigned_for_too_long(
    kafka_broker: KafkaBroker, consumers: list[KafkaConsumer]
):
    found = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap_servers, group_id=new_group())
    consumers.append(found)
    found.subscribe([f"missing-{uuid.uuid4().hex[:8]}"])  # the broker creates no topic
    with observe_health(found, port=0, unassigned_after=1.5, stalled_after=30) as health:
        loop = PollLoop(found)
        try:
            first, _ = probe(health)
            status, report = probe_until(health, lambda s, r: s != 200, timeout=10)
        finally:
            loop.stop()
    assert first == 200  # not yet too long
    assert status == 503
    [reason] = report["reasons"]  # the loop still polls: only the assignment is wrong
    assert reason.startswith("no partitions assigned for ")
    assert report["assigned_partitions"] == 0


def test_503_when_a_message_is_retried_forever_while_the_lag_grows(
    kafka_broker: KafkaBroker, topic_factory: Callable[..., str], consumers: list[KafkaConsumer]
):
    topic = topic_factory()
    sent = producer(kafka_broker.bootstrap_servers)
    sent.send(topic, b"poison").get(timeout=10)
    group = new_group()
    found = consumer(kafka_broker.bootstrap_servers, topic, group, max_poll_records=1)
    consumers.append(found)
    handled: list[int] = []

    def retry_forever(record: Any) -> None:  # the handler fails, the loop seeks back to retry
        handled.append(record.offset)
        found.seek(_partition(record), record.offset)

    with observe_health(found, port=0, no_progress_after=1.5, stalled_after=30) as health:
        loop = PollLoop(found, retry_forever)
        try:
            assert_no_progress_while_lag_grows(health, handled, lambda: sent.send(topic, b"more"))
        finally:
            loop.stop()
            sent.close()


def _partition(record: Any) -> Any:
    from kafka import TopicPartition

    return TopicPartition(record.topic, record.partition)


def test_a_port_in_use_is_an_error_at_configuration(
    kafka_broker: KafkaBroker, consumers: list[KafkaConsumer]
):
    found = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap_servers, group_id="g-port")
    consumers.append(found)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError, match="in use"):
            observe_health(found, port=taken.getsockname()[1])


def test_a_beat_keeps_a_consumer_without_group_polling_alive(
    kafka_broker: KafkaBroker, topic_factory: Callable[..., str], consumers: list[KafkaConsumer]
):
    # Without group_id kafka-python keeps no poll time: only beat() says the loop is alive.
    from kafka import TopicPartition

    topic = topic_factory()
    found = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap_servers)
    consumers.append(found)
    found.assign([TopicPartition(topic, 0)])
    with observe_health(found, port=0, stalled_after=1.0) as health:
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            found.poll(timeout_ms=100)
            health.beat()
        status, report = probe(health)
        assert (status, report["reasons"]) == (200, [])
        time.sleep(1.2)
        status, report = probe(health)
    assert status == 503
    assert report["reasons"][0].startswith("poll loop stalled")


def test_503_when_a_rebalance_holds_a_member_without_partitions_too_long(
    kafka_broker: KafkaBroker, topic_factory: Callable[..., str], consumers: list[KafkaConsumer]
):
    """A member in an eager rebalance that does not end holds nothing, though kafka-python keeps
    its revoked partitions in the subscription state until the new assignment arrives."""
    topic = topic_factory(partitions=2)
    group = new_group()
    member = consumer(kafka_broker.bootstrap_servers, topic, group)
    # Stops polling once the group is stable: the broker then waits for it to rejoin until its
    # max.poll.interval.ms ends (its heartbeats keep it a member).
    silent = consumer(kafka_broker.bootstrap_servers, topic, group, max_poll_interval_ms=30_000)
    consumers.extend([silent, member])  # closed in this order: silent's leave ends the rebalance

    def poll_both() -> None:
        member.poll(timeout_ms=100)
        silent.poll(timeout_ms=100)

    wait_until(
        lambda: member.assignment() and silent.assignment(),
        30,
        "the two members to share the partitions",
        step=poll_both,
    )
    with observe_health(member, port=0, unassigned_after=2, stalled_after=30) as health:
        loop = PollLoop(member)
        try:
            before, _ = probe_until(health, lambda s, r: s == 200)
            joiner = consumer(kafka_broker.bootstrap_servers, topic, group)
            consumers.append(joiner)
            joining = PollLoop(joiner)
            try:
                status, report = probe_until(health, lambda s, r: s != 200, timeout=20)
            finally:
                joining.stop()
        finally:
            loop.stop()
    assert before == 200
    assert status == 503, report
    [reason] = report["reasons"]  # the member polls on: only its assignment is gone
    assert reason.startswith("no partitions assigned for "), reason
    assert reason.endswith(" (a rebalance in progress)"), reason
    assert report["assigned_partitions"] == 0


# ---------------------------------------------------------------- the endpoint's HTTP side
@pytest.fixture
def endpoint(kafka_broker: KafkaBroker, consumers: list[KafkaConsumer]) -> Iterator[ConsumerHealth]:
    """The endpoint of a fresh consumer (healthy for the first minute: nothing to poll yet)."""
    found = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap_servers)
    consumers.append(found)
    with observe_health(found, port=0) as health:
        yield health


def idle_connection(health: ConsumerHealth) -> socket.socket:
    """A client that connects and says nothing (a port scan, a stuck proxy, a telnet)."""
    return socket.create_connection(("127.0.0.1", health.port), timeout=5)


def test_probes_answer_while_an_idle_connection_is_held_open(endpoint: ConsumerHealth):
    with idle_connection(endpoint):
        status, report = probe(endpoint)  # gave up after urlopen's 5 s when single-threaded
    assert (status, report["reasons"]) == (200, [])


def test_head_is_answered_with_the_get_status_and_headers_and_no_body(endpoint: ConsumerHealth):
    connection = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=5)
    try:
        connection.request("HEAD", "/")
        head = connection.getresponse()
        body = head.read()
    finally:
        connection.close()
    assert head.status == 200
    assert head.getheader("Content-Type") == "application/json"
    assert int(head.getheader("Content-Length") or 0) > 0
    assert body == b""


def test_the_server_header_names_neither_python_nor_its_version(endpoint: ConsumerHealth):
    with urllib.request.urlopen(endpoint.url, timeout=5) as response:
        server = response.headers["Server"]
    assert server == "kafkascope"


def test_a_probe_whose_client_left_prints_nothing_on_stderr(
    endpoint: ConsumerHealth, capfd: pytest.CaptureFixture[str]
):
    # The sequence: a probe queued behind an idle connection gives up and leaves.
    idle = idle_connection(endpoint)
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=5) as abandoned:
        abandoned.sendall(b"GET / HTTP/1.0\r\n\r\n")
    idle.close()
    status, _ = probe(endpoint)
    endpoint.close()  # returns once every request has been answered or dropped
    assert status == 200
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert "Error" not in err


def test_close_ends_the_connections_still_open(endpoint: ConsumerHealth):
    with idle_connection(endpoint) as idle:
        probe(endpoint)  # answered, so the idle connection, queued first, was accepted too
        endpoint.close()
        assert idle.recv(1) == b""  # the server's side closed: end of stream
