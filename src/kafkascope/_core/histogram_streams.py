"""What the in-process histograms keep per attribute set: a stream of one histogram for one
reader, the exemplars offered to it, a running message count."""

from __future__ import annotations

import math

from opentelemetry.util.types import Attributes

Offered = tuple[float, int, int | None, int | None]
"""A sampled measurement: value, time, span id and trace id (an exemplar once collected)."""


class Stream:
    """One attribute set of one histogram, for one reader."""

    __slots__ = ("attributes", "counts", "exemplars", "max", "min", "start_ns", "sum")

    def __init__(self, attributes: Attributes, buckets: int, start_ns: int) -> None:
        self.attributes = attributes
        self.start_ns = start_ns
        self.counts = [0] * buckets
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.exemplars: dict[int, Offered] = {}


class Tally:
    """A running count of messages for one attribute set (a
    :class:`~kafkascope._core.message_counter.MessageCounter` entry): reported once ``counted``."""

    __slots__ = ("attributes", "counted", "total")

    def __init__(self, attributes: Attributes, total: int, counted: bool) -> None:
        self.attributes = attributes
        self.total = total
        self.counted = counted


Bound = tuple[tuple[float, ...], tuple[Stream, ...]]
"""One attribute set of one histogram, bound once: the bucket boundaries and the set's stream
in each reader's table (see :meth:`~kafkascope._core.histograms.PreAggregation.bind`)."""
