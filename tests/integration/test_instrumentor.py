"""KafkascopeInstrumentor in-process on the real broker: spans around the application's loop
body, batch spans for poll(), suppression, clean uninstrument."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import kafka
import pytest
from devstack.wait import wait_until
from kafka import KafkaConsumer, KafkaProducer
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import SpanKind

from kafkascope._core import semconv as sc
from kafkascope.instrumentor import KafkascopeInstrumentor, take_over_from_contrib
from kafkascope.testing import assert_parent
from tests.integration import _kafka_clients as clients

pytestmark = pytest.mark.integration


@pytest.fixture
def instrumented() -> Iterator[KafkascopeInstrumentor]:
    instrumentor = KafkascopeInstrumentor()
    instrumentor.instrument()
    try:
        yield instrumentor
    finally:
        instrumentor.uninstrument()


def _consumer(bootstrap: str, topic: str, **configs) -> KafkaConsumer:
    return KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"g-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **configs,
    )


def test_loop_body_runs_inside_the_process_span(capotel, instrumented, kafka_broker, topic):
    clients.fill(kafka_broker.bootstrap_servers, topic, 2)
    consumer = _consumer(kafka_broker.bootstrap_servers, topic, consumer_timeout_ms=10_000)
    current = []
    for record in consumer:
        current.append(trace.get_current_span().get_span_context().span_id)
        if record.offset == 0:
            # the first span ended when the loop asked for the second record
            assert capotel.spans_named(f"process {topic}") == []
        else:
            assert len(capotel.spans_named(f"process {topic}")) == 1
            break
    consumer.close()
    sends = capotel.spans_named(f"send {topic}")
    processed = capotel.spans_named(f"process {topic}")
    assert len(processed) == 2
    assert current == [p.context.span_id for p in processed]
    for send, process in zip(sends, processed, strict=True):
        assert_parent(process, send)
        assert process.attributes[sc.SERVER_ADDRESS] == "127.0.0.1"
    assert not trace.get_current_span().get_span_context().is_valid


def test_the_loop_ending_on_timeout_ends_the_last_span(capotel, instrumented, kafka_broker, topic):
    clients.fill(kafka_broker.bootstrap_servers, topic, 1)
    consumer = _consumer(kafka_broker.bootstrap_servers, topic, consumer_timeout_ms=3_000)
    seen = [record.offset for record in consumer]
    assert seen == [0]
    assert len(capotel.spans_named(f"process {topic}")) == 1
    consumer.close()


def test_poll_opens_a_batch_span_until_commit_and_empty_polls_make_none(
    capotel, instrumented, kafka_broker, topic
):
    consumer = _consumer(kafka_broker.bootstrap_servers, topic)
    assert consumer.poll(timeout_ms=500) == {}
    clients.fill(kafka_broker.bootstrap_servers, topic, 3)
    got = 0
    sizes: list[int] = []
    for _ in range(40):
        batch = consumer.poll(timeout_ms=500)
        got += sum(len(r) for r in batch.values())
        if batch:
            sizes.append(sum(len(r) for r in batch.values()))
            assert trace.get_current_span().is_recording()
            consumer.commit()
            assert not trace.get_current_span().get_span_context().is_valid
        if got == 3:
            break
    consumer.close()
    assert got == 3
    # One span per poll that returned records, none for the empty ones (which, holding no
    # record, would be named plain "process": every consumer span is counted here).
    batches = [s for s in capotel.spans if s.kind is SpanKind.CONSUMER]
    assert [b.name for b in batches] == [f"process {topic}"] * len(sizes)
    assert [b.attributes[sc.MESSAGING_BATCH_MESSAGE_COUNT] for b in batches] == sizes
    assert [len(b.links) for b in batches] == sizes


def test_suppressed_instrumentation_creates_no_spans(capotel, instrumented, kafka_broker, topic):
    with suppress_instrumentation():
        clients.fill(kafka_broker.bootstrap_servers, topic, 1)
        consumer = _consumer(kafka_broker.bootstrap_servers, topic, consumer_timeout_ms=3_000)
        assert [r.offset for r in consumer] == [0]
        consumer.close()
    assert capotel.spans == []


def test_uninstrument_restores_the_client(capotel, kafka_broker, topic):
    instrumentor = KafkascopeInstrumentor()
    instrumentor.instrument()
    assert hasattr(vars(kafka.KafkaConsumer)["__next__"], "__wrapped__")
    instrumentor.uninstrument()
    for name in ("__next__", "poll", "commit", "close"):
        assert not hasattr(vars(kafka.KafkaConsumer)[name], "__wrapped__")
    assert not hasattr(vars(kafka.KafkaProducer)["send"], "__wrapped__")
    clients.fill(kafka_broker.bootstrap_servers, topic, 1)
    assert capotel.spans == []


def test_dependencies_name_the_supported_kafka_python_range():
    assert KafkascopeInstrumentor().instrumentation_dependencies() == (
        "kafka-python >= 2.1.0, < 4",
    )


def _load_beside_contrib(contrib_first: bool, **kwargs: Any) -> list[Any]:
    """kafkascope's and contrib's kafka-python instrumentors loaded as ``opentelemetry-instrument``
    does, in the given order, then its post-instrument hook; the instrumentors in that order."""
    from opentelemetry.instrumentation.kafka import KafkaInstrumentor

    ours, contrib = KafkascopeInstrumentor(), KafkaInstrumentor()
    order: list[Any] = [contrib, ours] if contrib_first else [ours, contrib]
    for instrumentor in order:
        instrumentor.instrument(**(kwargs if instrumentor is ours else {}))
    take_over_from_contrib()
    return order


def _unload(order: list[Any]) -> None:
    for instrumentor in reversed(order):
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()


@pytest.mark.parametrize("contrib_first", [True, False], ids=["contrib-first", "contrib-last"])
def test_taking_over_from_contrib_gives_one_send_and_one_process_span_per_message(
    capotel, kafka_broker, topic, contrib_first, span_timings
):
    order = _load_beside_contrib(contrib_first)
    try:
        clients.fill(kafka_broker.bootstrap_servers, topic, 2)
        consumer = _consumer(kafka_broker.bootstrap_servers, topic, consumer_timeout_ms=10_000)
        records = [next(consumer), next(consumer)]
        consumer.close()
    finally:
        _unload(order)
    for record in records:
        assert [key for key, _ in record.headers] == ["traceparent", "kafkascope-pipeline-start"]
    assert sorted(s.name for s in capotel.spans) == [f"process {topic}"] * 2 + [f"send {topic}"] * 2
    sends = capotel.spans_named(f"send {topic}")
    processed = capotel.spans_named(f"process {topic}")
    for send, process in zip(sends, processed, strict=True):
        assert_parent(process, send)
        assert process.attributes[sc.PIPELINE_LATENCY] >= 0


@pytest.mark.parametrize("contrib_first", [True, False], ids=["contrib-first", "contrib-last"])
def test_kept_beside_contrib_one_traceparent_and_one_trace(
    capotel, kafka_broker, topic, contrib_first
):
    order = _load_beside_contrib(contrib_first, keep_contrib=True)
    try:
        clients.fill(kafka_broker.bootstrap_servers, topic, 1)
        consumer = _consumer(kafka_broker.bootstrap_servers, topic, consumer_timeout_ms=10_000)
        record = next(consumer)
        consumer.close()
    finally:
        _unload(order)
    assert [key for key, _ in record.headers] == ["traceparent"]
    names = sorted(s.name for s in capotel.spans)
    assert names == sorted(
        [f"send {topic}", f"{topic} send", f"{topic} receive", f"process {topic}"]
    )
    assert len({s.context.trace_id for s in capotel.spans}) == 1


def test_uninstrument_restores_confluent_and_aiokafka():
    import aiokafka
    import confluent_kafka

    original_consumer, original_producer = confluent_kafka.Consumer, confluent_kafka.Producer
    instrumentor = KafkascopeInstrumentor()
    instrumentor.instrument()
    try:
        assert issubclass(confluent_kafka.Consumer, original_consumer)
        assert confluent_kafka.Consumer is not original_consumer
        assert issubclass(confluent_kafka.Producer, original_producer)
        assert hasattr(vars(aiokafka.AIOKafkaConsumer)["__anext__"], "__wrapped__")
        assert hasattr(vars(aiokafka.AIOKafkaProducer)["send"], "__wrapped__")
    finally:
        instrumentor.uninstrument()
    assert confluent_kafka.Consumer is original_consumer
    assert confluent_kafka.Producer is original_producer
    for name in ("__anext__", "getone", "getmany", "commit", "stop"):
        assert not hasattr(vars(aiokafka.AIOKafkaConsumer)[name], "__wrapped__")
    assert not hasattr(vars(aiokafka.AIOKafkaProducer)["send"], "__wrapped__")


def test_zero_code_reports_time_lag_and_forwards_the_pipeline_stamp(
    capotel, instrumented, kafka_broker, topic, span_timings
):
    """An unmodified relay: its consumer's time lag, and its sends carrying the stamp of the
    chain's first send (the instrumented producer) on to the next topic."""
    clients.fill(kafka_broker.bootstrap_servers, topic, 3)
    kafka_broker.create_topic(f"{topic}.out")
    consumer = _consumer(kafka_broker.bootstrap_servers, topic, consumer_timeout_ms=10_000)
    relay = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers)
    forwarded = []
    try:
        for record in consumer:
            if record.offset == 0:
                # one processed, two waiting: the time lag is the processed record's age
                consumer_lag = capotel.time_lag(topic, 0)
                assert 0.0 <= consumer_lag < 30.0
                age = time.time() - record.timestamp / 1000
                assert consumer_lag == pytest.approx(age, abs=1.0)
            relay.send(f"{topic}.out", b"x").get(timeout=30)
            forwarded.append(dict(record.headers)["kafkascope-pipeline-start"])
            if record.offset == 2:
                break
        assert capotel.time_lag(topic, 0) == 0.0
    finally:
        relay.close(timeout=10)
        consumer.close()
    processed = capotel.spans_named(f"process {topic}")
    assert all(p.attributes[sc.PIPELINE_LATENCY] >= 0 for p in processed)
    relayed = capotel.spans_named(f"send {topic}.out")
    assert len(relayed) == 3
    assert all(stamp.endswith(f";{topic}".encode()) for stamp in forwarded)
    point = capotel.pipeline_latency(**{sc.PIPELINE_ORIGIN: topic})
    assert point.count == 3


def _poll_fresh(consumer: Any) -> None:
    """One more poll, handing out nothing, once the consumer's snapshot (what its lag gauges
    report, taken by the instrumented poll() at most once a second) is due for renewal."""
    from kafkascope._adapters.confluent import ConfluentSnapshot

    consumer.pause(consumer.assignment())
    time.sleep(ConfluentSnapshot.REFRESH)
    assert consumer.poll(0) is None
    consumer.resume(consumer.assignment())


def test_zero_code_time_lag_of_confluent_and_aiokafka_consumers(
    capotel, instrumented, kafka_broker, topic
):
    """Unmodified confluent-kafka and aiokafka consumers under the instrumentor: while behind,
    the time lag is the age of the last record handed out; caught up, 0."""
    import asyncio

    import aiokafka
    import confluent_kafka

    clients.fill(kafka_broker.bootstrap_servers, topic, 3)
    servers = kafka_broker.bootstrap_servers
    confluent = confluent_kafka.Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": f"g-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        confluent.assign(
            [confluent_kafka.TopicPartition(topic, 0, confluent_kafka.OFFSET_BEGINNING)]
        )
        # In a list: a Message of an empty value has len() 0.
        (msg,) = wait_until(
            lambda: [m] if (m := confluent.poll(0.5)) is not None else [],
            30,
            "a confluent message",
            interval=0,  # poll() waits itself
        )
        assert msg.error() is None
        _poll_fresh(confluent)
        age = time.time() - msg.timestamp()[1] / 1000
        assert capotel.time_lag(topic, 0) == pytest.approx(age, abs=1.0)
        for _ in range(2):
            assert confluent.poll(10) is not None
        _poll_fresh(confluent)
        assert capotel.time_lag(topic, 0) == 0.0
    finally:
        confluent.close()
    capotel.clear()

    async def aio() -> None:
        consumer = aiokafka.AIOKafkaConsumer(
            bootstrap_servers=servers,
            group_id=f"g-{uuid.uuid4().hex[:6]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        consumer.assign([aiokafka.TopicPartition(topic, 0)])
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), 30)
            # getone() hands out one record of the fetched batch: two wait
            age = time.time() - record.timestamp / 1000
            assert capotel.time_lag(topic, 0) == pytest.approx(age, abs=1.0)
            for _ in range(2):
                await asyncio.wait_for(consumer.getone(), 30)
            assert capotel.time_lag(topic, 0) == 0.0
        finally:
            await consumer.stop()

    asyncio.run(aio())


def test_kafka_python_spans_carry_the_cluster_id_the_clients_already_hold(
    capotel, instrumented, kafka_broker, topic
):
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers, acks="all")
    producer.send(topic, b"first").get(timeout=30)  # the first send fetches the metadata
    producer.send(topic, b"second").get(timeout=30)
    producer.close(timeout=10)
    consumer = _consumer(kafka_broker.bootstrap_servers, topic, consumer_timeout_ms=10_000)
    records = [next(consumer), next(consumer)]
    consumer.close()
    assert [r.value for r in records] == [b"first", b"second"]
    cluster = kafka_broker.stored_cluster_id
    sends = [s for s in capotel.spans if s.name == f"send {topic}"]
    processed = [s for s in capotel.spans if s.name == f"process {topic}"]
    assert len(sends) == 2
    assert len(processed) == 2
    assert (sends[1].attributes or {}).get(sc.MESSAGING_KAFKA_CLUSTER_ID) == cluster
    assert {(s.attributes or {}).get(sc.MESSAGING_KAFKA_CLUSTER_ID) for s in processed} == {cluster}
