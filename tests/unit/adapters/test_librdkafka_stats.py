"""librdkafka's statistics JSON (documents captured from confluent-kafka 2.16 on a real
broker) read as client statistics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kafkascope._adapters.librdkafka_stats import samples
from kafkascope._core import client_metrics as cm
from kafkascope._core import semconv as sc

DATA = Path(__file__).resolve().parents[1] / "data"
PRODUCER = (DATA / "librdkafka_stats_producer.json").read_text()
CONSUMER = (DATA / "librdkafka_stats_consumer.json").read_text()


def _values(text: str, metric: cm.ClientMetric, **kwargs: Any) -> dict[tuple[str, ...], float]:
    return {
        scope: value for name, _, scope, value in samples(text, **kwargs) if name == metric.name
    }


def _broker(text: str) -> str:
    [broker] = [b for b in json.loads(text)["brokers"].values() if b["nodeid"] >= 0]
    name: str = broker["nodename"]
    return name


def test_broker_round_trip_time_is_the_windows_average_in_seconds():
    broker = next(b for b in json.loads(PRODUCER)["brokers"].values() if b["nodeid"] >= 0)
    assert _values(PRODUCER, cm.BROKER_RTT) == {(_broker(PRODUCER),): broker["rtt"]["avg"] / 1e6}


def test_a_window_without_requests_reports_no_round_trip_time():
    assert _values(CONSUMER, cm.BROKER_RTT) == {}


def test_the_logical_group_coordinator_is_not_a_second_broker():
    assert "GroupCoordinator" in json.loads(CONSUMER)["brokers"]
    assert list(_values(CONSUMER, cm.REQUEST_RETRIES)) == [(_broker(CONSUMER),)]


def test_retries_and_timeouts_are_the_brokers_counters():
    document = json.loads(PRODUCER)
    [broker] = [b for b in document["brokers"].values() if b["nodeid"] >= 0]
    broker["txretries"], broker["req_timeouts"] = 7, 2
    text = json.dumps(document)
    assert _values(text, cm.REQUEST_RETRIES) == {(broker["nodename"],): 7.0}
    assert _values(text, cm.REQUEST_TIMEOUTS) == {(broker["nodename"],): 2.0}


def test_producer_queue_usage_is_the_fuller_of_count_and_size():
    document = json.loads(PRODUCER)
    document.update(msg_cnt=50, msg_max=100, msg_size=900, msg_size_max=1000)
    text = json.dumps(document)
    assert _values(text, cm.PRODUCER_QUEUE_MESSAGES) == {(): 50.0}
    assert _values(text, cm.PRODUCER_QUEUE_BYTES) == {(): 900.0}
    assert _values(text, cm.PRODUCER_QUEUE_USAGE) == {(): 0.9}


def test_consumer_lag_is_read_from_the_stored_offset_and_absent_while_unknown():
    partitions = json.loads(CONSUMER)["topics"]["orders"]["partitions"]
    known = {
        ("orders", key): float(p["consumer_lag_stored"])
        for key, p in partitions.items()
        if p["consumer_lag_stored"] >= 0
    }
    assert known  # the document has partitions with and without a stored offset
    assert len(known) < len(partitions) - 1
    assert _values(CONSUMER, cm.CONSUMER_LAG) == known
    assert _values(CONSUMER, cm.CONSUMER_LAG_MAX) == {(): max(known.values())}


def test_the_shared_fetch_queue_is_not_counted_once_per_partition():
    partitions = json.loads(CONSUMER)["topics"]["orders"]["partitions"]
    shared = max(p["fetchq_cnt"] for p in partitions.values())
    assert _values(CONSUMER, cm.FETCH_QUEUE_MESSAGES) == {("orders",): float(shared)}


def test_rebalances_are_the_groups_count():
    assert _values(CONSUMER, cm.REBALANCES) == {
        (): float(json.loads(CONSUMER)["cgrp"]["rebalance_cnt"])
    }


def test_series_carry_the_client_id_and_the_given_group():
    [(_, base, _, _)] = [
        s for s in samples(CONSUMER, group="billing") if s[0] == cm.REBALANCES.name
    ]
    assert dict(base) == {
        sc.MESSAGING_SYSTEM: "kafka",
        sc.MESSAGING_CLIENT_ID: json.loads(CONSUMER)["client_id"],
        sc.MESSAGING_CONSUMER_GROUP_NAME: "billing",
    }


def test_a_producer_has_no_consumer_series_and_a_consumer_no_producer_queue():
    producer = {s[0] for s in samples(PRODUCER)}
    consumer = {s[0] for s in samples(CONSUMER)}
    assert not producer & {cm.CONSUMER_LAG.name, cm.FETCH_QUEUE_MESSAGES.name, cm.REBALANCES.name}
    assert cm.PRODUCER_QUEUE_MESSAGES.name in producer
    assert cm.PRODUCER_QUEUE_MESSAGES.name not in consumer


def test_throttle_time_is_the_windows_average_in_seconds():
    document = json.loads(PRODUCER)
    [broker] = [b for b in document["brokers"].values() if b["nodeid"] >= 0]
    broker["throttle"].update(cnt=3, avg=250)  # milliseconds
    text = json.dumps(document)
    assert _values(text, cm.BROKER_THROTTLE) == {(broker["nodename"],): 0.25}
