"""Handler cost with the telemetry backend up, refusing, and black-holing, side by side.

The same fully instrumented handler (traces, metrics; configure()'s own OTLP exporters over
HTTP) processes in-memory records while its backend is: a real OpenTelemetry Collector, a port
that refuses connections, and a port that accepts and never answers. Reports ns/message, the
ratio to the backend-up case, RSS, and how many warnings the exporters logged.

Run: .venv/bin/python -m benchmarks.bench_backend_down [--messages N]
"""

from __future__ import annotations

import argparse
import logging
import resource
import socket
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from devstack._process import free_port
from devstack.collector import Collector

from benchmarks.bench_handlers import bare, records
from kafkascope import Telemetry, configure, traced_handler


class _Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def _handler(endpoint: str) -> tuple[Telemetry, Callable[[Any], Any]]:
    telemetry = configure(
        "bench",
        set_global=False,
        endpoint=endpoint,
        protocol="http/protobuf",
        export_interval_ms=1000,
    )
    handle = traced_handler(
        group="bench",
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
    )(bare)
    return telemetry, handle


def run(messages: int, rounds: int) -> None:
    """Measure the three cases; print a table."""
    counter = _Counter()
    logging.getLogger("opentelemetry").addHandler(counter)
    batch = records(messages)
    with tempfile.TemporaryDirectory(prefix="kafkascope-bench-") as tmp:
        collector = Collector.start(Path(tmp), jaeger_otlp_endpoint=f"127.0.0.1:{free_port()}")
        hole = socket.socket()
        hole.bind(("127.0.0.1", 0))
        hole.listen(64)
        try:
            cases = {
                "backend up (Collector)": _handler(collector.otlp_http_endpoint),
                "backend refusing": _handler(f"http://127.0.0.1:{free_port()}"),
                "backend black-holing": _handler(f"http://127.0.0.1:{hole.getsockname()[1]}"),
            }
            times: dict[str, list[float]] = {name: [] for name in cases}
            for _ in range(rounds):
                for name, (_, handle) in cases.items():
                    start = time.perf_counter_ns()
                    for record in batch:
                        handle(record)
                    times[name].append((time.perf_counter_ns() - start) / len(batch))
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            for telemetry, _ in cases.values():
                telemetry.shutdown(timeout_millis=2000)
        finally:
            hole.close()
            collector.stop()
    base = statistics.median(times["backend up (Collector)"])
    print(f"Backend down: {messages} records x {rounds} rounds per case, median ns/message")
    for name, values in times.items():
        value = statistics.median(values)
        print(f"  {name:26} {value:9.0f} ns  x{value / base:.2f}")
    print(f"  peak RSS {rss:.0f} MB; warnings logged by the exporters: {counter.count}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    run(args.messages, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
