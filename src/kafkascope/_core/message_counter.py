"""Message counts summed in process and reported through an observable counter."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.util.types import Attributes

from kafkascope._core.histogram_streams import Tally


class MessageCounter:
    """A monotonic ``{message}`` counter summed in process and reported through an observable
    counter: one dictionary update per message instead of one SDK measurement, with the same
    exported data (a cumulative sum per attribute set)."""

    def __init__(
        self,
        meter: metrics.Meter,
        name: str,
        description: str,
        lock: threading.Lock | None = None,
        before_read: Callable[[], None] | None = None,
    ) -> None:
        """``lock``: shared with the pre-aggregated histograms, which then count a single
        message's entry (:meth:`bind`) under their own lock; ``before_read``: what they call
        under it to count what is pending before the totals are reported."""
        self._totals: dict[Hashable, Tally] = {}
        self._lock = lock or threading.Lock()
        self._before_read = before_read
        meter.create_observable_counter(
            name, callbacks=[self._observe], unit="{message}", description=description
        )

    def add(self, amount: int, key: Hashable, attributes: Attributes) -> None:
        """Count ``amount`` messages for the attribute set ``key``."""
        with self._lock:
            entry = self._totals.get(key)
            if entry is None:
                self._totals[key] = Tally(attributes, amount, True)
            else:
                entry.total += amount
                entry.counted = True

    def bind(self, key: Hashable, attributes: Attributes) -> Tally:
        """The running total of the attribute set ``key``, counted by the pre-aggregated
        histograms under the lock they share (reported once something was counted)."""
        with self._lock:
            entry = self._totals.get(key)
            if entry is None:
                entry = self._totals[key] = Tally(attributes, 0, False)
            return entry

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            if self._before_read is not None:
                self._before_read()
            entries = [(e.attributes, e.total) for e in self._totals.values() if e.counted]
        return [Observation(total, attrs) for attrs, total in entries]
