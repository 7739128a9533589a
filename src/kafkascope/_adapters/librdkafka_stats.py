"""Reading librdkafka's statistics JSON (confluent-kafka's ``stats_cb``) as client statistics.

The JSON is the one librdkafka documents in its STATISTICS.md: per-broker round-trip and
throttle windows (``rtt``, ``throttle``: microseconds and milliseconds) with request counters,
per-partition fetch queues and consumer lag, the producer's queue and the group's rebalance
count. librdkafka 2 reports the consumer's one shared fetch queue on each partition, so a
topic's fetch queue is the largest of its partitions', not their sum. Brokers with a negative
node id (the configured bootstrap entries, the internal broker and the logical group
coordinator, which repeats a real broker's address) are skipped, as is the unassigned
partition ``-1``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from opentelemetry.util.types import AttributeValue

from kafkascope._core import client_metrics as cm
from kafkascope._core import semconv as sc
from kafkascope._core.client_metrics import Sample


def samples(
    statistics: str, *, group: str | None = None, client_id: str | None = None
) -> list[Sample]:
    """The client statistics in one statistics JSON document.

    Args:
        statistics: the JSON text librdkafka handed to ``stats_cb``.
        group: the consumer group, put on a consumer's series when known.
        client_id: ``messaging.client.id`` (default: the JSON's ``client_id``).

    Raises:
        ValueError: the text is not a JSON object.
    """
    document = json.loads(statistics)
    if not isinstance(document, dict):
        raise ValueError("librdkafka statistics are not a JSON object")
    own: list[tuple[str, AttributeValue]] = [(sc.MESSAGING_SYSTEM, sc.KAFKA)]
    found_id = client_id if client_id is not None else document.get("client_id")
    if isinstance(found_id, str) and found_id:
        own.append((sc.MESSAGING_CLIENT_ID, found_id))
    consumer = document.get("type") == "consumer"
    if consumer and group:
        own.append((sc.MESSAGING_CONSUMER_GROUP_NAME, group))
    base = tuple(own)
    out: list[Sample] = []
    _brokers(document.get("brokers"), base, out)
    if consumer:
        _partitions(document.get("topics"), base, out)
        cgrp = document.get("cgrp")
        if isinstance(cgrp, dict):
            _add(out, cm.REBALANCES.name, base, (), cgrp.get("rebalance_cnt"))
    else:
        _producer_queue(document, base, out)
    return out


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _add(
    out: list[Sample],
    name: str,
    base: tuple[tuple[str, AttributeValue], ...],
    scope: tuple[str, ...],
    value: object,
    scale: float = 1.0,
) -> None:
    number = _number(value)
    if number is not None:
        out.append((name, base, scope, number * scale))


def _window_average(window: object) -> float | None:
    """A window's average, None when it holds no sample (librdkafka reports 0 then)."""
    if not isinstance(window, Mapping) or not _number(window.get("cnt")):
        return None
    return _number(window.get("avg"))


def _brokers(
    brokers: object, base: tuple[tuple[str, AttributeValue], ...], out: list[Sample]
) -> None:
    if not isinstance(brokers, Mapping):
        return
    for broker in brokers.values():
        if not isinstance(broker, Mapping):
            continue
        node_id = broker.get("nodeid")
        address = broker.get("nodename")
        if not isinstance(node_id, int) or node_id < 0 or not isinstance(address, str):
            continue
        scope = (address,)
        _add(out, cm.BROKER_RTT.name, base, scope, _window_average(broker.get("rtt")), 1e-6)
        _add(
            out, cm.BROKER_THROTTLE.name, base, scope, _window_average(broker.get("throttle")), 1e-3
        )
        _add(out, cm.REQUEST_RETRIES.name, base, scope, broker.get("txretries"))
        _add(out, cm.REQUEST_TIMEOUTS.name, base, scope, broker.get("req_timeouts"))


def _partitions(
    topics: object, base: tuple[tuple[str, AttributeValue], ...], out: list[Sample]
) -> None:
    if not isinstance(topics, Mapping):
        return
    largest: float | None = None
    for topic, entry in topics.items():
        partitions = entry.get("partitions") if isinstance(entry, Mapping) else None
        if not isinstance(topic, str) or not isinstance(partitions, Mapping):
            continue
        queued = 0.0
        for key, partition in partitions.items():
            if key == "-1" or not isinstance(partition, Mapping):
                continue
            queued = max(queued, _number(partition.get("fetchq_cnt")) or 0.0)
            lag = _lag(partition)
            if lag is not None:
                out.append((cm.CONSUMER_LAG.name, base, (topic, str(key)), lag))
                largest = lag if largest is None else max(largest, lag)
        out.append((cm.FETCH_QUEUE_MESSAGES.name, base, (topic,), queued))
    if largest is not None:
        out.append((cm.CONSUMER_LAG_MAX.name, base, (), largest))


def _lag(partition: Mapping[str, Any]) -> float | None:
    """From the offset the application stored (its position) when there is one, else from
    the committed offset; None while neither is known."""
    for key in ("consumer_lag_stored", "consumer_lag"):
        lag = _number(partition.get(key))
        if lag is not None and lag >= 0:
            return lag
    return None


def _producer_queue(
    document: Mapping[str, Any], base: tuple[tuple[str, AttributeValue], ...], out: list[Sample]
) -> None:
    count = _number(document.get("msg_cnt"))
    size = _number(document.get("msg_size"))
    _add(out, cm.PRODUCER_QUEUE_MESSAGES.name, base, (), count)
    _add(out, cm.PRODUCER_QUEUE_BYTES.name, base, (), size)
    usage = [
        used / limit
        for used, limit in (
            (count, _number(document.get("msg_max"))),
            (size, _number(document.get("msg_size_max"))),
        )
        if used is not None and limit
    ]
    if usage:
        out.append((cm.PRODUCER_QUEUE_USAGE.name, base, (), min(1.0, max(usage))))
