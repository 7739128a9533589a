"""Messaging metrics: instruments created once per meter provider, low-cardinality attributes."""

from __future__ import annotations

import weakref
from typing import Final

from opentelemetry import metrics
from opentelemetry.util.types import Attributes

from kafkascope import _semconv as sc
from kafkascope._version import __version__

TIME_IN_QUEUE_BUCKETS: Final = (*sc.DURATION_BUCKETS, 30.0, 60.0, 300.0, 900.0, 3600.0)
_MAX_CACHED_ATTRIBUTE_SETS: Final = 4096

AttrKey = tuple[str, str | None, str | None, str | None, str | None, int | None, str | None]


class MessagingMetrics:
    """The instruments kafkascope records into, for one meter provider."""

    def __init__(self, meter_provider: metrics.MeterProvider) -> None:
        meter = meter_provider.get_meter("kafkascope", __version__, schema_url=sc.SCHEMA_URL)
        self.process_duration = meter.create_histogram(
            sc.METRIC_PROCESS_DURATION,
            unit="s",
            description="Duration of processing operation.",
            explicit_bucket_boundaries_advisory=sc.DURATION_BUCKETS,
        )
        self.operation_duration = meter.create_histogram(
            sc.METRIC_CLIENT_OPERATION_DURATION,
            unit="s",
            description="Duration of a messaging operation initiated by a client.",
            explicit_bucket_boundaries_advisory=sc.DURATION_BUCKETS,
        )
        self.sent_messages = meter.create_counter(
            sc.METRIC_CLIENT_SENT_MESSAGES,
            unit="{message}",
            description="Number of messages producer attempted to send to the broker.",
        )
        self.consumed_messages = meter.create_counter(
            sc.METRIC_CLIENT_CONSUMED_MESSAGES,
            unit="{message}",
            description="Number of messages that were delivered to the application.",
        )
        self.time_in_queue = meter.create_histogram(
            sc.TIME_IN_QUEUE,
            unit="s",
            description="Time from the record's timestamp to the start of its processing.",
            explicit_bucket_boundaries_advisory=TIME_IN_QUEUE_BUCKETS,
        )
        self._attributes: dict[AttrKey, Attributes] = {}

    def attributes(
        self,
        operation: str,
        topic: str | None,
        group: str | None,
        error_type: str | None,
        server_address: str | None,
        server_port: int | None,
        timestamp_type: str | None = None,
    ) -> Attributes:
        """The metric attributes for one combination, built once and reused."""
        key: AttrKey = (
            operation,
            topic,
            group,
            error_type,
            server_address,
            server_port,
            timestamp_type,
        )
        cached = self._attributes.get(key)
        if cached is not None:
            return cached
        attrs: dict[str, str | int] = {
            sc.MESSAGING_SYSTEM: sc.KAFKA,
            sc.MESSAGING_OPERATION_NAME: operation,
            sc.MESSAGING_OPERATION_TYPE: operation,
        }
        if topic is not None:
            attrs[sc.MESSAGING_DESTINATION_NAME] = topic
        if group is not None:
            attrs[sc.MESSAGING_CONSUMER_GROUP_NAME] = group
        if error_type is not None:
            attrs[sc.ERROR_TYPE] = error_type
        if server_address is not None:
            attrs[sc.SERVER_ADDRESS] = server_address
        if server_port is not None:
            attrs[sc.SERVER_PORT] = server_port
        if timestamp_type is not None:
            attrs[sc.TIMESTAMP_TYPE] = timestamp_type
        if len(self._attributes) < _MAX_CACHED_ATTRIBUTE_SETS:
            self._attributes[key] = attrs
        return attrs


_by_provider: weakref.WeakKeyDictionary[metrics.MeterProvider, MessagingMetrics] = (
    weakref.WeakKeyDictionary()
)


def for_provider(meter_provider: metrics.MeterProvider | None) -> MessagingMetrics:
    """The instruments for ``meter_provider`` (default: the global one), created on first use."""
    provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
    found = _by_provider.get(provider)
    if found is None:
        found = _by_provider[provider] = MessagingMetrics(provider)
    return found
