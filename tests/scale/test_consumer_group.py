"""A consumer group that rebalances under load, on the three-node cluster.

Three member processes (tests/scale/apps/group_member.py) share a six-partition topic; one is
SIGKILLed by its PID mid-stream, then a fourth joins. Every message is handled at least once;
messages the killed member handled but had not committed are handled again by a survivor, and
their traces show the extra process span. The story of the assignments is read from the
members' own rebalance listeners (their event logs: each assignment with the lag the member saw
right after it), and the lag per member from kafkascope's ``kafkascope.consumer.lag`` gauge
through the Collector. A member whose rebalance does not end within 20 s (kafka-python 3.0.12
once left a group leader waiting forever for its SyncGroup response; see the app) starts over
with a new consumer; the test prints how often that happened.

What SIGKILL costs is stated, not hidden: spans and metric points the killed member had not
exported yet are lost with it; the exact checks are on what the survivors handled.
"""

from __future__ import annotations

import collections
import json
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from devstack._process import ManagedProcess
from devstack._support import REPO_ROOT
from devstack.cluster import KafkaCluster
from devstack.collector import Collector
from devstack.gateway import metric_samples, metric_sum
from devstack.jaeger import Jaeger
from devstack.wait import wait_until
from kafka import KafkaProducer

from kafkascope import TracedProducer, configure
from tests.scale._telemetry import spans_by_kind

pytestmark = pytest.mark.scale

PARTITIONS = 6
FIRST, SECOND, THIRD = 200, 300, 100  # before the kill, during it, after the fourth joined
MESSAGES = FIRST + SECOND + THIRD


class Member:
    def __init__(self, name: str, workdir: Path, argv: list[str]) -> None:
        self.name = name
        self.events_path = workdir / f"{name}.jsonl"
        self.process = ManagedProcess(
            name,
            [sys.executable, "-m", "tests.scale.apps.group_member", *argv, str(self.events_path)],
            log_path=workdir / f"{name}.log",
            env={"PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"},
            cwd=REPO_ROOT,
        )

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        try:
            lines = self.events_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        parsed = []
        for line in lines:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:  # a line being written
                continue
            if kind is None or event["event"] == kind:
                parsed.append(event)
        return parsed

    def assignment(self) -> set[int]:
        assigned = self.events("assigned")
        return set(assigned[-1]["partitions"]) if assigned else set()


@pytest.fixture
def group(tmp_path: Path, cluster: KafkaCluster, collector: Collector) -> Iterator[dict[str, Any]]:
    run = uuid.uuid4().hex[:6]
    topic = f"group{run}.orders"
    cluster.create_topics({topic: PARTITIONS})
    members: dict[str, Member] = {}

    def start(name: str) -> Member:
        argv = [
            cluster.bootstrap_servers,
            topic,
            f"billing-{run}",
            f"billing-{run}-{name}",
            collector.otlp_grpc_endpoint,
        ]
        members[name] = Member(name, tmp_path, argv)
        return members[name]

    yield {"topic": topic, "run": run, "start": start, "members": members}
    for member in members.values():
        member.process.stop()
        events = [e for e in member.events() if e["event"] != "handled"]
        handled = len(member.events("handled"))
        print(f"--- {member.name}: {handled} handled; other events {events}")
        print(member.process.log_tail(80))


def _settled(members: list[Member]) -> bool:
    """The members' latest assignments split the partitions between them, none left out."""
    owned = [m.assignment() for m in members]
    return all(owned) and sorted(p for parts in owned for p in parts) == list(range(PARTITIONS))


SESSION_TIMEOUT_S = 6.0  # the members' session_timeout_ms (apps/group_member.py)


class _SettledFor:
    """True once the members have shared the partitions, unchanged, for ``seconds``: a leader
    that kafka-python 3.0.12 leaves hanging after its SyncGroup (see apps/group_member.py)
    looks settled until the broker drops it one session timeout later."""

    def __init__(self, members: list[Member], seconds: float) -> None:
        self.members, self.seconds = members, seconds
        self.since: tuple[float, list[list[int]]] | None = None

    def __call__(self) -> bool:
        owned = [sorted(m.assignment()) for m in self.members]
        if not _settled(self.members):
            self.since = None
            return False
        now = time.monotonic()
        if self.since is None or self.since[1] != owned:
            self.since = (now, owned)
        return now - self.since[0] >= self.seconds


def test_every_message_handled_while_a_member_dies_and_another_joins(
    group: dict[str, Any], cluster: KafkaCluster, collector: Collector, jaeger: Jaeger
) -> None:
    topic, run, start = group["topic"], group["run"], group["start"]
    orders = configure(
        f"orders-{run}",
        set_global=False,
        endpoint=collector.otlp_grpc_endpoint,
        protocol="grpc",
        export_interval_ms=500,
    )
    raw = KafkaProducer(bootstrap_servers=cluster.bootstrap_servers, acks="all", linger_ms=5)
    producer = TracedProducer(
        raw, tracer_provider=orders.tracer_provider, meter_provider=orders.meter_provider
    )

    def produce(ids: range) -> None:
        for i in ids:
            producer.send(topic, str(i).encode(), key=str(i).encode())
        producer.flush(timeout=30)

    try:
        m1, m2, m3 = (start(name) for name in ("m1", "m2", "m3"))
        wait_until(
            _SettledFor([m1, m2, m3], SESSION_TIMEOUT_S + 2),
            90,
            "three members sharing the partitions for longer than a session timeout",
            interval=0.2,
        )
        produce(range(FIRST))
        wait_until(
            lambda: len(m1.events("handled")) >= 30, 60, "m1 to handle 30 messages", interval=0.2
        )
        m1.process.kill()
        produce(range(FIRST, FIRST + SECOND))
        m4 = start("m4")
        survivors = [m2, m3, m4]
        wait_until(
            lambda: _settled(survivors), 90, "m2, m3, m4 sharing the partitions", interval=0.2
        )
        produce(range(FIRST + SECOND, MESSAGES))

        def handled_ids() -> collections.Counter[int]:
            return collections.Counter(
                e["id"] for m in (m1, *survivors) for e in m.events("handled")
            )

        wait_until(
            lambda: len(handled_ids()) == MESSAGES, 120, f"all {MESSAGES} handled", interval=0.2
        )
    finally:
        raw.close(timeout=10)
        orders.shutdown(timeout_millis=5_000)

    # Lag per member: every survivor's gauge reads 0 on each partition it holds now. (Series
    # of partitions a member held before a rebalance stay exposed with their last value until
    # the exporter's metric_expiration.)
    final = {m.name: m.assignment() for m in survivors}

    def lag_now() -> dict[str, dict[int, list[float]]]:
        text = collector.scrape()
        return {
            m.name: {
                p: metric_samples(
                    text,
                    "kafkascope_consumer_lag",
                    job=f"billing-{run}-{m.name}",
                    messaging_destination_name=topic,
                    messaging_destination_partition_id=str(p),
                )
                for p in final[m.name]
            }
            for m in survivors
        }

    wait_until(
        lambda: all(v == [0.0] for parts in lag_now().values() for v in parts.values()),
        60,
        "each survivor's lag gauge to read 0 on every partition it holds",
        interval=0.2,
    )

    for m in survivors:
        m.process.stop()  # SIGTERM: flushes its spans and metrics
    counts = handled_ids()
    assert set(counts) == set(range(MESSAGES))  # every message handled at least once

    # The story of the assignments, from the members' own listeners.
    story = []
    for m in (m1, *survivors):
        for event in m.events("assigned"):
            lag = {int(p): n for p, n in event["lag"].items()}
            assert sorted(lag) == event["partitions"], event  # lag read for what it holds
            assert all(n >= 0 for n in lag.values()), event
            story.append((event["at"], m.name, event["partitions"], sum(lag.values())))
    story.sort()
    assert final["m4"], "the fourth member got no partition"
    assert len(m2.events("assigned")) >= 2  # rebalanced after the kill
    assert len(m3.events("assigned")) >= 2
    assert m1.events("handled"), "m1 was killed before it handled anything"

    by_survivors = collections.Counter(e["id"] for m in survivors for e in m.events("handled"))
    by_m1 = collections.Counter(e["id"] for e in m1.events("handled"))
    again = sorted(i for i in by_m1 if by_survivors[i])
    print("[group] assignments (member, partitions, lag right after):")
    for _, name, parts, lag_sum in story:
        print(f"[group]   {name}: {parts} lag {lag_sum}")
    print(
        f"[group] {MESSAGES} messages, {sum(counts.values())} handler calls; m1 handled "
        f"{sum(by_m1.values())} before its SIGKILL, {len(again)} of them again by a survivor"
    )

    # Traces: one send span, and a process span for every survivor's handling (plus those of
    # m1's handlings whose spans were exported before the kill).
    lost_m1_spans = 0
    for i in range(MESSAGES):
        kinds = spans_by_kind(jaeger, _trace_of(i, m1, survivors), min_spans=1 + by_survivors[i])
        assert kinds.get("producer") == 1, (i, kinds)
        consumer_spans = kinds.get("consumer", 0)
        assert by_survivors[i] <= consumer_spans <= by_survivors[i] + by_m1[i], (i, kinds)
        lost_m1_spans += by_survivors[i] + by_m1[i] - consumer_spans
    print(f"[group] process spans of m1 lost with its SIGKILL: {lost_m1_spans}")
    stuck = {m.name: len(m.events("rejoin_stuck")) for m in (m1, *survivors)}
    print(f"[group] members that started over after a stuck rebalance: {stuck}")

    # Metrics: the survivors' counts are exact.
    text = collector.scrape()
    for m in survivors:
        counted = metric_sum(
            text,
            "messaging_process_duration_seconds_count",
            job=f"billing-{run}-{m.name}",
            messaging_destination_name=topic,
        )
        assert counted == len(m.events("handled")), m.name


def _trace_of(i: int, m1: Member, survivors: list[Member]) -> str:
    traces = {e["trace"] for m in (m1, *survivors) for e in m.events("handled") if e["id"] == i}
    (trace_id,) = traces  # every handling of a message continues its one trace
    return str(trace_id)
