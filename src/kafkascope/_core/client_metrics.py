"""The client statistics kafkascope reports: each metric's name, instrument, unit and scope.

One curated set for every client: a statistic two clients both keep has one name here, and
each reader (:mod:`kafkascope._adapters.librdkafka_stats`,
:mod:`kafkascope._adapters.kafka_python_metrics`) turns its client's numbers into
:data:`Sample` values of these metrics. Attributes beyond the client's own are bounded by the
metric's :attr:`ClientMetric.scope` (see :mod:`kafkascope._observe.client_statistics`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from opentelemetry.util.types import AttributeValue

from kafkascope._core import semconv as sc

Scope: TypeAlias = Literal["client", "broker", "topic", "partition"]
"""What one series of a metric stands for beyond its client: the client as a whole, one
broker, one topic, or one partition."""

Sample: TypeAlias = tuple[str, tuple[tuple[str, AttributeValue], ...], tuple[str, ...], float]
"""``(metric name, the client's attributes, the scope's values, value)``: the scope's values
are ``(host:port,)`` for a broker, ``(topic,)`` or ``(topic, partition)``, ``()`` otherwise."""

OTHER: Final = "_other"
"""The attribute value of the one series that stands for everything past a metric's cap."""


@dataclass(frozen=True, slots=True)
class ClientMetric:
    """One client statistic as an OpenTelemetry instrument."""

    name: str
    instrument: Literal["gauge", "counter"]
    """``gauge``: an observable gauge; ``counter``: an observable (cumulative) counter."""
    unit: str
    description: str
    scope: Scope
    combine: Literal["sum", "max"]
    """How values that share one series are combined (two clients with one client id, or the
    overflow series past the cap)."""


BROKER_RTT: Final = ClientMetric(
    sc.CLIENT_BROKER_RTT,
    "gauge",
    "s",
    "Average round-trip time of the client's requests to one broker over the client's last "
    "statistics window.",
    "broker",
    "max",
)
BROKER_THROTTLE: Final = ClientMetric(
    sc.CLIENT_BROKER_THROTTLE_TIME,
    "gauge",
    "s",
    "Average time one broker throttled the client over its last statistics window.",
    "broker",
    "max",
)
REQUEST_RETRIES: Final = ClientMetric(
    sc.CLIENT_REQUEST_RETRIES,
    "counter",
    "{request}",
    "Requests the client sent to one broker again.",
    "broker",
    "sum",
)
REQUEST_TIMEOUTS: Final = ClientMetric(
    sc.CLIENT_REQUEST_TIMEOUTS,
    "counter",
    "{request}",
    "Requests to one broker that timed out.",
    "broker",
    "sum",
)
PRODUCER_QUEUE_MESSAGES: Final = ClientMetric(
    sc.CLIENT_PRODUCER_QUEUE_MESSAGES,
    "gauge",
    "{message}",
    "Messages waiting in the producer's queue to be sent or acknowledged.",
    "client",
    "sum",
)
PRODUCER_QUEUE_BYTES: Final = ClientMetric(
    sc.CLIENT_PRODUCER_QUEUE_BYTES,
    "gauge",
    "By",
    "Bytes of the messages waiting in the producer's queue.",
    "client",
    "sum",
)
PRODUCER_QUEUE_USAGE: Final = ClientMetric(
    sc.CLIENT_PRODUCER_QUEUE_USAGE,
    "gauge",
    "1",
    "How full the producer's queue is, from 0 to 1: the larger of its message count and its "
    "size over their limits (at 1, sends fail with a full queue).",
    "client",
    "max",
)
FETCH_QUEUE_MESSAGES: Final = ClientMetric(
    sc.CLIENT_FETCH_QUEUE_MESSAGES,
    "gauge",
    "{message}",
    "Messages the consumer fetched from one topic that the application has not polled yet.",
    "topic",
    "max",
)
CONSUMER_LAG: Final = ClientMetric(
    sc.CLIENT_CONSUMER_LAG,
    "gauge",
    "{message}",
    "Messages between one partition's high-water mark and the consumer's position, as the "
    "client last saw them.",
    "partition",
    "sum",
)
CONSUMER_LAG_MAX: Final = ClientMetric(
    sc.CLIENT_CONSUMER_LAG_MAX,
    "gauge",
    "{message}",
    "The largest lag of any partition the consumer fetches, as the client last saw it.",
    "client",
    "max",
)
REBALANCES: Final = ClientMetric(
    sc.CLIENT_REBALANCES,
    "counter",
    "{rebalance}",
    "Rebalances the consumer's group coordinator went through.",
    "client",
    "sum",
)

ALL: Final = (
    BROKER_RTT,
    BROKER_THROTTLE,
    REQUEST_RETRIES,
    REQUEST_TIMEOUTS,
    PRODUCER_QUEUE_MESSAGES,
    PRODUCER_QUEUE_BYTES,
    PRODUCER_QUEUE_USAGE,
    FETCH_QUEUE_MESSAGES,
    CONSUMER_LAG,
    CONSUMER_LAG_MAX,
    REBALANCES,
)

CAPS: Final[dict[Scope, int]] = {"client": 64, "broker": 64, "topic": 64, "partition": 256}
"""The most series one metric reports per scope, beyond which values go to the
:data:`OTHER` series (``client``: distinct client attribute sets)."""
