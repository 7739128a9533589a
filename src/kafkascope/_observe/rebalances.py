"""Rebalances: each partition assignment and revocation as a log record and a count, and the
partitions assigned to the process's consumers as a gauge.

One :class:`RebalanceObserver` per consumer keeps what its rebalance callbacks said; the
listeners that call it are in :mod:`kafkascope._observe.rebalance_listeners`.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Final

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from kafkascope._adapters import confluent
from kafkascope._adapters.clients import client_id_of, client_of, group_of, member_id_of
from kafkascope._adapters.consumer import hold
from kafkascope._core import errors as _errors
from kafkascope._core import semconv as sc
from kafkascope._core.telemetry import ProviderCache, messaging_attributes, meter_for

logger = logging.getLogger("kafkascope.rebalance")

Partition = tuple[str, int]


class _Instruments:
    """The rebalance counter and the assigned-partitions gauge of one meter provider."""

    def __init__(self, meter_provider: metrics.MeterProvider) -> None:
        meter = meter_for(meter_provider)
        self.rebalances = meter.create_counter(
            sc.REBALANCES,
            unit="{rebalance}",
            description="Partition assignments and revocations of the process's consumers.",
        )
        self._observers: list[RebalanceObserver] = []
        self._lock = threading.Lock()
        meter.create_observable_gauge(
            sc.ASSIGNED_PARTITIONS,
            callbacks=[self._observe],
            unit="{partition}",
            description="Partitions currently assigned to the process's consumers.",
        )

    def add(self, observer: RebalanceObserver) -> None:
        with self._lock:
            self._observers.append(observer)

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            self._observers = [o for o in self._observers if o.alive()]
            observers = list(self._observers)
        totals: dict[tuple[str | None, str | None, str], int] = {}
        for observer in observers:
            for topic, _ in observer.partitions():
                key = (observer.group, observer.client_id, topic)
                totals[key] = totals.get(key, 0) + 1
            for topic in observer.emptied():
                totals.setdefault((observer.group, observer.client_id, topic), 0)
        out = []
        for (group, client_id, topic), count in totals.items():
            attrs = messaging_attributes(topic=topic, group=group, client_id=client_id)
            out.append(Observation(count, attrs))
        return out


_instruments: Final[ProviderCache[_Instruments]] = ProviderCache(_Instruments)


def known(fields: dict[str, object]) -> dict[str, object]:
    """Log ``extra`` fields without the unknown ones (None is not an attribute value)."""
    return {name: value for name, value in fields.items() if value is not None}


def _partitions(partitions: Iterable[Any]) -> list[Partition]:
    return sorted((str(tp.topic), int(tp.partition)) for tp in partitions)


class RebalanceObserver:
    """What one consumer has been assigned, as its rebalance callbacks said."""

    def __init__(
        self,
        consumer: Any,
        *,
        group: str | None,
        meter_provider: metrics.MeterProvider | None,
    ) -> None:
        self._consumer: Callable[[], Any] = hold(consumer)
        self.group = group if group is not None else group_of(consumer)
        self.client_id = client_id_of(consumer)
        self._assigned: set[Partition] = set()
        self._emptied: set[str] = set()
        self._lock = threading.Lock()
        self._instruments = _instruments.get(meter_provider)
        self._instruments.add(self)

    def alive(self) -> bool:
        """False once the consumer is gone or closed: its partitions are then not reported.

        A confluent-kafka consumer is seen closed through kafkascope's instrumented
        ``Consumer``, which carries a snapshot (:mod:`kafkascope._adapters.confluent`); a plain
        one is held until the process ends (its close revokes its partitions, so it reports
        none).
        """
        consumer = self._consumer()
        if consumer is None or getattr(consumer, "_closed", False) is True:
            return False
        if client_of(consumer) == confluent.NAME:
            # Never called from here: another thread's call waits while the consumer is polled.
            snapshot = confluent.own_snapshot(consumer)
            if snapshot is not None and snapshot.current.closed:
                self._consumer = lambda: None
                return False
        return True

    def partitions(self) -> list[Partition]:
        """The partitions assigned now."""
        with self._lock:
            return list(self._assigned)

    def emptied(self) -> set[str]:
        """Topics of which no partition is assigned any more (reported as 0 until then)."""
        with self._lock:
            emptied, self._emptied = self._emptied, set()
            return emptied - {topic for topic, _ in self._assigned}

    def assigned(self, partitions: Iterable[Any]) -> None:
        """Partitions were assigned (added to the assignment). Never raises."""
        self._record(sc.REBALANCE_ASSIGNED, partitions)

    def revoked(self, partitions: Iterable[Any], *, lost: bool = False) -> None:
        """Partitions were revoked (or lost). Never raises."""
        self._record(sc.REBALANCE_REVOKED, partitions, lost=lost)

    def _record(self, kind: str, partitions: Iterable[Any], *, lost: bool = False) -> None:
        try:
            changed = _partitions(partitions)
            with self._lock:
                if kind == sc.REBALANCE_ASSIGNED:
                    self._assigned.update(changed)
                else:
                    self._assigned.difference_update(changed)
                    self._emptied.update(topic for topic, _ in changed)
            if not changed:
                return
            consumer = self._consumer()
            member = member_id_of(consumer) if consumer is not None else None
            attrs = messaging_attributes(group=self.group, client_id=self.client_id)
            attrs[sc.REBALANCE_TYPE] = kind
            self._instruments.rebalances.add(1, attrs)
            listed = [f"{topic}-{partition}" for topic, partition in changed]
            logger.info(
                "kafkascope: consumer group %s member %s %s partitions %s",
                self.group,
                member,
                "lost" if lost else kind,
                ", ".join(listed),
                extra=known(
                    {
                        sc.MESSAGING_CONSUMER_GROUP_NAME: self.group,
                        sc.CONSUMER_MEMBER_ID: member,
                        sc.REBALANCE_TYPE: kind,
                        sc.REBALANCE_PARTITIONS: listed,
                    }
                ),
            )
        except Exception as exc:
            _errors.report("rebalance", exc)


_observers: weakref.WeakKeyDictionary[Any, RebalanceObserver] = weakref.WeakKeyDictionary()
_strong: dict[int, tuple[Any, RebalanceObserver]] = {}
_lock = threading.Lock()


def observer_for(
    consumer: Any, *, group: str | None, meter_provider: metrics.MeterProvider | None
) -> RebalanceObserver:
    """The one observer of ``consumer`` (a second ``subscribe()`` keeps counting into it)."""
    with _lock:
        try:
            found = _observers.get(consumer)
        except TypeError:
            pair = _strong.get(id(consumer))
            found = pair[1] if pair is not None and pair[0] is consumer else None
        if found is None or not found.alive():
            found = RebalanceObserver(consumer, group=group, meter_provider=meter_provider)
            try:
                _observers[consumer] = found
            except TypeError:
                for key in [k for k, (_, o) in _strong.items() if not o.alive()]:
                    del _strong[key]
                _strong[id(consumer)] = (consumer, found)
        return found
