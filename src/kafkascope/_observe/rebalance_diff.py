"""Rebalances told by a consumer's assignment changing between two polls, for zero-code consumers
that have no rebalance listener of kafkascope's.

After each poll the consumer's assignment is compared with the one seen after the previous
poll; only when it differs are the partitions that left (revoked) and those that arrived
(assigned) handed to the consumer's
:class:`~kafkascope._observe.rebalances.RebalanceObserver`, so the
log records, counter and gauge are the listener path's. What is seen is the net change between
two polls: partitions revoked and assigned back in one round do not show.

One source per consumer: while a kafkascope listener is the consumer's rebalance listener (the
application's own, wrapped by zero-code ``subscribe()``, or :func:`traced_rebalance_listener`),
that listener reports and the comparison only keeps its baseline current.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Set
from typing import Any

from opentelemetry import metrics
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from kafkascope._core import errors as _errors
from kafkascope._observe.rebalances import observer_for

Assignment = Callable[[Any], Set[Any]]
"""``consumer -> the partitions its group assigned it now`` (objects with ``topic`` and
``partition``); read from the client's memory, no broker request."""
Listened = Callable[[Any], bool]
"""``consumer -> True`` while a kafkascope rebalance listener reports its rebalances."""

_NOTHING: frozenset[Any] = frozenset()


class AssignmentDiffs:
    """The assignment each consumer had after its last poll, held weakly."""

    def __init__(
        self,
        assignment: Assignment,
        listened: Listened,
        meter_provider: metrics.MeterProvider | None,
    ) -> None:
        self._assignment = assignment
        self._listened = listened
        self._meter_provider = meter_provider
        self._seen: weakref.WeakKeyDictionary[Any, frozenset[Any]] = weakref.WeakKeyDictionary()

    def polled(self, consumer: Any) -> None:
        """After a poll: record what changed in ``consumer``'s assignment. Never raises."""
        if not is_instrumentation_enabled():
            return
        try:
            self._update(consumer, self._assignment(consumer))
        except Exception as exc:
            _errors.report("rebalance diff", exc)

    def leaving(self, consumer: Any) -> None:
        """Before ``close()`` or ``unsubscribe()``: every partition is revoked (recorded before
        the call, while the member id is still known). Never raises."""
        if not is_instrumentation_enabled():
            return
        try:
            self._update(consumer, _NOTHING)
        except Exception as exc:
            _errors.report("rebalance diff", exc)

    def _update(self, consumer: Any, current: Set[Any]) -> None:
        last = self._seen.get(consumer, _NOTHING)
        if current == last:
            return
        new = frozenset(current)
        self._seen[consumer] = new
        if self._listened(consumer):
            return
        observer = observer_for(consumer, group=None, meter_provider=self._meter_provider)
        revoked, assigned = last - new, new - last
        if revoked:
            observer.revoked(revoked)
        if assigned:
            observer.assigned(assigned)
