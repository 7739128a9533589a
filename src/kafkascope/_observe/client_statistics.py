"""The clients' own statistics as observable instruments, with bounded cardinality.

Nothing is measured per message: each instrument's callback reads, when metrics are collected,
what the clients already keep. A confluent-kafka client hands librdkafka's statistics JSON to
its ``stats_cb`` on the thread that polls it; :class:`ConfluentStatistics` is that callback
(calling the application's own one with the same text) and keeps only the last document,
parsed at collection time, so collecting never calls into the client nor waits for its poll.
A kafka-python client's ``metrics()`` registry is read at collection time. No statistic ever
costs a request to the broker.

Every client is held weakly: a client that is garbage-collected (or, for kafka-python, closed)
stops being reported. Per metric, at most :data:`~kafkascope._core.client_metrics.CAPS`
brokers, topics or partitions get a series of their own; the others share one series whose
attributes say ``_other``.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.util.types import AttributeValue

from kafkascope._adapters import kafka_python_metrics, librdkafka_stats
from kafkascope._core import client_metrics as cm
from kafkascope._core import errors as _errors
from kafkascope._core import semconv as sc
from kafkascope._core.client_metrics import ClientMetric, Sample
from kafkascope._core.telemetry import ProviderCache, meter_for

STATISTICS_INTERVAL_MS: Final = 5000
"""``statistics.interval.ms`` set on a confluent-kafka client whose configuration has none."""

Reader = Callable[[], list[Sample] | None]
"""Reads one client's samples; None once the client is gone."""


class ConfluentStatistics:
    """A confluent-kafka client's ``stats_cb``: keeps the last statistics document and hands
    each one, unchanged, to the application's own ``stats_cb``."""

    __slots__ = ("__weakref__", "_chained", "_last", "_parsed", "closed", "group")

    def __init__(self, chained: Callable[[str], object] | None, group: str | None) -> None:
        self._chained = chained
        self._last: str | None = None
        self._parsed: tuple[str, list[Sample]] | None = None
        self.group = group
        self.closed = False
        """Set as the client closes: its series end at once."""

    def __call__(self, statistics: str) -> None:
        self._last = statistics
        if self._chained is not None:
            self._chained(statistics)  # its exceptions surface from poll(), as without us

    def samples(self) -> list[Sample] | None:
        """The last document's samples (parsed once), None once closed."""
        if self.closed:
            return None
        last = self._last
        if last is None:
            return []
        parsed = self._parsed
        if parsed is None or parsed[0] is not last:
            parsed = self._parsed = (last, librdkafka_stats.samples(last, group=self.group))
        return parsed[1]


def _kafka_python_reader(client: Any, group: str | None) -> Reader:
    held = weakref.ref(client)
    address = kafka_python_metrics.address_resolver(client)

    def read() -> list[Sample] | None:
        found = held()
        if found is None or getattr(found, "_closed", False):
            return None
        registry = found.metrics(raw=True)  # a copy of the dict, values from memory
        if not registry:
            return []
        return kafka_python_metrics.samples(registry, address, group=group)

    return read


def _confluent_reader(statistics: ConfluentStatistics) -> Reader:
    held = weakref.ref(statistics)

    def read() -> list[Sample] | None:
        found = held()
        return found.samples() if found is not None else None

    return read


class _Cap:
    """Which scope values of one metric have a series of their own."""

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._admitted: set[tuple[str, ...]] = set()
        self._lock = threading.Lock()  # two readers (a pull and a push one) may collect at once

    def admit(self, seen: set[tuple[str, ...]]) -> set[tuple[str, ...]]:
        """Values seen now keep their series; new ones get one while there is room (in sorted
        order, so a collection is repeatable); values no longer seen give theirs up."""
        with self._lock:
            return self._admit(seen)

    def _admit(self, seen: set[tuple[str, ...]]) -> set[tuple[str, ...]]:
        admitted = self._admitted & seen
        room = self._cap - len(admitted)
        for value in sorted(seen - admitted):
            if room <= 0:
                break
            admitted.add(value)
            room -= 1
        self._admitted = admitted
        return admitted


def _scope_attributes(metric: ClientMetric, scope: tuple[str, ...]) -> dict[str, AttributeValue]:
    if metric.scope == "broker":
        if scope == (cm.OTHER,):
            return {sc.SERVER_ADDRESS: cm.OTHER}
        host, _, port = scope[0].rpartition(":")
        if port.isdigit() and host:
            return {sc.SERVER_ADDRESS: host, sc.SERVER_PORT: int(port)}
        return {sc.SERVER_ADDRESS: scope[0]}
    if metric.scope == "topic":
        return {sc.MESSAGING_DESTINATION_NAME: scope[0]}
    if metric.scope == "partition":
        return {
            sc.MESSAGING_DESTINATION_NAME: scope[0],
            sc.MESSAGING_DESTINATION_PARTITION_ID: scope[1],
        }
    return {}


class _Registry:
    """The client-statistics instruments of one meter provider and the clients they read."""

    def __init__(self, meter_provider: metrics.MeterProvider) -> None:
        self._readers: list[Reader] = []
        self.observed: weakref.WeakSet[Any] = weakref.WeakSet()
        """The kafka-python clients already read (each once, however often it is wrapped)."""
        self.lock = threading.Lock()
        self._caps = {m.name: _Cap(cm.CAPS[m.scope]) for m in cm.ALL if m.scope in cm.CAPS}
        meter = meter_for(meter_provider)
        for metric in cm.ALL:
            create = (
                meter.create_observable_gauge
                if metric.instrument == "gauge"
                else meter.create_observable_counter
            )
            create(
                metric.name,
                callbacks=[functools.partial(self._observe, metric)],
                unit=metric.unit,
                description=metric.description,
            )

    def add(self, reader: Reader) -> None:
        with self.lock:
            self._readers.append(reader)

    def _samples(self, name: str) -> list[Sample]:
        with self.lock:
            readers = list(self._readers)
        out: list[Sample] = []
        gone: list[Reader] = []
        for reader in readers:
            try:
                found = reader()
            except Exception as exc:
                _errors.report("client statistics", exc)
                continue
            if found is None:
                gone.append(reader)
            else:
                out.extend(sample for sample in found if sample[0] == name)
        if gone:
            with self.lock:
                self._readers = [r for r in self._readers if r not in gone]
        return out

    def _observe(self, metric: ClientMetric, options: CallbackOptions) -> Iterable[Observation]:
        try:
            return self._observations(metric, self._samples(metric.name))
        except Exception as exc:
            _errors.report("client statistics", exc)
            return []

    def _observations(self, metric: ClientMetric, samples: list[Sample]) -> list[Observation]:
        cap = self._caps.get(metric.name)
        admitted = cap.admit({s[2] for s in samples}) if cap is not None else None
        other = (cm.OTHER, cm.OTHER) if metric.scope == "partition" else (cm.OTHER,)
        combined: dict[tuple[tuple[tuple[str, AttributeValue], ...], tuple[str, ...]], float] = {}
        for _, base, scope, value in samples:
            bounded = scope if admitted is None or scope in admitted else other
            key = (base, bounded)
            if key not in combined:
                combined[key] = value
            elif metric.combine == "sum":
                combined[key] += value
            else:
                combined[key] = max(combined[key], value)
        out: list[Observation] = []
        for (base, bounded), value in combined.items():
            attributes: dict[str, AttributeValue] = dict(base)
            attributes.update(_scope_attributes(metric, bounded))
            out.append(Observation(value, attributes))
        return out


_registries: Final[ProviderCache[_Registry]] = ProviderCache(_Registry)


def observe_kafka_python(
    client: Any, *, group: str | None = None, meter_provider: metrics.MeterProvider | None = None
) -> None:
    """Report a kafka-python ``KafkaProducer``'s or ``KafkaConsumer``'s statistics until it is
    closed or garbage-collected (once, however often this is called for it)."""
    registry = _registries.get(meter_provider)
    with registry.lock:
        if client in registry.observed:
            return
        registry.observed.add(client)
    registry.add(_kafka_python_reader(client, group))


def confluent_config(
    config: Mapping[str, Any],
    *,
    group: str | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> tuple[dict[str, Any], ConfluentStatistics]:
    """``config`` with kafkascope's ``stats_cb`` (chained with the one ``config`` names, called
    only when ``config`` also asks for statistics) and, when unset, a statistics interval.

    Returns:
        The new configuration and its statistics callback (set ``closed`` as the client
        closes).
    """
    out = dict(config)
    interval = out.get("statistics.interval.ms")
    asked = interval is not None and str(interval).strip() not in ("", "0")
    chained = out.get("stats_cb") if asked else None
    statistics = ConfluentStatistics(chained, group)
    out["stats_cb"] = statistics
    if not asked:
        out["statistics.interval.ms"] = STATISTICS_INTERVAL_MS
    _registries.get(meter_provider).add(_confluent_reader(statistics))
    return out, statistics


def confluent_client_args(
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    consumer: bool,
    meter_provider: metrics.MeterProvider | None,
) -> tuple[tuple[Any, ...], dict[str, Any], ConfluentStatistics | None]:
    """A confluent-kafka ``Producer``/``Consumer``'s constructor arguments with kafkascope's
    ``stats_cb`` (:func:`confluent_config`); unchanged when they are not one configuration
    dict (and keyword settings), or when that fails (reported, never raised)."""
    if len(args) > 1 or (args and not isinstance(args[0], dict)):
        return args, kwargs, None
    try:
        config = {**(args[0] if args else {}), **kwargs}
        group = config.get("group.id") if consumer else None
        new, statistics = confluent_config(
            config, group=group if isinstance(group, str) else None, meter_provider=meter_provider
        )
    except Exception as exc:
        _errors.report("confluent-kafka client statistics", exc)
        return args, kwargs, None
    return (new,), {}, statistics


def observe_client_statistics(
    client: Any, *, meter_provider: metrics.MeterProvider | None = None
) -> None:
    """Report a kafka-python client's own statistics as ``kafkascope.client.*`` metrics.

    Needed only for a client that neither ``opentelemetry-instrument`` nor a
    :class:`~kafkascope.TracedProducer` already reports (they do while client statistics are
    on). The statistics are read from ``client.metrics()`` when metrics are collected: nothing
    per message, no request to the broker. The client is held weakly; once closed or
    garbage-collected it is no longer reported. Calling this twice for one client reports it
    once. For confluent-kafka, see :func:`client_statistics_config`; aiokafka keeps no
    statistics.

    Args:
        client: a kafka-python ``KafkaProducer`` or ``KafkaConsumer``.
        meter_provider: default, the global one.

    Raises:
        TypeError: ``client`` has no ``metrics()``.
    """
    if not callable(getattr(client, "metrics", None)) or not hasattr(client, "config"):
        raise TypeError(
            "observe_client_statistics() takes a kafka-python KafkaProducer or KafkaConsumer, "
            f"got {type(client).__qualname__}"
        )
    config = client.config if isinstance(client.config, dict) else {}
    group = config.get("group_id") if hasattr(client, "_coordinator") else None
    observe_kafka_python(
        client, group=group if isinstance(group, str) else None, meter_provider=meter_provider
    )


def client_statistics_config(
    config: Mapping[str, Any],
    *,
    meter_provider: metrics.MeterProvider | None = None,
) -> dict[str, Any]:
    """A confluent-kafka configuration that reports the client's statistics as
    ``kafkascope.client.*`` metrics: pass the result to ``Producer(...)``/``Consumer(...)``.

    Needed only for clients that ``opentelemetry-instrument`` does not make (its
    ``Producer`` and ``Consumer`` do this themselves while client statistics are on).
    librdkafka's statistics JSON goes to kafkascope's ``stats_cb`` on the thread that polls
    the client; the last one is read when metrics are collected, so collecting never calls
    the client. Your own ``stats_cb`` keeps receiving every document unchanged when
    ``statistics.interval.ms`` is set; without it, the interval becomes 5000 ms and only
    kafkascope reads the statistics. The client is held weakly (through its callback): its
    series go when it is garbage-collected.

    Args:
        config: the client's configuration (not modified).
        meter_provider: default, the global one.

    Returns:
        A copy of ``config`` with ``stats_cb`` and ``statistics.interval.ms``.

    Raises:
        TypeError: ``config`` is not a mapping.
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict of librdkafka settings, got {config!r}")
    group = config.get("group.id")
    new, _ = confluent_config(
        config, group=group if isinstance(group, str) else None, meter_provider=meter_provider
    )
    return new
