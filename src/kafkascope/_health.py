"""Consumer health for liveness and readiness probes: a small HTTP endpoint on 127.0.0.1.

Each request evaluates the consumer from its own in-memory state (no broker round-trip) and
answers 200 when it is healthy, 503 when it is not, with a JSON body saying why:

- no partitions assigned for longer than ``unassigned_after`` seconds;
- no progress (no partition's position went past the furthest one seen) for longer than
  ``no_progress_after`` seconds while the lag grew;
- the poll loop stalled: no ``poll()`` for longer than ``stalled_after`` seconds.

The time of the last poll comes from the client's own bookkeeping where it keeps one
(kafka-python's group coordinator records every ``poll()`` for ``max.poll.interval.ms``), and
from :meth:`ConsumerHealth.beat`, which a poll loop may call instead or as well: the later of
the two counts. kafkascope never wraps the user's loop.
"""

from __future__ import annotations

import http.server
import json
import math
import threading
import time
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any

from kafkascope import _errors

Partition = tuple[str, int]


def _kafka_python_state(consumer: Any) -> tuple[dict[Partition, int], int]:
    """Positions of the assigned partitions and their summed lag (subscription state only)."""
    positions: dict[Partition, int] = {}
    lag = 0
    for tp, state in list(consumer._subscription.assignment.items()):
        position = state.position
        if position is None:
            positions[(tp.topic, tp.partition)] = -1
            continue
        offset = int(getattr(position, "offset", position))
        positions[(tp.topic, tp.partition)] = offset
        if state.highwater is not None:
            lag += max(0, int(state.highwater) - offset)
    return positions, lag


def _kafka_python_last_poll(consumer: Any) -> float | None:
    """``time.monotonic()`` of the last ``poll()``, kept by kafka-python's group coordinator."""
    heartbeat = getattr(getattr(consumer, "_coordinator", None), "heartbeat", None)
    last = getattr(heartbeat, "last_poll", None)
    return float(last) if isinstance(last, (int, float)) and math.isfinite(last) else None


def _readers(consumer: Any) -> tuple[Callable[[Any], Any], Callable[[Any], float | None]]:
    aiokafka = any(c.__module__.startswith("aiokafka") for c in type(consumer).__mro__)
    if hasattr(consumer, "_subscription") and hasattr(consumer, "_coordinator") and not aiokafka:
        return _kafka_python_state, _kafka_python_last_poll
    raise TypeError(
        f"observe_health does not know how to read {type(consumer).__qualname__}; "
        "supported: kafka-python KafkaConsumer"
    )


class ConsumerHealth:
    """The health endpoint of one consumer, started by :func:`observe_health`.

    Attributes:
        url: the endpoint, ``http://{host}:{port}/`` (every GET path answers).
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
        self._state, self._client_last_poll = _readers(consumer)
        self._consumer = weakref.ref(consumer)
        self._unassigned_after = unassigned_after
        self._no_progress_after = no_progress_after
        self._stalled_after = stalled_after
        self._lock = threading.Lock()
        now = time.monotonic()
        self._started = self._assigned_at = self._progress_at = now
        self._beat: float | None = None
        self._furthest: dict[Partition, int] = {}
        self._lag_at_progress = 0
        self._server = http.server.HTTPServer((host, port), _handler(self))
        self.port: int = self._server.server_address[1]
        self.url = f"http://{host}:{self.port}/"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="kafkascope-health", daemon=True
        )
        self._thread.start()

    def beat(self) -> None:
        """Record that the poll loop is alive (call it once per turn of the loop)."""
        self._beat = time.monotonic()

    def check(self) -> tuple[bool, dict[str, Any]]:
        """Evaluate the consumer now: ``(healthy, report)``, the report being the JSON body."""
        with self._lock:
            return self._check(time.monotonic())

    def _check(self, now: float) -> tuple[bool, dict[str, Any]]:
        consumer = self._consumer()
        if consumer is None or getattr(consumer, "_closed", False) is True:
            return False, {"healthy": False, "reasons": ["consumer closed"]}
        positions, lag = self._state(consumer)
        reasons: list[str] = []
        if positions:
            self._assigned_at = now
        elif now - self._assigned_at > self._unassigned_after:
            reasons.append(f"no partitions assigned for {now - self._assigned_at:.1f}s")
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
        polls = [t for t in (self._client_last_poll(consumer), self._beat) if t is not None]
        last_poll = max(polls, default=self._started)
        if now - last_poll > self._stalled_after:
            reasons.append(f"poll loop stalled: no poll for {now - last_poll:.1f}s")
        report = {
            "healthy": not reasons,
            "reasons": reasons,
            "assigned_partitions": len(positions),
            "lag": lag,
            "seconds_since_poll": round(now - last_poll, 3),
            "seconds_since_progress": round(stuck, 3),
        }
        return not reasons, report

    def close(self) -> None:
        """Stop answering and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ConsumerHealth:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _handler(health: ConsumerHealth) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            try:
                healthy, report = health.check()
                status = 200 if healthy else 503
            except Exception as exc:
                status, report = 500, {"healthy": False, "reasons": [f"check failed: {exc!r}"]}
                _errors.report("consumer health", exc)
            body = json.dumps(report).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # probes every few seconds: no access log on the user's stderr

    return Handler


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

    The endpoint runs on a daemon thread until :meth:`ConsumerHealth.close`. Each GET reads the
    consumer's assignment, positions and lag from its memory and the time of its last poll (the
    client's bookkeeping, or :meth:`ConsumerHealth.beat`), never the broker.

    Args:
        consumer: a kafka-python ``KafkaConsumer``.
        port: the port to listen on; ``0`` picks a free one (see :attr:`ConsumerHealth.port`).
        host: the address to bind; 127.0.0.1 unless the probe comes from elsewhere.
        unassigned_after: unhealthy when no partition has been assigned for this long.
        no_progress_after: unhealthy when no position advanced for this long while lag grew.
        stalled_after: unhealthy when the consumer has not polled for this long.

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
