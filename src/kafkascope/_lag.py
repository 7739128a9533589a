"""Consumer lag as an observable gauge, read from the consumer's own state.

Lag per assigned partition is the high-water mark the broker reported in its last fetch response
minus the consumer's position; both are already in the client's memory, so observing costs no
broker round-trip. Partitions that are revoked stop being reported.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from kafkascope import _internal
from kafkascope import _semconv as sc
from kafkascope._version import __version__

PartitionLag = tuple[str, int, int]
"""``(topic, partition, lag)``."""


def kafka_python_lag(consumer: Any) -> Iterator[PartitionLag]:
    """Lag of a kafka-python ``KafkaConsumer`` (its subscription state, no network)."""
    states = consumer._subscription.assignment
    for tp, state in list(states.items()):
        highwater = state.highwater
        position = state.position
        if highwater is None or position is None:
            continue
        offset = getattr(position, "offset", position)
        yield tp.topic, tp.partition, max(0, int(highwater) - int(offset))


def confluent_lag(consumer: Any) -> Iterator[PartitionLag]:
    """Lag of a confluent-kafka ``Consumer`` (cached watermarks and local positions)."""
    for tp in consumer.position(consumer.assignment()):
        if tp.offset < 0:
            continue
        _, high = consumer.get_watermark_offsets(tp, cached=True)
        if high is not None and high >= 0:
            yield tp.topic, tp.partition, max(0, high - tp.offset)


def _reader_for(consumer: Any) -> Any:
    if hasattr(consumer, "_subscription") and hasattr(consumer, "highwater"):
        return kafka_python_lag
    if hasattr(consumer, "get_watermark_offsets"):
        return confluent_lag
    raise TypeError(
        f"observe_lag does not know how to read lag from {type(consumer).__qualname__}; "
        "supported: kafka-python KafkaConsumer, confluent-kafka Consumer"
    )


class LagObserver:
    """Handle of one consumer registered with :func:`observe_lag`."""

    def __init__(self, registry: _Registry, consumer: Any, group: str | None) -> None:
        self._registry = registry
        self._consumer = weakref.ref(consumer)
        self._read = _reader_for(consumer)
        self.group = group

    def observations(self) -> Iterable[Observation]:
        """Current lag per assigned partition."""
        consumer = self._consumer()
        if consumer is None:
            self.close()
            return []
        out: list[Observation] = []
        for topic, partition, lag in self._read(consumer):
            attrs: dict[str, str] = {
                sc.MESSAGING_SYSTEM: sc.KAFKA,
                sc.MESSAGING_DESTINATION_NAME: topic,
                sc.MESSAGING_DESTINATION_PARTITION_ID: str(partition),
            }
            if self.group is not None:
                attrs[sc.MESSAGING_CONSUMER_GROUP_NAME] = self.group
            out.append(Observation(lag, attrs))
        return out

    def close(self) -> None:
        """Stop reporting this consumer's lag."""
        self._registry.remove(self)


class _Registry:
    """One observable gauge per meter provider, reporting every registered consumer."""

    def __init__(self, meter_provider: metrics.MeterProvider) -> None:
        self._observers: list[LagObserver] = []
        self._lock = threading.Lock()
        meter = meter_provider.get_meter("kafkascope", __version__, schema_url=sc.SCHEMA_URL)
        meter.create_observable_gauge(
            sc.CONSUMER_LAG,
            callbacks=[self._observe],
            unit="{message}",
            description="Messages between a partition's high-water mark and the consumer's "
            "position.",
        )

    def add(self, observer: LagObserver) -> None:
        with self._lock:
            self._observers.append(observer)

    def remove(self, observer: LagObserver) -> None:
        with self._lock:
            if observer in self._observers:
                self._observers.remove(observer)

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            observers = list(self._observers)
        out: list[Observation] = []
        for observer in observers:
            try:
                out.extend(observer.observations())
            except RuntimeError:
                continue  # the consumer thread changed its assignment mid-read: next time
            except Exception as exc:
                _internal.report("consumer lag", exc)
        return out


_registries: weakref.WeakKeyDictionary[metrics.MeterProvider, _Registry] = (
    weakref.WeakKeyDictionary()
)
_registries_lock = threading.Lock()


def observe_lag(
    consumer: Any,
    *,
    group: str | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> LagObserver:
    """Report ``consumer``'s lag per assigned partition as the gauge
    ``kafkascope.consumer.lag`` (unit ``{message}``).

    Call once after creating the consumer. The value is read when metrics are collected, from
    the high-water marks and positions the client already holds: no extra request to the broker.
    The consumer is held weakly; :meth:`LagObserver.close` stops reporting it.

    Args:
        consumer: a kafka-python ``KafkaConsumer`` or confluent-kafka ``Consumer``.
        group: consumer group label (default: the consumer's ``group_id``).
        meter_provider: default, the global one.

    Raises:
        TypeError: ``consumer`` is of a client kafkascope cannot read lag from.
    """
    if group is None:
        config = getattr(consumer, "config", None)
        found = config.get("group_id") if isinstance(config, dict) else None
        group = found if isinstance(found, str) else None
    provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
    with _registries_lock:
        registry = _registries.get(provider)
        if registry is None:
            registry = _registries[provider] = _Registry(provider)
    observer = LagObserver(registry, consumer, group)
    registry.add(observer)
    return observer
