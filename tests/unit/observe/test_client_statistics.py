"""The client statistics instruments: what they report, their caps, the application's own
``stats_cb`` and clients that go away (librdkafka's documents, no broker)."""

from __future__ import annotations

import copy
import functools
import gc
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from devstack.wait import wait_until
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

from kafkascope import client_statistics_config, observe_client_statistics
from kafkascope._core import client_metrics as cm
from kafkascope._core import semconv as sc
from kafkascope._observe.client_statistics import STATISTICS_INTERVAL_MS, confluent_config

DATA = Path(__file__).resolve().parents[1] / "data"
CONSUMER = json.loads((DATA / "librdkafka_stats_consumer.json").read_text())
NOWHERE = {"bootstrap.servers": "127.0.0.1:1", "log_level": 0}


class Reader:
    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])

    def series(self, name: str) -> list[tuple[dict[str, Any], float]]:
        data = self.reader.get_metrics_data()
        out: list[tuple[dict[str, Any], float]] = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        out.extend(
                            (dict(p.attributes or {}), float(p.value))
                            for p in metric.data.data_points
                            if isinstance(p, NumberDataPoint)
                        )
        return out


@pytest.fixture
def metrics() -> Iterator[Reader]:
    found = Reader()
    yield found
    found.provider.shutdown()


def _consumer_document(topics: dict[str, int], lag: int = 5) -> str:
    """The captured consumer document with ``{topic: partitions}``, each partition's stored
    lag ``lag``."""
    document = copy.deepcopy(CONSUMER)
    shape = document["topics"]["orders"]["partitions"]["0"]
    document["topics"] = {
        topic: {
            "topic": topic,
            "partitions": {
                str(p): {**shape, "partition": p, "consumer_lag_stored": lag, "fetchq_cnt": 1}
                for p in range(count)
            },
        }
        for topic, count in topics.items()
    }
    return json.dumps(document)


def test_hundreds_of_partitions_stay_under_the_cap_with_one_other_series(metrics):
    _, statistics = confluent_config({}, group="billing", meter_provider=metrics.provider)
    statistics(_consumer_document({"orders": 300}))
    lag = metrics.series(cm.CONSUMER_LAG.name)
    cap = cm.CAPS["partition"]
    assert len(lag) == cap + 1
    [other] = [v for a, v in lag if a[sc.MESSAGING_DESTINATION_PARTITION_ID] == cm.OTHER]
    assert other == (300 - cap) * 5  # the lag past the cap is summed, not lost
    assert sum(v for _, v in lag) == 300 * 5


def test_hundreds_of_topics_stay_under_the_topic_cap(metrics):
    _, statistics = confluent_config({}, meter_provider=metrics.provider)
    statistics(_consumer_document({f"t{i:03}": 1 for i in range(100)}))
    queues = metrics.series(cm.FETCH_QUEUE_MESSAGES.name)
    assert len(queues) == cm.CAPS["topic"] + 1
    assert {a[sc.MESSAGING_DESTINATION_NAME] for a, _ in queues} >= {cm.OTHER, "t000"}


def test_partitions_that_go_away_give_their_place_under_the_cap_back(metrics):
    _, statistics = confluent_config({}, meter_provider=metrics.provider)
    statistics(_consumer_document({"old": 256}))
    metrics.series(cm.CONSUMER_LAG.name)
    statistics(_consumer_document({"new": 10}))
    topics = {a[sc.MESSAGING_DESTINATION_NAME] for a, _ in metrics.series(cm.CONSUMER_LAG.name)}
    assert topics == {"new"}


def test_the_applications_stats_cb_gets_each_document_unchanged(metrics):
    received: list[str] = []
    config, _ = confluent_config(
        {"statistics.interval.ms": 1000, "stats_cb": received.append},
        meter_provider=metrics.provider,
    )
    documents = [_consumer_document({"orders": n}) for n in (1, 2, 3)]
    for document in documents:
        config["stats_cb"](document)
    assert [id(d) for d in received] == [id(d) for d in documents]
    assert config["statistics.interval.ms"] == 1000


def test_without_an_interval_of_its_own_the_applications_stats_cb_is_not_called(metrics):
    received: list[str] = []
    config, _ = confluent_config({"stats_cb": received.append}, meter_provider=metrics.provider)
    config["stats_cb"](_consumer_document({"orders": 1}))
    assert received == []
    assert config["statistics.interval.ms"] == STATISTICS_INTERVAL_MS


def test_a_closed_client_is_no_longer_reported(metrics):
    _, statistics = confluent_config({}, meter_provider=metrics.provider)
    statistics(_consumer_document({"orders": 3}))
    assert metrics.series(cm.CONSUMER_LAG.name)
    statistics.closed = True
    assert metrics.series(cm.CONSUMER_LAG.name) == []


def test_a_real_producers_statistics_are_reported_and_go_with_the_producer(metrics):
    received: list[str] = []
    config = client_statistics_config(
        {
            **NOWHERE,
            "client.id": "billing",
            "statistics.interval.ms": 50,
            "stats_cb": received.append,
        },
        meter_provider=metrics.provider,
    )
    producer = Producer(config)
    wait_until(
        lambda: len(received) >= 2,
        10,
        "two statistics documents",
        step=functools.partial(producer.poll, 0.05),
    )
    [(attributes, queued)] = metrics.series(cm.PRODUCER_QUEUE_MESSAGES.name)
    assert attributes == {sc.MESSAGING_SYSTEM: "kafka", sc.MESSAGING_CLIENT_ID: "billing"}
    assert queued == 0
    assert all(json.loads(d)["client_id"] == "billing" for d in received)
    del producer, config
    gc.collect()
    assert metrics.series(cm.PRODUCER_QUEUE_MESSAGES.name) == []


def test_observe_client_statistics_refuses_what_is_not_a_kafka_python_client():
    with pytest.raises(TypeError, match="KafkaProducer or KafkaConsumer"):
        observe_client_statistics(object())


def test_client_statistics_config_refuses_what_is_not_a_configuration():
    with pytest.raises(TypeError, match="config must be"):
        client_statistics_config([("bootstrap.servers", "x")])  # type: ignore[arg-type]
