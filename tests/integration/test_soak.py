"""The soak of benchmarks/soak.py, short: every message counted once, nothing raised.
(Throughput and memory figures come from the benchmark, never asserted here.)"""

from __future__ import annotations

import uuid

import pytest
from benchmarks.soak import consume, fill

pytestmark = pytest.mark.integration


def test_short_soak_counts_every_message_exactly_once(kafka_broker):
    topic = kafka_broker.create_topic(f"soak-{uuid.uuid4().hex[:6]}", partitions=3)
    fill(kafka_broker.bootstrap_servers, topic, 3_000)
    result = consume(kafka_broker.bootstrap_servers, topic, 3_000, instrumented=True)
    assert result.exceptions == 0
    assert result.messages == result.distinct_offsets == 3_000
    assert result.counted == 3_000
