"""Servers for the scale tests: a three-node Kafka cluster, Jaeger, a Collector."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from devstack.cluster import KafkaCluster
from devstack.collector import Collector, collector_binary
from devstack.jaeger import Jaeger


@pytest.fixture(scope="session")
def collector_exe() -> Path:
    """otelcol-kafkascope (built by scripts/build_collector.sh if the cache lacks it)."""
    return collector_binary()


@pytest.fixture(scope="module")
def jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jaeger]:
    """A Jaeger v2 of this test module, on free 127.0.0.1 ports, stopped by its PID."""
    with Jaeger.start(tmp_path_factory.mktemp("jaeger")) as running:
        yield running


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """A three-node KRaft cluster for the session; each node stopped by its PID at the end."""
    with KafkaCluster.start(tmp_path_factory.mktemp("cluster")) as running:
        yield running
        print(running.log_tails())


@pytest.fixture(scope="module")
def collector(
    tmp_path_factory: pytest.TempPathFactory, jaeger: Jaeger, collector_exe: Path
) -> Iterator[Collector]:
    """One Collector of this test module (traces to ``jaeger``, metrics scraped directly)."""
    with Collector.start(
        tmp_path_factory.mktemp("collector"),
        jaeger_otlp_endpoint=jaeger.otlp_grpc_endpoint,
        binary=collector_exe,
    ) as running:
        yield running
