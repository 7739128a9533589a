"""Instructions per message of ``@traced_handler`` and of ``TracedProducer.send`` (a
kafka-python producer without I/O, acknowledged at once) on ``configure()``'s pipelines,
counted with callgrind: the difference between a run of 2N messages and a run of N, over N, so
start-up, imports and the final export cancel out.

Run: .venv/bin/python -m benchmarks.histogram_instructions [--messages N] [--variants V ...]
(``valgrind`` must be on the PATH). Set ``PYTHONPATH`` to another checkout's ``src`` to count
that version of kafkascope with the same script (only the public API is used).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

VARIANTS = {
    "all signals": ("handle", True, False),
    "tracing only": ("handle", False, False),
    "send, all signals": ("send", True, False),
    "send, tracing only": ("send", False, False),
    "not sampled": ("handle unsampled", True, False),
    "all signals, sizes": ("handle", True, True),
    "send, all signals, sizes": ("send", True, True),
}
"""Each variant's path (``handle`` or ``send``), whether metrics are on, and whether body sizes
are captured (``configure(capture_sizes=True)``: a size on each span and in the body-size
histogram). ``handle unsampled`` is the handler under ``parentbased_traceidratio`` 0 (root
spans, as the deployed benchmark's records start none): the unsampled path of a configure()d
service."""


def _run(path: str, messages: int, metrics: bool, sizes: bool) -> None:
    """One configure()d service handling or sending ``messages`` records (the callgrind
    subject)."""
    from benchmarks.harness import DiscardingExporter
    from kafkascope import configure

    # Console metrics every hour: nothing is exported until the final flush, whose cost is
    # the same for N and 2N messages (the same attribute sets).
    os.environ["OTEL_METRICS_EXPORTER"] = "console"
    if path == "handle unsampled":
        os.environ["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
        os.environ["OTEL_TRACES_SAMPLER_ARG"] = "0"
    options: dict[str, Any] = {"capture_sizes": True} if sizes else {}
    telemetry = configure(
        "bench",
        set_global=False,
        handle_sigterm=False,
        metrics=metrics,
        span_exporter=DiscardingExporter(),
        export_interval_ms=3_600_000,
        # Only when on: a checkout from before body sizes still runs the other variants.
        **options,
    )
    if path == "send":
        _send(telemetry, messages)
    else:
        _handle(telemetry, messages)
    telemetry.shutdown()  # the console export goes to the parent's pipe


def _send(telemetry: Any, messages: int) -> None:
    from benchmarks.harness import KafkaPythonSend, ack
    from kafkascope import TracedProducer

    producer = TracedProducer(
        KafkaPythonSend(),
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
    )
    headers = [("content-type", b"application/json"), ("x-source", b"bench")]
    keys = [b"customer-%07d" % i for i in range(messages)]
    for key in keys:
        ack(producer.send("orders", b"v", key=key, headers=list(headers)), "orders")


def _handle(telemetry: Any, messages: int) -> None:
    from kafkascope import traced_handler
    from kafkascope.testing import make_record

    @traced_handler(
        group="billing",
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
    )
    def handle(record: Any) -> None:
        return None

    records = [
        make_record("orders", b"v", key=f"k{i}", partition=i % 3, offset=i, timestamp=1_000)
        for i in range(messages)
    ]
    for record in records:
        handle(record)


def _instructions(variant: str, messages: int) -> int:
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}/callgrind.out",
                sys.executable,
                "-m",
                "benchmarks.histogram_instructions",
                "--run",
                str(messages),
                "--variants",
                variant,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in callgrind's output:\n{done.stderr}")
    return int(found[1])


def main(argv: Sequence[str] | None = None) -> int:
    """Print the instructions per message of each variant."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=1_000, help="N (default 1000)")
    parser.add_argument(
        "--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS), metavar="V"
    )
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run is not None:
        path, metrics, sizes = VARIANTS[args.variants[0]]
        _run(path, args.run, metrics, sizes)
        return 0
    n = args.messages
    for label in args.variants:
        per_message = (_instructions(label, 2 * n) - _instructions(label, n)) / n
        print(f"  {label:<20} {per_message:>10,.0f} instructions per message")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
