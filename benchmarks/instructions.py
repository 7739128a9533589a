"""CPU instructions per message of kafkascope's hot paths, counted with valgrind's callgrind.

Wall-clock figures on shared cores move between runs; instruction counts do not. Each path runs
in its own child process under ``valgrind --tool=callgrind``, once handling N1 messages and
once N2 (both build the same N2 records first), and instructions/message =
(Ir(N2) - Ir(N1)) / (N2 - N1), so interpreter start-up, imports and set-up cancel out. The
same code costs slightly more or less depending on where its objects land in the heap, so each
figure is the median over a few heap layouts (see :data:`LAYOUTS`), with the range beside it.
Telemetry goes to discarding or in-memory exporters (spans through a ``BatchSpanProcessor``,
as ``configure()`` sets up, flushed before the child ends), so nothing leaves the process.
The paths:
  ``@traced_handler`` with traces + metrics + log correlation; the same with the handler
  logging one line per message; tracing only; tracing only, not sampled;
  ``@traced_batch_handler`` (100 records a batch), per message;
  ``TracedProducer.send`` on a kafka-python producer that does no I/O, traces + metrics;
  ``@traced_handler`` on ``configure()``'s own providers (presampling, in-process histograms),
  all signals, each record's producer (its ``traceparent``) not sampled;
  the zero-code instrumentation's process span (the tracker around a consumer's ``poll()``
  that hands out one record), tracing only, with commit spans on (the default: each process
  span is remembered for the next commit to link) and off;
  the all-signals handler and send with two named headers captured (``content-type`` and
  ``x-request-id``, which every record and message carries), given as the decorator's and
  the producer's ``capture_headers`` argument (the children run without ``OTEL_*`` variables).
Only kafkascope's public API is used, so the same workloads run against any checkout:
``--compare REF`` measures REF's ``src`` (a checkout directory, or a git revision of this
repository) beside this checkout's and prints before, after and the change of the medians.

Run: .venv/bin/python -m benchmarks.instructions [--compare REF] [--paths ID ...] [--jobs 2]
"""

from __future__ import annotations

import argparse
import gc
import io
import logging
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.metrics import MeterProvider, NoOpMeterProvider
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from benchmarks.harness import (
    DiscardingExporter,
    KafkaPythonSend,
    Message,
    ack,
    bare,
    messages,
    records,
    tracer_provider,
)

ROOT = Path(__file__).resolve().parents[1]
VALGRIND = "/usr/bin/valgrind"
PYTHON = sys.executable
N1, N2 = 100, 1_100
BATCH_SIZE = 100
LOGGER = "benchmarks.instructions"
"""The logger the log-correlation handler is attached to (``configure(logs=True)`` attaches
it to the root logger; a child of our own keeps a test's handler out of everyone's root)."""


class DiscardingLogExporter(LogRecordExporter):
    """Accepts log records and drops them."""

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


@dataclass(frozen=True)
class Sinks:
    """Where a workload's telemetry goes: by default nowhere; a test passes in-memory ones."""

    span_exporter: SpanExporter = field(default_factory=DiscardingExporter)
    metric_reader: MetricReader = field(default_factory=InMemoryMetricReader)
    log_exporter: LogRecordExporter = field(default_factory=DiscardingLogExporter)


@dataclass(frozen=True)
class HotPath:
    """One measured path: what is called per message and which signals are on."""

    label: str
    kind: str
    """``single`` (``@traced_handler``), ``batch`` (``@traced_batch_handler``), ``send``
    (``TracedProducer.send``) or ``zero-code`` (the instrumentor's consumer tracker)."""
    sampled: bool = True
    metrics: bool = True
    log_correlation: bool = True
    """An OpenTelemetry log handler with kafkascope's message fields, as ``configure(logs=True)``
    installs it."""
    logs_a_line: bool = False
    """The handler logs one line per message (through that log handler)."""
    commit_spans: bool = True
    """``OTEL_PYTHON_KAFKASCOPE_COMMIT_SPANS`` (ignored by checkouts without commit spans)."""
    capture_headers: str | None = None
    """The ``capture_headers`` argument of the handler or producer (``single`` and ``send``)."""


CAPTURED = "content-type,x-request-id"
"""The headers the capture paths name: two exact names that every record and message carries."""

PATHS: dict[str, HotPath] = {
    "single-all": HotPath("@traced_handler, traces+metrics+logs", "single"),
    "single-logging": HotPath(
        "@traced_handler, traces+metrics+logs, handler logs a line", "single", logs_a_line=True
    ),
    "single-tracing": HotPath(
        "@traced_handler, tracing only", "single", metrics=False, log_correlation=False
    ),
    "single-unsampled": HotPath(
        "@traced_handler, tracing only, not sampled",
        "single",
        sampled=False,
        metrics=False,
        log_correlation=False,
    ),
    "batch-all": HotPath(f"@traced_batch_handler ({BATCH_SIZE}/batch), per message", "batch"),
    "send-all": HotPath(
        "TracedProducer.send (kafka-python), traces+metrics", "send", log_correlation=False
    ),
    "single-headers": HotPath(
        f"@traced_handler, traces+metrics+logs, {CAPTURED}",
        "single",
        capture_headers=CAPTURED,
    ),
    "send-headers": HotPath(
        f"TracedProducer.send, traces+metrics, {CAPTURED}",
        "send",
        log_correlation=False,
        capture_headers=CAPTURED,
    ),
    "configured-unsampled": HotPath(
        "configure() + @traced_handler, all signals, parent not sampled",
        "configured",
        sampled=False,
        log_correlation=False,
    ),
    "zero-code": HotPath(
        "zero-code poll(), tracing only", "zero-code", metrics=False, log_correlation=False
    ),
    "zero-code-no-commit-spans": HotPath(
        "zero-code poll(), tracing only, commit spans off",
        "zero-code",
        metrics=False,
        log_correlation=False,
        commit_spans=False,
    ),
}


# ---------------------------------------------------------------- the workloads
def run(
    path: HotPath,
    count: int,
    *,
    built: int | None = None,
    sinks: Sinks | None = None,
    freeze: bool = False,
) -> None:
    """Handle (or send) ``count`` messages on ``path``, after building ``built`` (default:
    ``count``) of them, then flush and shut the providers down.

    Building the same number of messages in both of a path's runs keeps their cost out of the
    difference. With ``freeze``, everything made before the first message is moved out of the
    collector's reach for the rest of the process (``gc.freeze()``), so a full collection that
    falls between the two runs' ends costs what the messages left, not what start-up did.
    """
    sinks = sinks or Sinks()
    if path.kind == "configured":
        _run_configured(path, count, built or count, sinks, freeze=freeze)
        return
    traces = tracer_provider(sampled=path.sampled, exporter=sinks.span_exporter)
    meters: MeterProvider = (
        SdkMeterProvider(metric_readers=[sinks.metric_reader])
        if path.metrics
        else NoOpMeterProvider()
    )
    logs = LoggerProvider()
    processor: LogRecordProcessor = BatchLogRecordProcessor(sinks.log_exporter)
    logs.add_log_record_processor(processor)
    with _log_correlation(logs, enabled=path.log_correlation) as logger:
        body: Callable[[Any], None] = _logging_body(logger) if path.logs_a_line else bare
        items, step = _workload(path, max(built or count, count), count, traces, meters, body)
        if freeze:
            gc.freeze()
        for item in items:
            step(item)
    traces.shutdown()
    logs.shutdown()


def _run_configured(path: HotPath, count: int, built: int, sinks: Sinks, *, freeze: bool) -> None:
    """``@traced_handler`` on the providers ``configure()`` builds (its presampling and
    in-process histograms), ``parentbased_traceidratio`` at 1 or 0: the records' producers
    (the harness's, reading the same variables) sampled or not, and each message with them.

    The metrics go to ``configure()``'s own console exporter, once, at the shutdown (a reader
    of the sinks' would be an extra reader, which gets the SDK's instruments instead)."""
    import kafkascope

    os.environ["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
    os.environ["OTEL_TRACES_SAMPLER_ARG"] = "1" if path.sampled else "0"
    os.environ["OTEL_METRICS_EXPORTER"] = "console"
    telemetry = kafkascope.configure(
        "bench",
        set_global=False,
        handle_sigterm=False,
        span_exporter=sinks.span_exporter,
        export_interval_ms=3_600_000,
    )
    items = records(max(built, count))[:count]
    handle = kafkascope.traced_handler(
        group="bench",
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
    )(bare)
    if freeze:
        gc.freeze()
    for item in items:
        handle(item)
    telemetry.shutdown()


def _workload(
    path: HotPath,
    built: int,
    count: int,
    traces: TracerProvider,
    meters: MeterProvider,
    body: Callable[[Any], None],
) -> tuple[list[Any], Callable[[Any], Any]]:
    """What ``path`` is given per call (``count`` of ``built`` messages, or their batches) and
    the call."""
    import kafkascope

    if path.kind == "zero-code":
        return _zero_code(path, list(records(built)[:count]), traces, meters)
    # Only when set: a checkout from before header capture still runs the other paths.
    capture: dict[str, Any] = (
        {} if path.capture_headers is None else {"capture_headers": path.capture_headers}
    )
    if path.kind == "send":
        producer = kafkascope.TracedProducer(
            KafkaPythonSend(), tracer_provider=traces, meter_provider=meters, **capture
        )

        def send(message: Message) -> None:
            topic, value, key, headers, partition = message
            ack(producer.send(topic, value, key=key, headers=headers, partition=partition), topic)

        return list(messages(built)[:count]), send
    if path.kind == "batch":
        batch = records(built)[:count]
        handle_batch = kafkascope.traced_batch_handler(
            group="bench", tracer_provider=traces, meter_provider=meters
        )(body)
        return [batch[i : i + BATCH_SIZE] for i in range(0, count, BATCH_SIZE)], handle_batch
    handle = kafkascope.traced_handler(
        group="bench", tracer_provider=traces, meter_provider=meters, **capture
    )(body)
    return records(built)[:count], handle


def _zero_code(
    path: HotPath, items: list[Any], traces: TracerProvider, meters: MeterProvider
) -> tuple[list[Any], Callable[[Any], Any]]:
    """``for record in consumer`` on a kafka-python ``KafkaConsumer`` instrumented by
    ``KafkascopeInstrumentor``: each ``next()`` ends the previous record's process span and opens
    the next one's. The consumer hands out ``items`` without a broker (its fetch generator is
    replaced); a last ``next()`` ends the last span."""
    import kafka

    from kafkascope.instrumentor import KafkascopeInstrumentor

    os.environ["OTEL_PYTHON_KAFKASCOPE_LAG"] = "false"  # no lag gauge without a broker
    os.environ["OTEL_PYTHON_KAFKASCOPE_COMMIT_SPANS"] = str(path.commit_spans).lower()
    instrumentor = KafkascopeInstrumentor()
    instrumentor.instrument(tracer_provider=traces, meter_provider=meters)

    class Iterated(kafka.KafkaConsumer):  # type: ignore[misc]
        def __init__(self) -> None:  # no broker: only what __next__ reads
            self.config = {
                **kafka.KafkaConsumer.DEFAULT_CONFIG,
                "group_id": "bench",
                "bootstrap_servers": "localhost:9092",
                "client_id": "bench-client",
            }
            self._closed = False
            self._iterator = None
            self._consumer_timeout = 0.0
            self._left = iter(items)

        def _set_consumer_timeout(self) -> None:
            self._consumer_timeout = float("inf")

        def _message_generator_v2(self) -> Iterator[Any]:
            yield from self._left
            self._consumer_timeout = 0.0  # nothing left: __next__ stops

    consumer = Iterated()

    def step(_: Any) -> None:
        try:
            next(consumer)
        except StopIteration:
            instrumentor.uninstrument()

    return [*items, None], step


@contextmanager
def _log_correlation(provider: LoggerProvider, *, enabled: bool) -> Iterator[logging.Logger]:
    """:data:`LOGGER`, with (when ``enabled``) the log handler ``configure(logs=True)`` installs
    for the span of the block."""
    import kafkascope

    logger = logging.getLogger(LOGGER)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = kafkascope.instrument_logging(provider, logger=logger) if enabled else None
    try:
        yield logger
    finally:
        if handler is not None:
            logger.removeHandler(handler)


def _logging_body(logger: logging.Logger) -> Callable[[Any], None]:
    def handle(message: Any) -> None:
        logger.info("order handled")

    return handle


# ---------------------------------------------------------------- callgrind
def callgrind_ir(command: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> int:
    """The total instructions (``Ir``) callgrind counts for ``command``, start to exit.

    Raises:
        RuntimeError: the command failed, or callgrind wrote no total.
    """
    with tempfile.TemporaryDirectory(prefix="kafkascope-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        done = subprocess.run(
            [
                VALGRIND,
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                "--collect-atstart=yes",  # the default, stated: start-up cancels in the difference
                *command,
            ],
            env=dict(env),
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed under callgrind:\n{done.stderr}")
        return total_ir(out.read_text())


_TOTAL = re.compile(r"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


def total_ir(callgrind_out: str) -> int:
    """The ``Ir`` total of a callgrind output file (its ``summary:`` or ``totals:`` line)."""
    found = _TOTAL.search(callgrind_out)
    if found is None:
        raise RuntimeError("callgrind output has no summary:/totals: line")
    return int(found.group(1))


def child_env(src: Path) -> dict[str, str]:
    """The child's environment: ``src`` first on the path, then this checkout (for
    ``benchmarks``); a fixed hash seed; no ``OTEL_*`` settings from the caller's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(PYTHONPATH=f"{src}{os.pathsep}{ROOT}", PYTHONHASHSEED="0")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


LAYOUTS = (0, 13, 100, 1_000, 37, 400, 2_500)
"""Objects allocated before anything is imported, one count per heap layout. The same code
costs a few thousand instructions more or less per message depending on where its objects
land (id-based hashes, allocator pools) and on thread timing (the span processor's worker
allocates when it wakes, which moves the collector's runs and what they traverse): measured
on the all-signals handler, about ±0.4 % and the odd run +1 %. Moving modules moves objects as
much, so each figure is the median over several runs, each in its own layout."""

_CHILD = (
    "import sys; _padding = [(i, str(i)) for i in range(int(sys.argv[4]))]; "
    "from benchmarks.instructions import child; raise SystemExit(child(*sys.argv[1:4]))"
)


def _child_command(python: str, path_id: str, count: int, built: int, layout: int) -> list[str]:
    return [python, "-c", _CHILD, path_id, str(count), str(built), str(LAYOUTS[layout])]


def warm_up(python: str, src: Path, path_id: str) -> None:
    """Run ``path_id`` once natively: it fails fast if it cannot run, and writes the bytecode
    caches so that neither callgrind run compiles what the other reads.

    Raises:
        RuntimeError: the path failed, or kafkascope was imported from outside ``src``.
    """
    done = subprocess.run(
        _child_command(python, path_id, 2, 2, 0),
        env=child_env(src),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{path_id} failed against {src}:\n{done.stderr}")
    imported = Path(done.stdout.strip().splitlines()[-1])  # after a console exporter's output
    if not imported.is_relative_to(src.resolve()):
        raise RuntimeError(f"kafkascope came from {imported}, not from {src}")


def per_message(python: str, src: Path, path_id: str, n1: int, n2: int, layout: int) -> float:
    """Instructions per message of ``path_id`` with kafkascope from ``src``, in heap layout
    ``layout`` (an index into :data:`LAYOUTS`)."""
    env = child_env(src)
    low = callgrind_ir(_child_command(python, path_id, n1, n2, layout), env=env, cwd=ROOT)
    high = callgrind_ir(_child_command(python, path_id, n2, n2, layout), env=env, cwd=ROOT)
    return (high - low) / (n2 - n1)


def child(path_id: str, count: str, built: str) -> int:
    """One path's run (under valgrind): prints where kafkascope was imported from."""
    import kafkascope

    random.seed(0)  # the SDK's trace and span ids come from ``random``
    run(PATHS[path_id], int(count), built=int(built), freeze=True)
    print(kafkascope.__file__)
    return 0


# ---------------------------------------------------------------- the command
@contextmanager
def checkout_src(ref: str) -> Iterator[Path]:
    """The ``src`` of ``ref``: a checkout's directory (or its ``src``), or a git revision of
    this repository exported to a temporary directory.

    Raises:
        SystemExit: ``ref`` is neither.
    """
    given = Path(ref)
    if given.is_dir():
        yield (given / "src" if (given / "src" / "kafkascope").is_dir() else given).resolve()
        return
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref, "src"],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise SystemExit(
            f"--compare {ref}: neither a directory nor a git revision of {ROOT}: "
            f"{archive.stderr.decode().strip()}"
        )
    tmp = Path(tempfile.mkdtemp(prefix="kafkascope-before-"))
    try:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        yield tmp / "src"
    finally:
        shutil.rmtree(tmp)


@dataclass(frozen=True)
class Measured:
    """One path's instructions per message in each heap layout."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        """The figure reported."""
        return statistics.median(self.values)

    def cell(self) -> str:
        """``median (min-max)``."""
        return f"{self.median:9,.0f} ({min(self.values):,.0f}-{max(self.values):,.0f})"


def measure(
    python: str, srcs: Sequence[Path], path_id: str, n1: int, n2: int, layouts: int, jobs: int
) -> list[Measured]:
    """``path_id`` measured against each of ``srcs``, in ``layouts`` heap layouts each, at most
    ``jobs`` callgrind runs at a time (the counts do not depend on it)."""
    for src in srcs:
        warm_up(python, src, path_id)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [
            [pool.submit(per_message, python, src, path_id, n1, n2, i) for i in range(layouts)]
            for src in srcs
        ]
        return [Measured(tuple(f.result() for f in row)) for row in futures]


def main(argv: Sequence[str] | None = None) -> int:
    """Count each path's instructions per message and print them (beside REF's with
    ``--compare``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--compare",
        metavar="REF",
        help="also measure REF's src (a checkout directory or a git revision) as 'before'",
    )
    parser.add_argument(
        "--paths",
        nargs="+",
        choices=list(PATHS),
        default=list(PATHS),
        metavar="ID",
        help=f"the paths to measure (default all: {', '.join(PATHS)})",
    )
    parser.add_argument(
        "--messages",
        nargs=2,
        type=int,
        default=(N1, N2),
        metavar=("N1", "N2"),
        help=f"messages in the two runs of each path (default {N1} {N2})",
    )
    parser.add_argument(
        "--layouts",
        type=int,
        default=3,
        help=f"heap layouts per path, the median reported (default 3, at most {len(LAYOUTS)})",
    )
    parser.add_argument("--jobs", type=int, default=1, help="callgrind runs at a time (default 1)")
    parser.add_argument("--python", default=PYTHON, help=f"the interpreter (default {PYTHON})")
    args = parser.parse_args(argv)
    n1, n2 = args.messages
    if not 0 <= n1 < n2 or (n1 % BATCH_SIZE or n2 % BATCH_SIZE):
        parser.error(f"--messages: need 0 <= N1 < N2, both multiples of {BATCH_SIZE}")
    if not 1 <= args.layouts <= len(LAYOUTS):
        parser.error(f"--layouts: from 1 to {len(LAYOUTS)}, got {args.layouts}")
    if args.jobs < 1:
        parser.error(f"--jobs: at least 1, got {args.jobs}")
    if not os.access(VALGRIND, os.X_OK):
        parser.error(f"{VALGRIND} not found (apt-get install valgrind)")
    print(
        f"instructions per message: callgrind Ir, (Ir({n2:,} messages) - Ir({n1:,})) / "
        f"{n2 - n1:,}; median (min-max) of {args.layouts} heap layouts; {args.python}, "
        "PYTHONHASHSEED=0"
    )
    with ExitStack() as stack:
        srcs = [ROOT / "src"]
        if args.compare is not None:
            srcs.insert(0, stack.enter_context(checkout_src(args.compare)))
            print(f"before: {args.compare} ({srcs[0]}); after: {srcs[1]}")
        else:
            print(f"kafkascope from {srcs[0]}")
        heads = ["before", "after"] if len(srcs) == 2 else ["instr/msg"]
        print(f"{'path':58} " + " ".join(f"{h:>25}" for h in heads) + " change" * (len(srcs) - 1))
        worst = 0.0
        for path_id in args.paths:
            row = measure(args.python, srcs, path_id, n1, n2, args.layouts, args.jobs)
            line = f"{PATHS[path_id].label:58} " + " ".join(f"{m.cell():>25}" for m in row)
            if len(row) == 2:
                change = (row[1].median - row[0].median) / row[0].median * 100
                worst = max(worst, abs(change))
                line += f" {change:+7.2f} %"
            print(line, flush=True)
        if args.compare is not None:
            print(f"largest change of the medians: {worst:.2f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
