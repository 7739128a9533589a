"""The garbage collector's share of ``TracedProducer.send`` on ``configure()``'s pipelines (all
signals, a discarding span exporter, console metrics every hour; a kafka-python producer
without I/O from :mod:`benchmarks.harness`):

- the census: tracked objects alive per send in flight (sends not yet acknowledged) and per
  queued span (acknowledged, still in the export queue), by type, from ``gc.get_objects()``;
- the collections: how many of each generation, and the thread CPU they took, per send, with
  a window of sends in flight at a time beside a heap of other objects (a service's own).

What kafkascope allocates and frees within a send never counts towards a collection; what
lives until the broker answers or the span is exported does.

Run: .venv/bin/python -m benchmarks.send_gc [--sends N] [--in-flight W] [--heap B]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from benchmarks.harness import DiscardingExporter, KafkaPythonSend, ack

HEADERS = (("content-type", b"application/json"), ("x-source", b"bench"))
TOPIC = "orders"
QUEUED = {
    "OTEL_BSP_SCHEDULE_DELAY": "3600000",
    "OTEL_BSP_MAX_QUEUE_SIZE": "1000000",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "1000000",
}
"""For the census: every ended span stays in the export queue until the final flush."""


@dataclass
class Census:
    """Tracked objects alive per send, by type name."""

    in_flight: dict[str, float]
    queued: dict[str, float]


@dataclass
class Collections:
    """Collections per send of each generation and the CPU microseconds they took."""

    count: dict[int, float]
    micros: dict[int, float]


@contextmanager
def _stdout_discarded() -> Iterator[None]:
    """File descriptor 1 to /dev/null: the console metric exporter holds the original stdout."""
    sys.stdout.flush()
    kept = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(kept, 1)
        os.close(null)
        os.close(kept)


@contextmanager
def _producer(env: dict[str, str]) -> Iterator[Any]:
    """A ``TracedProducer`` on a ``configure()``d service (its console output discarded)."""
    from kafkascope import TracedProducer, configure

    saved = {name: os.environ.get(name) for name in (*env, "OTEL_METRICS_EXPORTER")}
    os.environ.update(env, OTEL_METRICS_EXPORTER="console")
    with _stdout_discarded():
        telemetry = configure(
            "bench",
            set_global=False,
            handle_sigterm=False,
            span_exporter=DiscardingExporter(),
            export_interval_ms=3_600_000,
        )
        try:
            yield TracedProducer(
                KafkaPythonSend(),
                tracer_provider=telemetry.tracer_provider,
                meter_provider=telemetry.meter_provider,
            )
        finally:
            telemetry.shutdown()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _send(producer: Any, index: int) -> Any:
    return producer.send(TOPIC, b"v", key=b"customer-%07d" % index, headers=list(HEADERS))


def _types() -> Counter[str]:
    return Counter(type(found).__name__ for found in gc.get_objects())


def _per_send(after: Counter[str], before: Counter[str], sends: int) -> dict[str, float]:
    grown = after - before
    return {name: count / sends for name, count in grown.most_common() if count >= sends // 2}


def census(sends: int) -> Census:
    """Tracked objects per send in flight and per queued span, over ``sends`` sends."""
    with _producer(QUEUED) as producer:
        for index in range(100):  # the per-topic caches and first-use allocations
            ack(_send(producer, index), TOPIC)
        gc.collect()
        enabled = gc.isenabled()
        gc.disable()
        try:
            before = _types()
            futures = [_send(producer, index) for index in range(sends)]
            gc.collect()
            in_flight = _types()
            in_flight["list"] -= 1  # the list of futures
            for future in futures:
                ack(future, TOPIC)
            del futures
            gc.collect()
            queued = _types()
        finally:
            if enabled:
                gc.enable()
    return Census(_per_send(in_flight, before, sends), _per_send(queued, before, sends))


def collections(sends: int, in_flight: int, heap: int) -> Collections:
    """Collections and their CPU per send over ``sends`` sends, ``in_flight`` acknowledged at a
    time, beside ``heap`` other tracked objects."""
    ballast = [[index] for index in range(heap)]
    count: Counter[int] = Counter()
    micros: dict[int, float] = {}
    started: dict[int, float] = {}

    def timed(phase: str, info: dict[str, Any]) -> None:
        generation = info["generation"]
        if phase == "start":
            started[generation] = time.thread_time()
        else:
            count[generation] += 1
            spent = (time.thread_time() - started[generation]) * 1e6
            micros[generation] = micros.get(generation, 0.0) + spent

    with _producer({}) as producer:
        window: list[Any] = []
        gc.collect()
        gc.callbacks.append(timed)
        try:
            for index in range(sends):
                window.append(_send(producer, index))
                if len(window) == in_flight:
                    for future in window:
                        ack(future, TOPIC)
                    window = []
        finally:
            gc.callbacks.remove(timed)
        for future in window:
            ack(future, TOPIC)
    del ballast
    return Collections(
        {generation: n / sends for generation, n in sorted(count.items())},
        {generation: us / sends for generation, us in sorted(micros.items())},
    )


def _line(label: str, per_send: dict[Any, float], digits: int) -> str:
    parts = ", ".join(f"{name} {value:.{digits}f}" for name, value in per_send.items())
    return f"{label} {sum(per_send.values()):.{digits}f}: {parts}"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the census and the collections."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sends", type=int, default=20_000, help="sends (default 20,000)")
    parser.add_argument("--in-flight", type=int, default=500, help="window (default 500)")
    parser.add_argument("--heap", type=int, default=200_000, help="other objects (200,000)")
    args = parser.parse_args(argv)
    found = census(min(args.sends, 2_000))
    print(_line("tracked objects per send in flight", found.in_flight, 2))
    print(_line("tracked objects per queued span", found.queued, 2))
    done = collections(args.sends, args.in_flight, args.heap)
    print(_line("collections per send by generation", done.count, 4))
    print(_line("collection CPU us per send by generation", done.micros, 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
