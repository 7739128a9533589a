"""Consumer lag in seconds, estimated from what the process already knows: no broker request.

For each assigned partition the collection callback of ``kafkascope.consumer.lag`` also reports
``kafkascope.consumer.time_lag``: how long ago the oldest record not yet processed (the one at the
consumer's position) was written.

How it is estimated, per ``(group, topic, partition)``:

- lag 0 (position at the high-water mark): 0, and the collection time is remembered as the
  partition's last *caught-up* time;
- lag > 0: ``now - max(newest timestamp processed, last caught-up time)``. Every record from the
  position onwards was written after the record processed before it and after the moment the
  consumer was last seen caught up, so this is an **upper bound** of the true time lag. It is
  exact when the next record followed the last processed one closely (a steady stream), and
  over-reads by the idle gap before the next record when a quiet partition gets its first record
  (the estimate then falls back as soon as it is processed or the consumer is caught up again).
  The caught-up time itself may be late by up to one fetch interval (the high-water mark is the
  one of the last fetch response, ``fetch.max.wait`` 500 ms by default), which can make the
  estimate low by at most that much.
- lag > 0 with neither a processed record nor a caught-up observation since the process started
  (a consumer stuck on its very first record): no value. A gauge that says nothing is better than
  one that invents an age; the message-count gauge still shows the backlog.

Timestamps: with ``LogAppendTime`` topics the timestamp is the broker's clock when it stored the
record, monotonic within a partition, so the bound above holds up to the skew between the broker's
clock and this host's. With ``CreateTime`` topics it is the producer's clock: records of several
producers may be out of order by their clock skew, and the estimate is off by as much. A negative
age (a clock ahead of this host's) reads as 0.

The processed timestamps are noted by every process span (:func:`note_processed`, one dictionary
update per message, bounded to :data:`MAX_PARTITIONS` keys) once an estimator exists
(:data:`noting`): a process that observes no consumer's lag pays nothing for it, and one that
starts observing late has no estimate for a partition until its next record is processed or it
is seen caught up.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Final

from kafkascope._adapters.records import RecordView
from kafkascope._core import errors as _errors

MAX_PARTITIONS: Final = 65536
"""Distinct ``(group, topic, partition)`` keys whose newest processed timestamp is kept."""

PartitionKey = tuple[str | None, str, int]

_newest: dict[PartitionKey, int] = {}
"""Newest record timestamp (ms) processed, per ``(group, topic, partition)``."""

noting = False
"""Whether process spans note their records' timestamps: from the first
:class:`TimeLagEstimator` on (a lag observer's), since nothing reads them before."""


def note_processed(group: str | None, records: Sequence[RecordView]) -> None:
    """Remember the timestamps of records whose processing starts (the message path: cheap).
    Never raises."""
    try:
        for record in records:
            note_one(group, record)
    except Exception as exc:  # an iterable that raises
        _errors.report("consumer time lag", exc)


def note_one(group: str | None, record: RecordView) -> None:
    """:func:`note_processed` for one record. Never raises."""
    ts = record.timestamp_ms
    topic = record.topic
    partition = record.partition
    if ts is None or topic is None or partition is None:
        return
    key = (group, topic, partition)
    try:
        old = _newest.get(key)
        if old is None:
            if len(_newest) < MAX_PARTITIONS:
                _newest[key] = ts
        elif ts > old:
            _newest[key] = ts
    except Exception as exc:  # an unhashable group
        _errors.report("consumer time lag", exc)


class TimeLagEstimator:
    """One consumer's caught-up times, updated at collection time only."""

    def __init__(self) -> None:
        global noting
        noting = True
        self._caught_up: dict[tuple[str, int], float] = {}

    def estimates(
        self,
        group: str | None,
        lags: Iterable[tuple[str, int, int]],
        now_ms: float | None = None,
    ) -> list[tuple[str, int, float]]:
        """``(topic, partition, seconds)`` for the partitions with an estimate; partitions no
        longer assigned are forgotten."""
        if now_ms is None:
            now_ms = time.time() * 1000.0
        out: list[tuple[str, int, float]] = []
        seen: set[tuple[str, int]] = set()
        for topic, partition, lag in lags:
            tp = (topic, partition)
            seen.add(tp)
            if lag <= 0:
                self._caught_up[tp] = now_ms
                out.append((topic, partition, 0.0))
                continue
            processed = _newest.get((group, topic, partition))
            caught_up = self._caught_up.get(tp)
            known = [t for t in (processed, caught_up) if t is not None]
            if not known:
                continue
            out.append((topic, partition, max(0.0, now_ms - max(known)) / 1000.0))
        for tp in [tp for tp in self._caught_up if tp not in seen]:
            del self._caught_up[tp]
        return out
