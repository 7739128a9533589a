"""Hand-offs through contrib's threading instrumentation, which kafkascope recommends
(``opentelemetry-instrumentation-threading``, in the dependency group ``contrib``): it carries
the OpenTelemetry context into ``ThreadPoolExecutor.submit`` and ``threading.Thread`` without
kafkascope's :func:`~kafkascope.hand_off`."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from opentelemetry import trace

from kafkascope import MessageLogFilter, traced_handler
from kafkascope._core import semconv as sc
from kafkascope.testing import assert_parent, make_record

threading_instrumentation = pytest.importorskip(
    "opentelemetry.instrumentation.threading",
    reason="opentelemetry-instrumentation-threading (the contrib group: bash scripts/setup.sh)",
)

tracer = trace.get_tracer("tests")
log = logging.getLogger("tests.hand_off")


@pytest.fixture
def threading_instrumented() -> Iterator[None]:
    instrumentor = threading_instrumentation.ThreadingInstrumentor()
    instrumentor.instrument()
    try:
        yield
    finally:
        instrumentor.uninstrument()


def _work(name: str = "charge card") -> None:
    with tracer.start_as_current_span(name):
        log.info("charging in the worker")


@pytest.mark.usefixtures("threading_instrumented")
def test_thread_pool_submit_keeps_the_trace_under_contrib_threading(capotel):
    with ThreadPoolExecutor(max_workers=1) as pool:

        @traced_handler(group="billing")
        def handle(record):
            pool.submit(_work).result()

        handle(make_record("orders"))
    assert_parent(capotel.span("charge card"), capotel.span("process orders"))


@pytest.mark.usefixtures("threading_instrumented")
def test_thread_started_in_a_handler_keeps_the_trace_under_contrib_threading(capotel):
    @traced_handler(group="billing")
    def handle(record):
        worker = threading.Thread(target=_work, args=("audit",))
        worker.start()
        worker.join()

    handle(make_record("orders"))
    assert_parent(capotel.span("audit"), capotel.span("process orders"))


@pytest.mark.usefixtures("threading_instrumented")
def test_run_in_executor_keeps_the_trace_under_contrib_threading(capotel):
    @traced_handler(group="billing")
    async def handle(record):
        await asyncio.get_running_loop().run_in_executor(None, _work, "resize")

    asyncio.run(handle(make_record("orders")))
    assert_parent(capotel.span("resize"), capotel.span("process orders"))


@pytest.mark.usefixtures("threading_instrumented")
def test_log_in_a_pool_thread_carries_the_trace_id_and_message_fields_under_contrib_threading(
    capotel,
):
    with ThreadPoolExecutor(max_workers=1) as pool:

        @traced_handler(group="billing")
        def handle(record):
            pool.submit(_work).result()

        handle(make_record("orders", partition=2, offset=41))
    record = capotel.log("charging in the worker").log_record
    assert record.trace_id == capotel.span("process orders").context.trace_id
    assert record.attributes is not None
    assert record.attributes[sc.MESSAGING_DESTINATION_NAME] == "orders"
    assert record.attributes[sc.MESSAGING_KAFKA_OFFSET] == 41


@pytest.mark.usefixtures("threading_instrumented")
def test_message_log_filter_in_a_pool_thread_adds_the_trace_id_under_contrib_threading(
    capotel,
):
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    keep = Keep()
    keep.addFilter(MessageLogFilter())
    log.addHandler(keep)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:

            @traced_handler(group="billing")
            def handle(record):
                pool.submit(_work).result()

            handle(make_record("orders", partition=2, offset=41))
    finally:
        log.removeHandler(keep)
    trace_id = format(capotel.span("process orders").context.trace_id, "032x")
    assert [getattr(r, "trace_id", None) for r in seen] == [trace_id]
    assert [getattr(r, sc.MESSAGING_KAFKA_OFFSET, None) for r in seen] == [41]
