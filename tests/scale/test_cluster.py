"""A traced pipeline on the three-node KRaft cluster while the leader of a partition is killed.

The topic has three partitions, replication factor 3 and min.insync.replicas=2; the producer
sends with acks=all. Mid-stream the node leading partition 0 is SIGKILLed by its PID. Then:
no message is lost; every trace is whole in Jaeger (its send span and one process span per
time the handler saw the message: at-least-once, a message handled twice shows two process
spans and counts twice); the Collector's metric counts equal what the handlers saw.
"""

from __future__ import annotations

import collections
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from devstack.cluster import KafkaCluster
from devstack.collector import Collector
from devstack.gateway import metric_sum
from devstack.jaeger import Jaeger
from devstack.kafka import subscribe_once_visible
from devstack.wait import wait_until
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError
from opentelemetry import trace

from kafkascope import Telemetry, TracedProducer, configure, traced_handler
from tests.scale._telemetry import spans_by_kind

pytestmark = pytest.mark.scale

MESSAGES = 240
KILL_AT = 80
PARTITIONS = 3


@pytest.fixture
def services(collector: Collector) -> Iterator[dict[str, Telemetry]]:
    run = uuid.uuid4().hex[:6]
    made = {
        name: configure(
            f"{name}-{run}",
            set_global=False,
            endpoint=collector.otlp_grpc_endpoint,
            protocol="grpc",
            export_interval_ms=500,
        )
        for name in ("orders", "billing")
    }
    yield made
    for telemetry in made.values():
        telemetry.shutdown(timeout_millis=5_000)


@pytest.fixture
def killed(cluster: KafkaCluster) -> Iterator[list[int]]:
    """Node ids the test killed; started again afterwards so the cluster is whole."""
    ids: list[int] = []
    yield ids
    for node_id in ids:
        cluster.node(node_id).restart(timeout=90)


def test_no_message_lost_and_every_trace_whole_when_a_partition_leader_is_killed(
    cluster: KafkaCluster,
    collector: Collector,
    jaeger: Jaeger,
    services: dict[str, Telemetry],
    killed: list[int],
) -> None:
    topic = f"cluster{uuid.uuid4().hex[:8]}.orders"
    cluster.create_topics({topic: PARTITIONS})
    orders, billing = services["orders"], services["billing"]
    handled: collections.Counter[int] = collections.Counter()
    traces: dict[int, set[str]] = collections.defaultdict(set)
    commit_failures: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    @traced_handler(
        group="billing",
        tracer_provider=billing.tracer_provider,
        meter_provider=billing.meter_provider,
    )
    def bill(record) -> None:
        trace_id = format(trace.get_current_span().get_span_context().trace_id, "032x")
        with lock:
            handled[int(record.value)] += 1
            traces[int(record.value)].add(trace_id)

    def consume() -> None:
        consumer = KafkaConsumer(
            bootstrap_servers=cluster.bootstrap_servers,
            group_id=f"billing-{topic}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="billing",
        )
        try:
            subscribe_once_visible(consumer, topic)
            while not stop.is_set():
                batches = consumer.poll(timeout_ms=200)
                for records in batches.values():
                    for record in records:
                        bill(record)
                if batches:
                    try:
                        consumer.commit()
                    except KafkaError as exc:  # coordinator moved: these may come again
                        commit_failures.append(type(exc).__name__)
        finally:
            consumer.close()

    consumer_thread = threading.Thread(target=consume, name="billing")
    consumer_thread.start()
    raw = KafkaProducer(
        bootstrap_servers=cluster.bootstrap_servers,
        acks="all",
        retries=50,
        retry_backoff_ms=200,
        request_timeout_ms=10_000,
        linger_ms=5,
    )
    producer = TracedProducer(
        raw, tracer_provider=orders.tracer_provider, meter_provider=orders.meter_provider
    )
    victim = cluster.leader_of(topic, 0)
    futures = []
    try:
        for i in range(MESSAGES):
            if i == KILL_AT:
                cluster.node(victim).kill()
                killed.append(victim)
            futures.append(producer.send(topic, str(i).encode(), key=str(i).encode()))
            time.sleep(0.01)
        producer.flush(timeout=60)
        for future in futures:
            future.get(timeout=60)  # acks=all from 2 of 3 replicas: every send succeeded
        wait_until(
            lambda: len(handled) == MESSAGES, 90, f"all {MESSAGES} messages handled", interval=0.2
        )
    finally:
        stop.set()
        consumer_thread.join(timeout=30)
        raw.close(timeout=10)
    assert cluster.leader_of(topic, 0) != victim
    assert set(handled) == set(range(MESSAGES))  # no message lost

    for telemetry in services.values():
        telemetry.tracer_provider.force_flush()
        telemetry.meter_provider.force_flush()
    twice = {i: n for i, n in handled.items() if n > 1}
    for i in range(MESSAGES):
        (trace_id,) = traces[i]  # every copy of a message continues the same trace
        kinds = spans_by_kind(jaeger, trace_id, min_spans=1 + handled[i])
        assert kinds == {"producer": 1, "consumer": handled[i]}, (i, kinds)

    total = sum(handled.values())
    print(
        f"[cluster] killed node {victim} (leader of partition 0) at message {KILL_AT}; "
        f"{MESSAGES} messages, {total} handler calls, {len(twice)} handled more than once; "
        f"commit failures: {collections.Counter(commit_failures)}"
    )

    def counted(name: str) -> float:
        return metric_sum(collector.scrape(), name, messaging_destination_name=topic)

    wait_until(
        lambda: counted("messaging_process_duration_seconds_count") >= total,
        60,
        "the Collector to count every handler call",
        interval=0.2,
    )
    assert counted("messaging_process_duration_seconds_count") == total
    assert counted("messaging_client_sent_messages_total") == MESSAGES
