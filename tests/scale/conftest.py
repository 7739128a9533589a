"""Servers for the scale tests: Jaeger, the Collector binary; each test starts its own tier."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from devstack.collector import collector_binary
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
