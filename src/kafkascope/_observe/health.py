"""Consumer health for liveness and readiness probes: a small HTTP endpoint on 127.0.0.1.

Each request evaluates the consumer from its own in-memory state (no broker round-trip) and
answers 200 when it is healthy, 503 when it is not, with a JSON body saying why:

- no partitions assigned for longer than ``unassigned_after`` seconds (a kafka-python member in
  an eager rebalance holds none: one whose rebalance never ends is unhealthy);
- no progress (no partition's position went past the furthest one seen) for longer than
  ``no_progress_after`` seconds while the lag grew;
- the poll loop stalled: no ``poll()`` for longer than ``stalled_after`` seconds.

The time of the last poll comes from the client's own bookkeeping where it keeps one
(kafka-python's group coordinator records every ``poll()`` for ``max.poll.interval.ms``,
aiokafka's subscription state every ``getone()``/``getmany()``), and from
:meth:`ConsumerHealth.beat`, which a poll loop may call instead or as well: the later of the
two counts. confluent-kafka records none: kafkascope's instrumented ``Consumer`` beats on each
``poll()``/``consume()``; a plain one needs ``beat()`` in the loop. kafkascope never wraps the
user's loop. The readers of each client are in :mod:`kafkascope._adapters`, the HTTP side in
:mod:`kafkascope._observe.health_server`.
"""

from __future__ import annotations

import json
import threading
import time
from types import TracebackType
from typing import Any, Final

from kafkascope._adapters.clients import reader_for
from kafkascope._adapters.consumer import CLOSED, ConsumerState, Partition, hold
from kafkascope._core import errors as _errors
from kafkascope._observe.health_server import ProbeServer

ATTACHED: Final = "_kafkascope_health"
"""The attribute of kafkascope's instrumented confluent-kafka ``Consumer`` (see
:mod:`kafkascope._clients.confluent`) through which its ``poll()`` calls :meth:`beat`."""


class ConsumerHealth:
    """The health endpoint of one consumer, started by :func:`observe_health`.

    Attributes:
        url: the endpoint, ``http://{host}:{port}/`` (every path answers GET and HEAD).
        port: the port it listens on (the one asked for, or the free one chosen for ``0``).
    """

    def __init__(
        self,
        consumer: Any,
        *,
        host: str,
        port: int,
        unassigned_after: float,
        no_progress_after: float,
        stalled_after: float,
    ) -> None:
        self._reader = reader_for(consumer, needed_by="observe_health")
        self._consumer = hold(consumer)
        self._unassigned_after = unassigned_after
        self._no_progress_after = no_progress_after
        self._stalled_after = stalled_after
        self._lock = threading.Lock()
        now = time.monotonic()
        self._started = self._assigned_at = self._progress_at = now
        self._beat: float | None = None
        self._furthest: dict[Partition, int] = {}
        self._lag_at_progress = 0
        self._server = ProbeServer(host, port, self._answer)
        self.port: int = self._server.port
        self.url = f"http://{host}:{self.port}/"
        if hasattr(type(consumer), ATTACHED):
            setattr(consumer, ATTACHED, self)

    def beat(self) -> None:
        """Record that the poll loop is alive (call it once per turn of the loop, on its thread).

        Never raises. kafkascope's instrumented confluent-kafka ``Consumer`` calls it itself.
        """
        now = self._beat = time.monotonic()
        consumer = self._consumer()
        if consumer is None:
            return
        try:
            self._reader.beat(consumer, now)
        except Exception as exc:
            _errors.report("consumer health", exc)

    def check(self) -> tuple[bool, dict[str, Any]]:
        """Evaluate the consumer now: ``(healthy, report)``, the report being the JSON body."""
        with self._lock:
            return self._check(time.monotonic())

    def _answer(self) -> tuple[int, bytes]:
        try:
            healthy, report = self.check()
            status = 200 if healthy else 503
        except Exception as exc:
            status, report = 500, {"healthy": False, "reasons": [f"check failed: {exc!r}"]}
            _errors.report("consumer health", exc)
        return status, json.dumps(report).encode()

    def _read(self) -> ConsumerState:
        consumer = self._consumer()
        if consumer is None:
            return CLOSED
        return self._reader.read(consumer)

    def _check(self, now: float) -> tuple[bool, dict[str, Any]]:
        reading = self._read()
        if reading.closed:
            return False, {"healthy": False, "reasons": ["consumer closed"]}
        # In an eager rebalance the revoked partitions are still listed until the new
        # assignment: a member stuck there holds nothing.
        held = {} if reading.rebalancing else reading.partitions
        positions = {tp: r.known for tp, r in held.items()}
        lag = sum(r.lag(r.known) for r in held.values())
        reasons: list[str] = []
        if positions:
            self._assigned_at = now
        elif now - self._assigned_at > self._unassigned_after:
            during = " (a rebalance in progress)" if reading.rebalancing else ""
            reasons.append(f"no partitions assigned for {now - self._assigned_at:.1f}s{during}")
        advanced = [tp for tp, at in positions.items() if at > self._furthest.get(tp, -2)]
        for tp in advanced:
            self._furthest[tp] = positions[tp]
        if advanced:
            self._progress_at, self._lag_at_progress = now, lag
        stuck = now - self._progress_at
        if positions and stuck > self._no_progress_after and lag > self._lag_at_progress:
            reasons.append(
                f"no progress for {stuck:.1f}s while the lag grew from "
                f"{self._lag_at_progress} to {lag}"
            )
        polls = [t for t in (reading.last_poll, self._beat) if t is not None]
        last_poll = max(polls, default=self._started)
        if now - last_poll > self._stalled_after:
            reasons.append(self._stalled(now - last_poll, seen=bool(polls)))
        report = {
            "healthy": not reasons,
            "reasons": reasons,
            "assigned_partitions": len(positions),
            "lag": lag,
            "seconds_since_poll": round(now - last_poll, 3),
            "seconds_since_progress": round(stuck, 3),
        }
        return not reasons, report

    def _stalled(self, idle: float, *, seen: bool) -> str:
        reason = f"poll loop stalled: no poll for {idle:.1f}s"
        hint = self._reader.polls_seen_by
        return reason if seen or hint is None else f"{reason} (polls are {hint})"

    def close(self) -> None:
        """Stop answering, end open connections and free the port (the consumer is left as it
        is)."""
        self._server.close()
        consumer = self._consumer()
        if consumer is not None and getattr(consumer, ATTACHED, None) is self:
            setattr(consumer, ATTACHED, None)

    def __enter__(self) -> ConsumerHealth:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a number of seconds above 0, not {value!r}")
    return float(value)


def observe_health(
    consumer: Any,
    *,
    port: int,
    host: str = "127.0.0.1",
    unassigned_after: float = 60.0,
    no_progress_after: float = 120.0,
    stalled_after: float = 60.0,
) -> ConsumerHealth:
    """Serve ``consumer``'s health over HTTP for probes: 200 healthy, 503 not, with a JSON reason.

    The endpoint runs on daemon threads until :meth:`ConsumerHealth.close`, one per connection,
    so a client that connects and stays silent never delays a probe (it is dropped after 5 s).
    Each GET or HEAD reads the consumer's assignment, positions and lag from its memory and the
    time of its last poll (the client's bookkeeping, or :meth:`ConsumerHealth.beat`), never the
    broker.

    Args:
        consumer: a kafka-python ``KafkaConsumer``, confluent-kafka ``Consumer`` or aiokafka
            ``AIOKafkaConsumer`` (read from the endpoint's thread, never awaited). A
            confluent-kafka consumer is read on its poll loop's thread only, in
            :meth:`ConsumerHealth.beat`: kafkascope's instrumented ``Consumer`` beats on each
            poll, a plain one must call ``beat()`` in its loop.
        port: the port to listen on; ``0`` picks a free one (see :attr:`ConsumerHealth.port`).
        host: the address to bind; 127.0.0.1 unless the probe comes from elsewhere.
        unassigned_after: unhealthy when no partition has been assigned for this long.
        no_progress_after: unhealthy when no position advanced for this long while lag grew.
        stalled_after: unhealthy when the consumer has not polled for this long.

    Returns:
        The running endpoint: ``check()`` gives the current answer, ``beat()`` notes a poll,
        ``close()`` stops it.

    Examples:
        ```python
        health = kafkascope.observe_health(consumer, port=8080)  # GET / -> 200 or 503
        ```

    Raises:
        ValueError: a threshold is not a positive number of seconds, or ``port`` is not 0-65535.
        TypeError: ``consumer`` is of a client kafkascope cannot read.
        OSError: the address cannot be bound (the port is taken).
    """
    thresholds = {
        "unassigned_after": _positive("unassigned_after", unassigned_after),
        "no_progress_after": _positive("no_progress_after", no_progress_after),
        "stalled_after": _positive("stalled_after", stalled_after),
    }
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be 0-65535, not {port!r}")
    return ConsumerHealth(consumer, host=host, port=port, **thresholds)
