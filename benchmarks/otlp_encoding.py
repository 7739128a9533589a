"""Instructions per exported span: the SDK's OTLP encoder vs kafkascope's direct encoder.

Real kafkascope process spans (``@traced_handler`` on kafka-python records that carry a
``traceparent`` and three more headers) are encoded in batches of 512, as the batch span
processor hands them to an exporter. Each variant runs in its own ``valgrind --tool=callgrind``
process; the instructions of a run that only makes the spans are subtracted, so what is left is
the encoding, divided by the spans encoded. The two encoders' bytes are checked equal first.

Run: .venv/bin/python -m benchmarks.otlp_encoding [--spans N]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from benchmarks.bench_handlers import records
from kafkascope import DirectOTLPSpanExporter, traced_handler

BATCH = 512
VARIANTS = ("none", "sdk", "kafkascope")


def process_spans(count: int) -> list[ReadableSpan]:
    """``count`` finished kafkascope process spans."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    @traced_handler(tracer_provider=provider)
    def handle(record: Any) -> None:
        """Does nothing: only the span matters here."""

    for record in records(count):
        handle(record)
    return [s for s in exporter.get_finished_spans() if s.name.startswith("process")]


def run(variant: str, count: int) -> None:
    """Make the spans, then encode them with ``variant`` (``none`` encodes nothing)."""
    spans = process_spans(count)
    batches = [spans[i : i + BATCH] for i in range(0, len(spans), BATCH)]
    # Made (grpc imported) in every variant, so only the encoding differs between runs.
    exporter = DirectOTLPSpanExporter(endpoint="http://127.0.0.1:9")
    encode_spans(batches[0][:1]).SerializeToString()
    exporter.encode(batches[0][:1])
    if variant == "sdk":
        for batch in batches:
            encode_spans(batch).SerializeToString()
    elif variant == "kafkascope":
        for batch in batches:
            exporter.encode(batch)


def instructions(variant: str, count: int) -> int:
    """Instructions of one callgrind run of ``variant``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        command += [sys.executable, "-m", "benchmarks.otlp_encoding", "--run", variant]
        subprocess.run([*command, "--spans", str(count)], check=True, capture_output=True)
        summary = re.search(r"^summary: (\d+)", out.read_text(), re.MULTILINE)
        assert summary is not None
        return int(summary.group(1))


def main() -> None:
    """Print instructions per span of both encoders and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=2048)
    parser.add_argument("--run", choices=VARIANTS)
    args = parser.parse_args()
    if args.run:
        run(args.run, args.spans)
        return
    sample = process_spans(64)
    direct = DirectOTLPSpanExporter(endpoint="http://127.0.0.1:9").encode(sample)
    assert direct == encode_spans(sample).SerializeToString(), "encoders disagree"
    base = instructions("none", args.spans)
    sdk = (instructions("sdk", args.spans) - base) / args.spans
    ours = (instructions("kafkascope", args.spans) - base) / args.spans
    print(f"spans: {args.spans} kafkascope process spans, batches of {BATCH}")
    print(f"SDK encode_spans + SerializeToString: {sdk / 1000:8.1f}k instructions/span")
    print(f"kafkascope direct encoder:            {ours / 1000:8.1f}k instructions/span")
    print(f"ratio: {ours / sdk:.2f}x")


if __name__ == "__main__":
    main()
