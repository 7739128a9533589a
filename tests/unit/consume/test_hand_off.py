from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from opentelemetry import trace

from kafkascope import HandOffExecutor, TracedProducer, hand_off, traced_handler
from kafkascope._core import semconv as sc
from kafkascope.testing import assert_parent, assert_same_trace, make_record, pipeline_stamp
from tests.unit._producers import RecordingProducer, ack

tracer = trace.get_tracer("tests")
log = logging.getLogger("tests.hand_off")


def _work(name: str = "charge card") -> str:
    with tracer.start_as_current_span(name):
        log.info("charging in the worker")
    return threading.current_thread().name


def test_work_submitted_to_a_thread_pool_loses_the_trace_without_help(capotel):
    with ThreadPoolExecutor(max_workers=1) as pool:

        @traced_handler(group="billing")
        def handle(record):
            return pool.submit(_work).result()

        handle(make_record("orders"))
    assert capotel.span("charge card").parent is None


def test_hand_off_makes_work_in_a_thread_pool_a_child_of_the_process_span(capotel):
    with ThreadPoolExecutor(max_workers=1) as pool:

        @traced_handler(group="billing")
        def handle(record):
            return pool.submit(hand_off(_work)).result()

        worker = handle(make_record("orders"))
    assert worker != threading.current_thread().name
    assert_parent(capotel.span("charge card"), capotel.span("process orders"))


def test_hand_off_executor_makes_submitted_work_a_child_of_the_process_span(capotel):
    with HandOffExecutor(ThreadPoolExecutor(max_workers=2)) as pool:

        @traced_handler(group="billing")
        def handle(record):
            return [f.result() for f in [pool.submit(_work, "first"), pool.submit(_work, "2nd")]]

        handle(make_record("orders"))
    process = capotel.span("process orders")
    assert_parent(capotel.span("first"), process)
    assert_parent(capotel.span("2nd"), process)


def test_hand_off_executor_map_runs_each_call_in_the_handlers_context(capotel):
    with HandOffExecutor(ThreadPoolExecutor(max_workers=3)) as pool:

        @traced_handler(group="billing")
        def handle(record):
            return list(pool.map(_work, ["a", "b", "c"]))

        handle(make_record("orders"))
    process = capotel.span("process orders")
    for name in ("a", "b", "c"):
        assert_parent(capotel.span(name), process)


def test_span_started_after_the_handler_returned_is_a_child_of_the_ended_process_span(
    capotel,
):
    release = threading.Event()
    futures: list[Future[str]] = []

    def later() -> str:
        release.wait(timeout=30)
        return _work("send receipt")

    with ThreadPoolExecutor(max_workers=1) as pool:

        @traced_handler(group="billing")
        def handle(record):
            futures.append(pool.submit(hand_off(later)))

        handle(make_record("orders"))
        process = capotel.span("process orders")  # ended: the handler has returned
        assert capotel.spans_named("send receipt") == []
        release.set()
        futures[0].result()
    receipt = capotel.span("send receipt")
    assert_parent(receipt, process)
    assert process.end_time is not None
    assert receipt.start_time is not None
    assert receipt.start_time > process.end_time


def test_log_in_handed_off_work_carries_the_trace_id_and_message_fields(capotel):
    with ThreadPoolExecutor(max_workers=1) as pool:

        @traced_handler(group="billing")
        def handle(record):
            pool.submit(hand_off(_work)).result()

        handle(make_record("orders", partition=2, offset=41))
    record = capotel.log("charging in the worker").log_record
    assert record.trace_id == capotel.span("process orders").context.trace_id
    assert record.attributes is not None
    assert record.attributes[sc.MESSAGING_DESTINATION_NAME] == "orders"
    assert record.attributes[sc.MESSAGING_KAFKA_OFFSET] == 41
    assert record.attributes[sc.MESSAGING_CONSUMER_GROUP_NAME] == "billing"


def test_a_send_in_handed_off_work_carries_the_messages_pipeline_stamp_on(capotel):
    inbound = pipeline_stamp(time.time() * 1000 - 2500, "orders")
    inner = RecordingProducer()
    producer = TracedProducer(inner)
    with ThreadPoolExecutor(max_workers=1) as pool:

        @traced_handler(group="enricher")
        def handle(record):
            pool.submit(hand_off(producer.send), "enriched", b"{}").result()

        handle(make_record("orders", headers=[inbound]))
    assert [v for k, v in inner.sent[0]["headers"] if k == inbound[0]] == [inbound[1]]
    ack(inner.futures[0])
    assert_parent(capotel.span("send enriched"), capotel.span("process orders"))


def test_asyncio_create_task_keeps_the_trace_in_a_task_that_runs_after_the_handler(capotel):
    tasks: list[asyncio.Task[None]] = []

    async def later() -> None:
        await asyncio.sleep(0)
        with tracer.start_as_current_span("send receipt"):
            log.info("receipt sent from the task")

    @traced_handler(group="billing")
    async def handle(record):
        tasks.append(asyncio.create_task(later()))

    async def run() -> None:
        await handle(make_record("orders"))
        assert capotel.spans_named("send receipt") == []
        await tasks[0]

    asyncio.run(run())
    process = capotel.span("process orders")
    assert_parent(capotel.span("send receipt"), process)
    assert capotel.log("receipt sent from the task").log_record.trace_id == (
        process.context.trace_id
    )


def test_run_in_executor_loses_the_trace_without_help(capotel):
    @traced_handler(group="billing")
    async def handle(record):
        await asyncio.get_running_loop().run_in_executor(None, _work)

    asyncio.run(handle(make_record("orders")))
    assert capotel.span("charge card").parent is None


def test_run_in_executor_with_hand_off_keeps_the_trace(capotel):
    @traced_handler(group="billing")
    async def handle(record):
        await asyncio.get_running_loop().run_in_executor(None, hand_off(_work), "resize")

    asyncio.run(handle(make_record("orders")))
    assert_parent(capotel.span("resize"), capotel.span("process orders"))


def test_run_in_executor_with_a_hand_off_executor_keeps_the_trace(capotel):
    pool = HandOffExecutor(ThreadPoolExecutor(max_workers=1))

    @traced_handler(group="billing")
    async def handle(record):
        await asyncio.get_running_loop().run_in_executor(pool, _work, "resize")

    try:
        asyncio.run(handle(make_record("orders")))
    finally:
        pool.shutdown()
    assert_parent(capotel.span("resize"), capotel.span("process orders"))


def test_hand_off_runs_the_same_wrapper_in_two_threads_at_once(capotel):
    both_inside = threading.Barrier(2, timeout=30)

    def meet() -> None:
        with tracer.start_as_current_span("half"):
            both_inside.wait()

    with ThreadPoolExecutor(max_workers=2) as pool:

        @traced_handler(group="billing")
        def handle(record):
            wrapped = hand_off(meet)
            for future in [pool.submit(wrapped), pool.submit(wrapped)]:
                future.result()

        handle(make_record("orders"))
    halves = capotel.spans_named("half")
    assert len(halves) == 2
    for half in halves:
        assert_parent(half, capotel.span("process orders"))
    assert_same_trace(*halves)


def test_hand_off_keeps_the_wrapped_callables_name():
    assert hand_off(_work).__name__ == "_work"


def test_hand_off_refuses_a_coroutine_function():
    async def charge() -> None:
        return None

    with pytest.raises(TypeError, match="create_task"):
        hand_off(charge)


def test_hand_off_executor_shutdown_shuts_the_wrapped_executor_down():
    inner = ThreadPoolExecutor(max_workers=1)
    HandOffExecutor(inner).shutdown()
    with pytest.raises(RuntimeError, match="shutdown"):
        inner.submit(_work)
