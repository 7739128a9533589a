"""Consumer lag as an observable gauge, read from the consumer's own state.

Lag per assigned partition is the high-water mark the broker reported in its last fetch response
minus the consumer's position; both are already in the client's memory, so observing costs no
broker round-trip. Partitions that are revoked stop being reported. A confluent-kafka consumer
is read from the snapshot its poll loop's thread took (:mod:`kafkascope._adapters.confluent`),
never called from the metric collection thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from kafkascope._adapters import confluent, kafka_python
from kafkascope._adapters.clients import client_of, group_of, reader_for
from kafkascope._adapters.consumer import ConsumerState, hold, released
from kafkascope._core import errors as _errors
from kafkascope._core import semconv as sc
from kafkascope._core import settings as _settings
from kafkascope._core.telemetry import ProviderCache, messaging_attributes, meter_for
from kafkascope._observe.client_statistics import observe_kafka_python
from kafkascope._observe.time_lag import TimeLagEstimator

PartitionLag = tuple[str, int, int]
"""``(topic, partition, lag)``."""


def lags(state: ConsumerState) -> Iterator[PartitionLag]:
    """Lag of each assigned partition whose position and high-water mark are known."""
    for (topic, partition), reading in state.partitions.items():
        if reading.position >= 0 and reading.highwater >= 0:
            yield topic, partition, max(0, reading.highwater - reading.position)


class LagObserver:
    """Handle of one consumer registered with :func:`observe_lag`.

    A plain confluent-kafka ``Consumer`` is read only from what :meth:`beat` saw on its poll
    loop's thread (see :func:`observe_lag`).
    """

    def __init__(self, registry: _Registry, consumer: Any, group: str | None) -> None:
        self._registry = registry
        self._reader = reader_for(consumer, needed_by="observe_lag")
        self._consumer = hold(consumer)
        self._time_lag = TimeLagEstimator()
        self.group = group

    def _lags(self) -> list[PartitionLag]:
        consumer = self._consumer()
        state = self._reader.read(consumer) if consumer is not None else None
        if state is None or state.closed:
            self.close()
            return []
        return list(lags(state))

    def observations(self) -> Iterable[Observation]:
        """Current lag per assigned partition."""
        out: list[Observation] = []
        for topic, partition, lag in self._lags():
            attrs = messaging_attributes(topic=topic, partition=partition, group=self.group)
            out.append(Observation(lag, attrs))
        return out

    def time_lag_observations(self) -> Iterable[Observation]:
        """Current time lag (seconds) per assigned partition, where it can be estimated
        (:mod:`kafkascope._observe.time_lag`)."""
        out: list[Observation] = []
        for topic, partition, seconds in self._time_lag.estimates(self.group, self._lags()):
            attrs = messaging_attributes(topic=topic, partition=partition, group=self.group)
            out.append(Observation(seconds, attrs))
        return out

    def beat(self) -> None:
        """Call once per turn of a plain confluent-kafka ``Consumer``'s poll loop, on its thread.

        Takes the snapshot the gauges report, at most once a second (the call costs a clock
        comparison otherwise). A beat that takes one after the consumer was closed ends its
        series; call :meth:`close` as you close the consumer to end them at once.
        Nothing to do for kafkascope's instrumented ``Consumer`` (its ``poll()`` and
        ``consume()`` beat) or for the other clients, whose lag is read from their memory.
        Never raises.
        """
        if not isinstance(self._reader, confluent.Reader):
            return
        consumer = self._consumer()
        if consumer is not None:
            self._reader.beat(consumer, time.monotonic())

    def close(self) -> None:
        """Stop reporting this consumer's lag."""
        self._consumer = released
        self._registry.remove(self)


class _Registry:
    """One observable gauge per meter provider, reporting every registered consumer."""

    def __init__(self, meter_provider: metrics.MeterProvider) -> None:
        self._observers: list[LagObserver] = []
        self._lock = threading.Lock()
        meter_for(meter_provider).create_observable_gauge(
            sc.CONSUMER_LAG,
            callbacks=[self._observe],
            unit="{message}",
            description="Messages between a partition's high-water mark and the consumer's "
            "position.",
        )
        meter_for(meter_provider).create_observable_gauge(
            sc.CONSUMER_TIME_LAG,
            callbacks=[self._observe_time],
            unit="s",
            description="Age of the oldest record the consumer has not processed yet; 0 when "
            "caught up (an upper bound: see kafkascope's lag guide).",
        )

    def add(self, observer: LagObserver) -> None:
        with self._lock:
            self._observers.append(observer)

    def remove(self, observer: LagObserver) -> None:
        with self._lock:
            if observer in self._observers:
                self._observers.remove(observer)

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._collect(LagObserver.observations, "consumer lag")

    def _observe_time(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._collect(LagObserver.time_lag_observations, "consumer time lag")

    def _collect(
        self, read: Callable[[LagObserver], Iterable[Observation]], where: str
    ) -> list[Observation]:
        with self._lock:
            observers = list(self._observers)
        out: list[Observation] = []
        for observer in observers:
            try:
                out.extend(read(observer))
            except RuntimeError:
                continue  # the consumer thread changed its assignment mid-read: next time
            except Exception as exc:
                _errors.report(where, exc)
        return out


_registries: Final[ProviderCache[_Registry]] = ProviderCache(_Registry)


def observe_lag(
    consumer: Any,
    *,
    group: str | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> LagObserver:
    """Report ``consumer``'s lag per assigned partition as the gauge
    ``kafkascope.consumer.lag`` (unit ``{message}``), and its age as the gauge
    ``kafkascope.consumer.time_lag`` (unit ``s``, an upper bound estimated without network:
    see :mod:`kafkascope._observe.time_lag`).

    Call once after creating the consumer. The value is read from the high-water marks and
    positions the client already holds: no extra request to the broker. The consumer is held
    weakly (confluent-kafka's, which cannot be, until it is seen closed); a closed consumer is
    no longer reported, and :meth:`LagObserver.close` stops reporting it.

    kafka-python's and aiokafka's consumers are read when metrics are collected. A
    confluent-kafka ``Consumer`` is never called from the collecting thread (confluent-kafka
    makes that call wait while another thread polls the consumer, which would stall every
    metric export): its gauges report the snapshot its poll loop's thread took last, at most a
    second old. kafkascope's instrumented ``Consumer`` takes it as each ``poll()``/``consume()``
    returns and is seen closed by its ``close()``. A plain one needs :meth:`LagObserver.beat`
    in its poll loop; without beats nothing is reported for it. kafkascope cannot see such a
    consumer closed without calling it: call :meth:`LagObserver.close` as you close it, to end
    its series and release it.

    A kafka-python consumer's own statistics (``kafkascope.client.*``, read from its
    ``metrics()``) are reported too while client statistics are on (the default; see
    :func:`kafkascope.observe_client_statistics`).

    Args:
        consumer: a kafka-python ``KafkaConsumer``, confluent-kafka ``Consumer`` or aiokafka
            ``AIOKafkaConsumer``.
        group: consumer group label (default: the consumer's ``group_id``; confluent-kafka's
            cannot be read, pass it).
        meter_provider: default, the global one.

    Returns:
        The observer: ``beat()`` (confluent-kafka's poll loop), ``close()`` to end its series.

    Raises:
        TypeError: ``consumer`` is of a client kafkascope cannot read lag from.
    """
    if group is None:
        group = group_of(consumer)
    registry = _registries.get(meter_provider)
    observer = LagObserver(registry, consumer, group)
    registry.add(observer)
    if _settings.current().client_metrics:
        _observe_statistics(consumer, group, meter_provider)
    return observer


def _observe_statistics(
    consumer: Any, group: str | None, meter_provider: metrics.MeterProvider | None
) -> None:
    """A kafka-python consumer's client statistics (never raises); the other clients' come
    from their configuration or not at all."""
    if client_of(consumer) != kafka_python.NAME or not callable(getattr(consumer, "metrics", None)):
        return
    try:
        observe_kafka_python(consumer, group=group, meter_provider=meter_provider)
    except Exception as exc:
        _errors.report("kafka-python client statistics", exc)
