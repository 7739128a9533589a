"""Reading kafka-python's ``metrics(raw=True)`` registry as client statistics.

Read when metrics are collected, from the client's memory: ``metrics()`` copies the
registry's dictionary and each value is computed from samples the client already took. Of the
curated set, kafka-python 2 and 3 keep the per-broker request latency and throttle time
(``<prefix>-node-metrics.node-<id>``, milliseconds) and the largest partition lag
(``records-lag-max``); they keep retries only as a rate, and no timeout count, producer queue
depth, fetch queue, per-partition lag or rebalance count.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from opentelemetry.util.types import AttributeValue

from kafkascope._core import client_metrics as cm
from kafkascope._core import semconv as sc
from kafkascope._core.client_metrics import Sample

_NODE_GROUP: Final = "-node-metrics.node-"
_PER_NODE: Final = {
    "request-latency-avg": cm.BROKER_RTT.name,
    "throttle-time-avg": cm.BROKER_THROTTLE.name,
}

Address = Callable[[int], str | None]
"""``node id -> "host:port"`` from the client's cached cluster metadata, None if unknown."""


def address_resolver(client: Any) -> Address:
    """Resolves a ``KafkaProducer``'s or ``KafkaConsumer``'s broker ids from its metadata
    cache (no request is made)."""
    cluster = getattr(client, "_metadata", None)  # KafkaProducer
    if cluster is None:
        cluster = getattr(getattr(client, "_client", None), "cluster", None)  # KafkaConsumer

    def resolve(node_id: int) -> str | None:
        broker = cluster.broker_metadata(node_id) if cluster is not None else None
        host, port = getattr(broker, "host", None), getattr(broker, "port", None)
        return f"{host}:{port}" if isinstance(host, str) and isinstance(port, int) else None

    return resolve


def samples(
    registry: Mapping[Any, Any], address: Address, *, group: str | None = None
) -> list[Sample]:
    """The client statistics in a ``metrics(raw=True)`` registry.

    Args:
        registry: ``{MetricName: KafkaMetric}`` as ``metrics(raw=True)`` returns it.
        address: resolves a broker's node id to ``host:port``.
        group: the consumer group, put on a consumer's series when known.
    """
    out: list[Sample] = []
    for metric_name, metric in registry.items():
        name = getattr(metric_name, "name", None)
        group_name = getattr(metric_name, "group", None)
        tags = getattr(metric_name, "tags", None) or {}
        if not isinstance(name, str) or not isinstance(group_name, str):
            continue
        if name in _PER_NODE and _NODE_GROUP in group_name:
            node = group_name.rsplit(_NODE_GROUP, 1)[1]
            found = address(int(node)) if node.isdigit() else None
            if found is not None:
                _add(out, _PER_NODE[name], _base(tags, None), (found,), metric, 1e-3)
        elif name == "records-lag-max" and "topic" not in tags:
            _add(out, cm.CONSUMER_LAG_MAX.name, _base(tags, group), (), metric)
    return out


def _base(tags: Mapping[str, Any], group: str | None) -> tuple[tuple[str, AttributeValue], ...]:
    own: list[tuple[str, AttributeValue]] = [(sc.MESSAGING_SYSTEM, sc.KAFKA)]
    client_id = tags.get("client-id")
    if isinstance(client_id, str) and client_id:
        own.append((sc.MESSAGING_CLIENT_ID, client_id))
    if group:
        own.append((sc.MESSAGING_CONSUMER_GROUP_NAME, group))
    return tuple(own)


def _add(
    out: list[Sample],
    name: str,
    base: tuple[tuple[str, AttributeValue], ...],
    scope: tuple[str, ...],
    metric: Any,
    scale: float = 1.0,
) -> None:
    value = metric.value()
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        out.append((name, base, scope, float(value) * scale))
