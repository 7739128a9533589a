"""Rebalances on the real broker: a second consumer joins a group and takes partitions from the
first; counters, gauges and logs say so, and the lag of the revoked partitions is not reported.
Once with listeners passed explicitly, once zero-code without any listener."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from devstack.kafka import KafkaBroker, subscribe_once_visible
from devstack.wait import wait_until
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

from kafkascope import observe_lag, traced_rebalance_listener
from kafkascope._core import semconv as sc
from kafkascope.instrumentor import KafkascopeInstrumentor
from tests.integration._zero_code import command, console_logs, console_objects, zero_code_env

pytestmark = pytest.mark.integration

PARTITIONS = 4
WAIT = 60.0
"""Upper bound of every wait for the group to settle, in seconds."""


class _Recording(ConsumerRebalanceListener):  # type: ignore[misc]
    """The application's own listener: must still see every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, set[int]]] = []

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.calls.append(("revoked", {tp.partition for tp in revoked}))

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.calls.append(("assigned", {tp.partition for tp in assigned}))


class PollLoop:
    """Polls one consumer on its own thread (a group member must poll to rejoin)."""

    def __init__(self, consumer: KafkaConsumer) -> None:
        self.consumer = consumer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.consumer.poll(timeout_ms=100, max_records=1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "the poll loop did not stop"


def _points(reader: InMemoryMetricReader, name: str) -> list[tuple[dict[str, Any], Any]]:
    data = reader.get_metrics_data()
    out: list[tuple[dict[str, Any], Any]] = []
    for rm in data.resource_metrics if data else ():
        for scope in rm.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        assert isinstance(point, NumberDataPoint)
                        out.append((dict(point.attributes or {}), point.value))
    return out


@pytest.fixture
def metrics() -> Iterator[tuple[InMemoryMetricReader, MeterProvider]]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    yield reader, provider
    provider.shutdown()


@pytest.mark.skipif(
    os.environ.get("KAFKASCOPE_TEST_FRESH_PROCESS") != "1",
    reason="run in an interpreter of its own by test_..._in_an_interpreter_of_their_own",
)
def test_a_second_member_takes_partitions_from_the_first_and_telemetry_says_so(
    kafka_broker: KafkaBroker,
    topic_factory: Callable[..., str],
    metrics: tuple[InMemoryMetricReader, MeterProvider],
    caplog: pytest.LogCaptureFixture,
) -> None:
    reader, provider = metrics
    topic = topic_factory(partitions=PARTITIONS)
    group = f"rebalance-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers, acks="all")
    try:
        for partition in range(PARTITIONS):
            for _ in range(5):
                producer.send(topic, b"m", partition=partition)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)

    def consumer(name: str) -> KafkaConsumer:
        return KafkaConsumer(
            bootstrap_servers=kafka_broker.bootstrap_servers,
            group_id=group,
            client_id=name,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            heartbeat_interval_ms=500,
            session_timeout_ms=10000,
        )

    first, second = consumer("first"), consumer("second")
    mine = _Recording()
    pollers: list[PollLoop] = []
    caplog.set_level(logging.INFO, logger="kafkascope.rebalance")
    try:
        observe_lag(first, meter_provider=provider)
        subscribe_once_visible(
            first,
            topic,
            listener=traced_rebalance_listener(mine, consumer=first, meter_provider=provider),
        )
        pollers.append(PollLoop(first))

        def lag_partitions() -> set[int]:
            return {
                int(str(attrs[sc.MESSAGING_DESTINATION_PARTITION_ID]))
                for attrs, _ in _points(reader, sc.CONSUMER_LAG)
                if attrs.get(sc.MESSAGING_DESTINATION_NAME) == topic
            }

        def assigned(client_id: str) -> int | None:
            for attrs, value in _points(reader, sc.ASSIGNED_PARTITIONS):
                if attrs.get(sc.MESSAGING_CLIENT_ID) == client_id:
                    return int(value)
            return None

        wait_until(
            lambda: lag_partitions() == set(range(PARTITIONS)),
            WAIT,
            "the first member's lag on every partition",
        )
        assert assigned("first") == PARTITIONS

        subscribe_once_visible(
            second,
            topic,
            listener=traced_rebalance_listener(consumer=second, meter_provider=provider),
        )
        pollers.append(PollLoop(second))
        wait_until(
            lambda: assigned("first") == PARTITIONS // 2 and assigned("second") == PARTITIONS // 2,
            WAIT,
            "the partitions split between the two members",
        )
        kind, kept = mine.calls[-1]
        assert kind == "assigned"
        wait_until(lambda: lag_partitions() == kept, WAIT, "the revoked partitions' lag to go")
    finally:
        for poller in pollers:
            poller.stop()
        first.close()
        second.close()

    # The application's listener saw the whole story (kafka-python also calls it with nothing
    # revoked at the first join): all four, all revoked when the second joined, two kept.
    story = [(kind, partitions) for kind, partitions in mine.calls if partitions]
    assert story[:3] == [
        ("assigned", set(range(PARTITIONS))),
        ("revoked", set(range(PARTITIONS))),
        ("assigned", kept),
    ]
    assert len(kept) == PARTITIONS // 2

    counts = {
        (attrs.get(sc.MESSAGING_CLIENT_ID), attrs[sc.REBALANCE_TYPE]): value
        for attrs, value in _points(reader, sc.REBALANCES)
        if attrs.get(sc.MESSAGING_CONSUMER_GROUP_NAME) == group
    }
    assert counts[("first", sc.REBALANCE_ASSIGNED)] >= 2
    assert counts[("first", sc.REBALANCE_REVOKED)] >= 1
    assert counts[("second", sc.REBALANCE_ASSIGNED)] >= 1

    logs = [r for r in caplog.records if r.name == "kafkascope.rebalance"]
    revoked = [r for r in logs if getattr(r, sc.REBALANCE_TYPE) == sc.REBALANCE_REVOKED]
    assert revoked, [r.getMessage() for r in logs]
    assert getattr(revoked[0], sc.MESSAGING_CONSUMER_GROUP_NAME) == group
    assert getattr(revoked[0], sc.CONSUMER_MEMBER_ID)  # the member that lost them
    assert getattr(revoked[0], sc.REBALANCE_PARTITIONS) == [
        f"{topic}-{p}" for p in range(PARTITIONS)
    ]


def _produce(servers: str, topic: str) -> None:
    producer = KafkaProducer(bootstrap_servers=servers, acks="all")
    try:
        for partition in range(PARTITIONS):
            for _ in range(5):
                producer.send(topic, b"m", partition=partition)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)


def _logged(records: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in records if r.get(sc.REBALANCE_TYPE) == kind]


FRESH_PROCESS = "KAFKASCOPE_TEST_FRESH_PROCESS"
"""Set in the interpreter that runs the two-member scenario on its own (see below)."""
TWO_MEMBERS = "test_zero_code_members_without_a_listener_record_the_partitions_moving_between_them"
LISTENED = "test_a_second_member_takes_partitions_from_the_first_and_telemetry_says_so"


def test_zero_code_members_without_a_listener_in_an_interpreter_of_their_own() -> None:
    """The two-member scenarios of this file, run by a pytest of its own. Late in the whole suite's
    long-lived process (many earlier tests' exporter and client threads alive), the in-process
    member's kafka-python 3.0.12 IO loop was starved past its 30 s session in 2 of 3 runs
    (kafka-python warned of 0.2-0.6 s loop steps, the member was gone at leave); in a fresh
    interpreter, as an application runs, it passed every time."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"{__file__}::{TWO_MEMBERS}",
            f"{__file__}::{LISTENED}",
        ],
        env={**os.environ, FRESH_PROCESS: "1"},
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert "2 passed" in done.stdout, done.stdout[-3000:]


@pytest.mark.skipif(
    os.environ.get(FRESH_PROCESS) != "1",
    reason="run in an interpreter of its own by the test above",
)
def test_zero_code_members_without_a_listener_record_the_partitions_moving_between_them(
    kafka_broker: KafkaBroker,
    topic_factory: Callable[..., str],
    metrics: tuple[InMemoryMetricReader, MeterProvider],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    reader, provider = metrics
    topic = topic_factory(partitions=PARTITIONS)
    group = f"rebalance-zero-{uuid.uuid4().hex[:8]}"
    _produce(kafka_broker.bootstrap_servers, topic)
    stop, out_path, err_path = tmp_path / "stop", tmp_path / "second.out", tmp_path / "second.err"
    caplog.set_level(logging.INFO, logger="kafkascope.rebalance")
    KafkascopeInstrumentor().instrument(meter_provider=provider)
    first = KafkaConsumer(
        bootstrap_servers=kafka_broker.bootstrap_servers,
        group_id=group,
        client_id="first",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        heartbeat_interval_ms=500,
        session_timeout_ms=30000,
    )
    poller: PollLoop | None = None
    second: subprocess.Popen[bytes] | None = None
    try:
        subscribe_once_visible(first, topic)  # no listener: zero-code installs none
        assert first._subscription.rebalance_listener is None
        poller = PollLoop(first)

        def lag_partitions() -> set[int]:
            return {
                int(str(attrs[sc.MESSAGING_DESTINATION_PARTITION_ID]))
                for attrs, _ in _points(reader, sc.CONSUMER_LAG)
                if attrs.get(sc.MESSAGING_DESTINATION_NAME) == topic
            }

        def assigned() -> int | None:
            for attrs, value in _points(reader, sc.ASSIGNED_PARTITIONS):
                if attrs.get(sc.MESSAGING_CLIENT_ID) == "first":
                    return int(value)
            return None

        wait_until(
            lambda: assigned() == PARTITIONS, WAIT, "the first member to hold every partition"
        )
        wait_until(
            lambda: lag_partitions() == set(range(PARTITIONS)),
            WAIT,
            "the first member's lag on every partition",
        )

        # The second member is another service, unmodified, under opentelemetry-instrument.
        # Files, not pipes: its console exporters print more than a pipe buffers.
        with out_path.open("w") as out, err_path.open("w") as err:
            second = subprocess.Popen(
                command("plain_member.py", kafka_broker.bootstrap_servers, topic, group, str(stop)),
                env=zero_code_env("second"),
                stdout=out,
                stderr=err,
            )
        wait_until(
            lambda: assigned() == PARTITIONS // 2,
            WAIT,
            "the first member to give up half its partitions",
        )
        kept = {tp.partition for tp in first.assignment()}
        assert len(kept) == PARTITIONS // 2
        wait_until(lambda: lag_partitions() == kept, WAIT, "the revoked partitions' lag to go")
    finally:
        stop.touch()
        if second is not None:
            try:
                second.wait(timeout=90)
            except subprocess.TimeoutExpired:
                second.kill()
                raise
        if poller is not None:
            poller.stop()
        first.close()
        KafkascopeInstrumentor().uninstrument()
    printed, errors = out_path.read_text(), err_path.read_text()
    assert second is not None
    assert second.returncode == 0, f"the second member failed:\n{printed}\n{errors}"
    lost = [f"{topic}-{p}" for p in sorted(set(range(PARTITIONS)) - kept)]

    counts = {
        attrs[sc.REBALANCE_TYPE]: value
        for attrs, value in _points(reader, sc.REBALANCES)
        if attrs.get(sc.MESSAGING_CLIENT_ID) == "first"
        and attrs.get(sc.MESSAGING_CONSUMER_GROUP_NAME) == group
    }
    assert counts[sc.REBALANCE_ASSIGNED] >= 1
    assert counts[sc.REBALANCE_REVOKED] >= 1

    # In-process records are the first member's: it was assigned all, and lost what the
    # second one got.
    mine = [vars(r) for r in caplog.records if r.name == "kafkascope.rebalance"]
    assert _logged(mine, sc.REBALANCE_ASSIGNED)[0][sc.REBALANCE_PARTITIONS] == [
        f"{topic}-{p}" for p in range(PARTITIONS)
    ]
    first_revoked = _logged(mine, sc.REBALANCE_REVOKED)[0]
    assert set(lost) <= set(first_revoked[sc.REBALANCE_PARTITIONS])
    assert first_revoked[sc.MESSAGING_CONSUMER_GROUP_NAME] == group
    first_member = first_revoked[sc.CONSUMER_MEMBER_ID]
    assert first_member

    # The second member's records, from its console log exporter: it got what the first lost,
    # and gave them back when it closed.
    theirs = [
        dict(r["attributes"])
        for r in console_logs(console_objects(printed))
        if r["attributes"].get(sc.MESSAGING_CONSUMER_GROUP_NAME) == group
    ]
    got = _logged(theirs, sc.REBALANCE_ASSIGNED)
    assert got, errors
    assert got[0][sc.REBALANCE_PARTITIONS] == lost
    assert got[0][sc.CONSUMER_MEMBER_ID] not in (None, first_member)
    assert _logged(theirs, sc.REBALANCE_REVOKED)[-1][sc.REBALANCE_PARTITIONS] == lost
