"""Fixtures backed by a real Apache Kafka broker (see devstack/kafka.py).

``kafka_broker`` starts one broker per test session (fetching its jars from Maven Central first
if they are not cached) and stops it at the end; ``topic`` and ``topic_factory`` create fresh
topics on it, so tests never share data.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator

import pytest
from devstack.kafka import KafkaBroker

from kafkascope.instrumentor import KafkascopeInstrumentor

_broker_log_key = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def kafka_broker(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[KafkaBroker]:
    """A running single-node Kafka broker for the whole session, on free 127.0.0.1 ports."""
    broker = KafkaBroker.start(tmp_path_factory.mktemp("kafka"))
    pytestconfig.stash[_broker_log_key] = str(broker.log_path)
    print(
        f"\n[kafka] broker {broker.bootstrap_servers} (pid {broker.pid}) ready in "
        f"{broker.ready_seconds:.1f}s; log {broker.log_path}"
    )
    try:
        yield broker
    finally:
        broker.stop()
        print(f"\n[kafka] broker stopped; log {broker.log_path}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name the session broker's log file at the end of the run."""
    log_path = terminalreporter.config.stash.get(_broker_log_key, None)
    if log_path:
        terminalreporter.write_line(f"[kafka] broker log: {log_path}")


def _unique_name(prefix: str) -> str:
    safe = re.sub(r"[^a-zA-Z0-9._-]+", "-", prefix).strip("-.")[:100] or "topic"
    return f"{safe}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def topic_factory(kafka_broker: KafkaBroker, request: pytest.FixtureRequest) -> Callable[..., str]:
    """``topic_factory(prefix=<test name>, partitions=1) -> name``: create a fresh topic."""

    def create(prefix: str | None = None, partitions: int = 1) -> str:
        name = _unique_name(prefix or request.node.name)
        return kafka_broker.create_topic(name, partitions=partitions)

    return create


@pytest.fixture
def topic(topic_factory: Callable[..., str]) -> str:
    """A fresh, empty topic with one partition, already visible in the broker's metadata."""
    return topic_factory()


@pytest.fixture
def instrumented() -> Iterator[None]:
    """kafkascope's zero-code instrumentation of all three clients, for one test."""
    instrumentor = KafkascopeInstrumentor()
    instrumentor.instrument()
    try:
        yield
    finally:
        instrumentor.uninstrument()
