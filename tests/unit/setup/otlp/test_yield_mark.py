"""Both span processors release the interpreter once per span ended while their queue stands at
or above :func:`~kafkascope._setup.span_queue.yield_mark`, and never below it.

The interpreter's forced switches are put off (a switch interval of 100 s), so a thread waiting
for the interpreter runs only when the thread ending spans releases it: a thread started
waiting for it is the witness.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kafkascope import DirectOTLPSpanExporter
from kafkascope._setup import span_queue
from kafkascope._setup.otlp.processor import EncodingSpanProcessor
from tests.unit.setup.otlp.conftest import Receiver

QUEUE = 10_000
BATCH = 200
HOUR_MS = 3_600_000
SIZING = span_queue.Sizing(QUEUE, BATCH, HOUR_MS, 30_000)


def test_the_mark_is_halfway_from_a_batch_to_a_full_queue():
    assert span_queue.yield_mark(SIZING) == 5_100
    assert span_queue.yield_mark(span_queue.sizing({}, 4_096)) == 10_240
    assert span_queue.yield_mark(span_queue.Sizing(100, 100, 1, 1)) == 100  # never below full


class Witness:
    """A thread that, once let go, needs the interpreter to note that it ran."""

    def __init__(self) -> None:
        self.ran = False
        self._go = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self._go.wait()
        self.ran = True

    def let_go(self) -> None:
        """From now on it waits for the interpreter."""
        self._go.set()

    def join(self) -> None:
        self._thread.join(10)


@contextmanager
def _no_forced_switches() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _ends(processor: SpanProcessor) -> Callable[[], None]:
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("kafkascope.test")

    def end_one() -> None:
        tracer.start_span("process orders").end()

    return end_one


def _encoding(receiver: Receiver) -> EncodingSpanProcessor:
    exporter = DirectOTLPSpanExporter(
        endpoint=f"{receiver.url}/v1/traces", protocol="http/protobuf"
    )
    return EncodingSpanProcessor(
        exporter,
        max_queue_size=QUEUE,
        max_export_batch_size=BATCH,
        schedule_delay_millis=HOUR_MS,
        meter_provider=MeterProvider(),
    )


def _counting() -> span_queue.CountingSpanProcessor:
    return span_queue.CountingSpanProcessor(InMemorySpanExporter(), SIZING, MeterProvider())


@pytest.fixture(params=["encoding", "counting"])
def processor(request: pytest.FixtureRequest, http_receiver: Receiver) -> Iterator[SpanProcessor]:
    chosen = _encoding(http_receiver) if request.param == "encoding" else _counting()
    yield chosen
    chosen.shutdown()


def test_below_the_mark_the_interpreter_is_kept(processor):
    end_one = _ends(processor)
    witness = Witness()
    with _no_forced_switches():
        witness.let_go()
        for _ in range(5_099):  # the queue then holds 5,099: the worker never ran to take any
            end_one()
        ran = witness.ran
    witness.join()
    assert not ran


def test_at_the_mark_each_span_ended_releases_the_interpreter(processor):
    end_one = _ends(processor)
    witness = Witness()
    with _no_forced_switches():
        witness.let_go()
        ended = 0
        while not witness.ran and ended < QUEUE:  # before any span is dropped (and logged)
            end_one()
            ended += 1
        ran = witness.ran
    witness.join()
    assert ran
    assert ended > 5_100  # not before the queue reached the mark
