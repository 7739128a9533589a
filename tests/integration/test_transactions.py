"""Transactions on the real broker, for each client, through kafkascope's traced producers and
zero-code: a consume-transform-produce loop aborts the transaction of the first record and commits
the second's; a ``read_committed`` consumer downstream never processes the aborted record; the
``abort_transaction`` and ``commit_transaction`` spans say so and link to their sends and to the
process spans whose offsets they commit; ``kafkascope.producer.transactions`` counts both."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition as AioPartition
from devstack.kafka import KafkaBroker
from devstack.wait import wait_until
from kafka import KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata
from opentelemetry.sdk.trace import ReadableSpan

from kafkascope import (
    TracedAIOKafkaProducer,
    TracedConfluentProducer,
    TracedProducer,
    traced_handler,
)
from kafkascope._core import semconv as sc
from kafkascope.instrumentor import KafkascopeInstrumentor
from kafkascope.testing import Capotel
from tests.integration import _kafka_clients as clients
from tests.integration._kafka_clients import WAIT

pytestmark = pytest.mark.integration

MODES = ("traced producer", "zero-code")
ABORT, COMMIT = b"abort", b"commit"


@pytest.fixture
def mode(request: pytest.FixtureRequest) -> Iterator[str]:
    """``traced producer``: kafkascope's wrapper and ``@traced_handler``; ``zero-code``: the
    clients' own classes, instrumented."""
    name: str = request.param
    if name == "traced producer":
        yield name
        return
    instrumentor = KafkascopeInstrumentor()
    instrumentor.instrument()
    try:
        yield name
    finally:
        instrumentor.uninstrument()


def _source(servers: str, topic_factory: Callable[..., str]) -> str:
    """A topic holding the records ``abort`` then ``commit``."""
    source = topic_factory("txn-in")
    raw = clients.producer(servers)
    try:
        for value in (ABORT, COMMIT):
            raw.send(source, value).get(timeout=WAIT)
    finally:
        raw.close(timeout=10)
    return source


def _transform(mode: str, group: str, step: Callable[[Any], None]) -> Callable[[Any], None]:
    """``step`` as the handler of each record: decorated unless zero-code traces the loop."""
    return step if mode == "zero-code" else traced_handler(group=group)(step)


# ---------------------------------------------------------------- the three clients' loops
def _kafka_python_loop(mode: str, servers: str, source: str, sink: str, txn_id: str) -> None:
    group = clients.new_group("txn")
    consumer = clients.consumer(servers, source, group, consumer_timeout_ms=500)
    raw = KafkaProducer(bootstrap_servers=servers, transactional_id=txn_id, linger_ms=0)
    producer = raw if mode == "zero-code" else TracedProducer(raw)
    producer.init_transactions()
    done: list[bytes] = []

    def step(record: Any) -> None:
        producer.begin_transaction()
        producer.send(sink, record.value + b"-out")
        offsets = {
            TopicPartition(record.topic, record.partition): OffsetAndMetadata(record.offset + 1)
        }
        producer.send_offsets_to_transaction(offsets, group)
        if record.value == ABORT:
            producer.abort_transaction()
        else:
            producer.commit_transaction()
        done.append(record.value)

    handle = _transform(mode, group, step)

    def next_record() -> None:
        with contextlib.suppress(StopIteration):
            handle(next(consumer))

    try:
        wait_until(lambda: len(done) == 2, WAIT, f"2 transactions from {source}", step=next_record)
    finally:
        consumer.close()
        raw.close(timeout=10)


def _confluent_loop(mode: str, servers: str, source: str, sink: str, txn_id: str) -> None:
    import confluent_kafka  # the class the application gets: instrumented in zero-code mode
    from confluent_kafka import TopicPartition as ConfluentPartition

    group = clients.new_group("txn")
    consumer = clients.confluent_consumer(servers, source, group=group)
    config = {"bootstrap.servers": servers, "transactional.id": txn_id, "linger.ms": 0}
    raw = confluent_kafka.Producer(config)
    producer = (
        raw
        if mode == "zero-code"
        else TracedConfluentProducer(raw, server=servers, transactional_id=txn_id)
    )
    producer.init_transactions(WAIT)

    def step(msg: Any) -> None:
        producer.begin_transaction()
        producer.produce(sink, msg.value() + b"-out")
        positions = [ConfluentPartition(msg.topic(), msg.partition(), msg.offset() + 1)]
        producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), WAIT)
        if msg.value() == ABORT:
            producer.abort_transaction(WAIT)
        else:
            producer.commit_transaction(WAIT)

    handle = _transform(mode, group, step)
    try:
        for _ in range(2):
            handle(clients.poll_confluent(consumer, source))
    finally:
        consumer.close()
        producer.flush(WAIT)


class _AbortError(Exception):
    """Raised in a ``transaction()`` block to abort it."""


def _aiokafka_loop(mode: str, servers: str, source: str, sink: str, txn_id: str) -> None:
    async def run() -> None:
        group = clients.new_group("txn")
        consumer = AIOKafkaConsumer(
            source,
            bootstrap_servers=servers,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        raw = AIOKafkaProducer(bootstrap_servers=servers, transactional_id=txn_id)
        producer = raw if mode == "zero-code" else TracedAIOKafkaProducer(raw)
        await consumer.start()
        await producer.start()

        async def step(record: Any) -> None:
            with contextlib.suppress(_AbortError):
                async with producer.transaction():
                    await producer.send_and_wait(sink, record.value + b"-out")
                    offsets = {AioPartition(record.topic, record.partition): record.offset + 1}
                    await producer.send_offsets_to_transaction(offsets, group)
                    if record.value == ABORT:
                        raise _AbortError

        handle = step if mode == "zero-code" else traced_handler(group=group)(step)
        try:
            for _ in range(2):
                # Not wait_for(): its task would keep the zero-code process span to itself.
                async with asyncio.timeout(WAIT):
                    record = await consumer.getone()
                await handle(record)
        finally:
            await consumer.stop()
            await producer.stop()

    asyncio.run(run())


LOOPS = {
    "kafka-python": _kafka_python_loop,
    "confluent": _confluent_loop,
    "aiokafka": _aiokafka_loop,
}


# ---------------------------------------------------------------- what the tests read
def _read_committed(servers: str, sink: str) -> list[bytes]:
    """The values a ``read_committed`` consumer hands its handler, up to the committed record
    (the aborted one comes first in ``sink``)."""
    handled: list[bytes] = []
    consumer = clients.consumer(
        servers, sink, clients.new_group("downstream"), isolation_level="read_committed"
    )

    def poll() -> None:
        for records in consumer.poll(timeout_ms=500).values():
            handled.extend(record.value for record in records)

    try:
        wait_until(lambda: COMMIT + b"-out" in handled, WAIT, f"the commit from {sink}", step=poll)
    finally:
        consumer.close()
    return handled


def _linked(span: ReadableSpan, link_type: str) -> set[int]:
    return {
        link.context.span_id
        for link in span.links
        if (link.attributes or {}).get(sc.LINK_TYPE) == link_type
    }


def _process_span_of(capotel: Capotel, topic: str, offset: int) -> ReadableSpan:
    (found,) = [
        s
        for s in capotel.spans_named(f"process {topic}")
        if (s.attributes or {}).get(sc.MESSAGING_KAFKA_OFFSET) == offset
    ]
    return found


@pytest.fixture
def run_loop(
    kafka_broker: KafkaBroker, topic_factory: Callable[..., str]
) -> Callable[[str, str], tuple[str, str, str]]:
    """``run_loop(client, mode) -> (source, sink, transactional id)``."""

    def run(client: str, mode: str) -> tuple[str, str, str]:
        servers = kafka_broker.bootstrap_servers
        source = _source(servers, topic_factory)
        sink = topic_factory("txn-out")
        txn_id = f"txn-{uuid.uuid4().hex[:8]}"
        LOOPS[client](mode, servers, source, sink, txn_id)
        return source, sink, txn_id

    return run


CASES = [pytest.param(client, mode, id=f"{client}-{mode}") for client in LOOPS for mode in MODES]


@pytest.mark.parametrize(("client", "mode"), CASES, indirect=["mode"])
def test_a_read_committed_consumer_never_processes_the_aborted_transactions_record(
    capotel, kafka_broker: KafkaBroker, run_loop, client, mode
):
    _, sink, _ = run_loop(client, mode)
    assert _read_committed(kafka_broker.bootstrap_servers, sink) == [COMMIT + b"-out"]


@pytest.mark.parametrize(("client", "mode"), CASES, indirect=["mode"])
def test_the_abort_and_commit_spans_say_so_and_link_their_sends_and_offsets(
    capotel, run_loop, client, mode
):
    source, sink, txn_id = run_loop(client, mode)
    abort = capotel.span(sc.ABORT_TRANSACTION)
    commit = capotel.span(sc.COMMIT_TRANSACTION)
    sends = capotel.spans_named(f"send {sink}")
    assert len(sends) == 2
    assert {(s.attributes or {}).get(sc.TRANSACTION_ID) for s in sends} == {txn_id}
    for span, outcome in ((abort, sc.TRANSACTION_ABORTED), (commit, sc.TRANSACTION_COMMITTED)):
        attributes = span.attributes or {}
        assert attributes[sc.TRANSACTION_OUTCOME] == outcome
        assert attributes[sc.TRANSACTION_ID] == txn_id
        assert attributes[sc.MESSAGING_OPERATION_NAME] == span.name
        assert sc.ERROR_TYPE not in attributes
    first_send, second_send = sorted(sends, key=lambda s: s.start_time or 0)
    assert _linked(abort, sc.LINK_TRANSACTION_SEND) == {first_send.context.span_id}
    assert _linked(commit, sc.LINK_TRANSACTION_SEND) == {second_send.context.span_id}
    assert _linked(abort, sc.LINK_TRANSACTION_OFFSETS) == {
        _process_span_of(capotel, source, 0).context.span_id
    }
    assert _linked(commit, sc.LINK_TRANSACTION_OFFSETS) == {
        _process_span_of(capotel, source, 1).context.span_id
    }


@pytest.mark.parametrize(("client", "mode"), CASES, indirect=["mode"])
def test_the_transactions_counter_counts_one_committed_and_one_aborted(
    capotel, run_loop, client, mode
):
    run_loop(client, mode)
    for outcome in (sc.TRANSACTION_COMMITTED, sc.TRANSACTION_ABORTED):
        point = capotel.metric(sc.TRANSACTIONS, {sc.TRANSACTION_OUTCOME: outcome})
        assert point.value == 1
        assert point.attributes[sc.MESSAGING_SYSTEM] == sc.KAFKA


# ---------------------------------------------------------------- a failed end
def test_a_commit_that_fails_raises_unchanged_and_its_span_and_count_say_failed(
    capotel, kafka_broker: KafkaBroker
):
    servers = kafka_broker.bootstrap_servers
    raw = KafkaProducer(bootstrap_servers=servers, transactional_id=f"txn-{uuid.uuid4().hex[:8]}")
    producer = TracedProducer(raw)
    try:
        producer.init_transactions()
        with pytest.raises(KafkaError):
            producer.commit_transaction()  # no transaction was begun
    finally:
        raw.close(timeout=10)
    span = capotel.span(sc.COMMIT_TRANSACTION)
    attributes = span.attributes or {}
    assert attributes[sc.TRANSACTION_OUTCOME] == sc.TRANSACTION_FAILED
    assert attributes[sc.ERROR_TYPE] == "kafka.errors.KafkaError"
    assert [e.name for e in span.events] == ["exception"]
    point = capotel.metric(sc.TRANSACTIONS, {sc.TRANSACTION_OUTCOME: sc.TRANSACTION_FAILED})
    assert (point.value, point.attributes[sc.ERROR_TYPE]) == (1, "kafka.errors.KafkaError")


def test_a_confluent_commit_that_fails_has_librdkafkas_error_name(
    capotel, kafka_broker: KafkaBroker
):
    from confluent_kafka import KafkaException, Producer

    servers = kafka_broker.bootstrap_servers
    config = {"bootstrap.servers": servers, "transactional.id": f"txn-{uuid.uuid4().hex[:8]}"}
    producer = TracedConfluentProducer(Producer(config), server=servers)
    producer.init_transactions(WAIT)
    with pytest.raises(KafkaException):
        producer.commit_transaction(WAIT)  # no transaction was begun
    attributes = capotel.span(sc.COMMIT_TRANSACTION).attributes or {}
    assert attributes[sc.TRANSACTION_OUTCOME] == sc.TRANSACTION_FAILED
    assert attributes[sc.ERROR_TYPE] == "_STATE"
