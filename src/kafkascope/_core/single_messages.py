"""Single messages' measurements, appended per message and aggregated in bulk.

A handler of one message at a time records two histogram measurements (processing time, time
in queue) and one count per message. Taken one by one under the pre-aggregation's lock they
were the largest part of an unsampled message's path (about 13,000 callgrind instructions); a
value appended to a list (atomic under the GIL: no lock, and no object the garbage collector
tracks) costs a fraction of that, and folding a hundred values at once (sorted, summed and
bucketed in C over the whole list) little more per value.

The exported points are those of recording each measurement at once: a fold adds the values
in the order they were appended (a sum value by value, as the SDK adds them), and
:class:`~kafkascope._core.histograms.PreAggregation` folds what is pending before any other
measurement and before every collection.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from functools import reduce
from operator import add
from typing import Final, TypeVar

from kafkascope._core.histogram_streams import Bound, Offered, Tally

_T = TypeVar("_T")

FOLD_AT: Final = 128
"""Messages a :class:`Singles` keeps before it is folded (besides at every collection)."""


class Singles:
    """The single messages of one processing-time stream and one time-in-queue stream (or
    none), each counted in ``count``: their values appended to :attr:`durations` and
    :attr:`waits`, the exemplars of sampled ones to :attr:`offered`, aggregated by
    :meth:`fold`."""

    __slots__ = ("count", "durations", "offered", "processed", "waited", "waits")

    def __init__(self, processed: Bound, waited: Bound | None, count: Tally | None) -> None:
        self.processed = processed
        self.waited = waited
        self.count = count
        self.durations: list[float] = []
        self.waits: list[float] = []
        self.offered: list[tuple[Offered, Offered | None]] = []

    def fold(self) -> None:
        """Aggregate the values appended so far into their streams; under the
        pre-aggregation's lock. Each list is taken as far as it was filled: what other threads
        append meanwhile stays, in order, for the next fold."""
        durations = _take(self.durations)
        offered = _take(self.offered)
        aggregate(self.processed, durations, [o[0] for o in offered])
        if durations and self.count is not None:
            self.count.total += len(durations)
            self.count.counted = True
        if self.waited is not None:
            waits = _take(self.waits)
            aggregate(self.waited, waits, [o[1] for o in offered if o[1] is not None])


def _take(values: list[_T]) -> list[_T]:
    size = len(values)
    taken = values[:size]
    del values[:size]
    return taken


def aggregate(bound: Bound, values: list[float], offered: list[Offered]) -> None:
    """Count ``values`` (in the order measured) and keep the ``offered`` exemplars in each of
    ``bound``'s streams, as measuring each value at once would."""
    boundaries, streams = bound
    ordered = sorted(values)
    if values and (not math.isfinite(sum(values)) or ordered[0] < 0.0):
        # Values the SDK ignores too (negative, not finite) are left out.
        values = [v for v in values if 0.0 <= v < math.inf]
        ordered = sorted(values)
    if offered:
        offered = [o for o in offered if 0.0 <= o[0] < math.inf]
        for stream in streams:
            for exemplar in offered:  # the last one of a bucket stays, as at once
                stream.exemplars[bisect_left(boundaries, exemplar[0])] = exemplar
    if not values:
        return
    # Bucket i holds the values in (boundaries[i - 1], boundaries[i]]: counted from how many
    # of the sorted values are at most each boundary.
    at_most = [bisect_right(ordered, bound) for bound in boundaries]
    at_most.append(len(ordered))
    low = ordered[0]
    high = ordered[-1]
    for stream in streams:
        counts = stream.counts
        below = 0
        for index, upto in enumerate(at_most):
            if upto != below:
                counts[index] += upto - below
                below = upto
        stream.sum = reduce(add, values, stream.sum)
        if low < stream.min:
            stream.min = low
        if high > stream.max:
            stream.max = high
