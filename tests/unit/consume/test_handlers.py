from __future__ import annotations

import asyncio
import logging

import pytest
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler
from opentelemetry.trace import SpanKind, StatusCode

from kafkascope import (
    inject_headers,
    process_batch_span,
    process_span,
    traced_batch_handler,
    traced_handler,
)
from kafkascope._core import semconv as sc
from kafkascope.testing import (
    assert_linked,
    assert_messaging_attributes,
    assert_parent,
    assert_same_trace,
    make_record,
)

tracer = trace.get_tracer("tests")


def _sent_record(topic: str = "orders", **kwargs: object):
    with tracer.start_as_current_span("send orders", kind=SpanKind.PRODUCER):
        return make_record(topic, headers=inject_headers(), **kwargs)  # type: ignore[arg-type]


def test_handler_span_continues_the_producer_trace(capotel):
    record = _sent_record(partition=3, offset=42, key=b"order-1")

    @traced_handler(group="billing")
    def handle(rec):
        return "done"

    assert handle(record) == "done"
    send = capotel.span("send orders")
    process = capotel.span("process orders")
    assert_same_trace(send, process)
    assert_parent(process, send)
    assert_messaging_attributes(
        process,
        expected={
            sc.MESSAGING_DESTINATION_NAME: "orders",
            sc.MESSAGING_DESTINATION_PARTITION_ID: "3",
            sc.MESSAGING_KAFKA_OFFSET: 42,
            sc.MESSAGING_CONSUMER_GROUP_NAME: "billing",
            sc.MESSAGING_KAFKA_MESSAGE_KEY: "order-1",
        },
    )


def test_a_producer_parent_is_not_repeated_as_a_link(capotel):
    @traced_handler
    def handle(rec):
        return None

    handle(_sent_record())
    process = capotel.span("process orders")
    assert_parent(process, capotel.span("send orders"))
    assert process.links == ()


def test_span_is_current_inside_the_handler_so_nested_spans_join_the_trace(capotel):
    record = _sent_record()

    @traced_handler
    def handle(rec):
        with tracer.start_as_current_span("nested"):
            pass
        return trace.get_current_span().get_span_context().span_id

    current_id = handle(record)
    process = capotel.span("process orders")
    assert current_id == process.context.span_id
    assert_parent(capotel.span("nested"), process)


def test_links_policy_starts_a_new_trace_linked_to_the_producer(capotel):
    record = _sent_record()

    @traced_handler(parent="links")
    def handle(rec):
        return None

    handle(record)
    send, process = capotel.span("send orders"), capotel.span("process orders")
    assert process.parent is None
    assert process.context.trace_id != send.context.trace_id
    assert_linked(process, send)


def test_ambient_policy_keeps_the_current_span_as_parent_and_links_the_producer(capotel):
    record = _sent_record()

    @traced_handler(parent="ambient")
    def handle(rec):
        return None

    with tracer.start_as_current_span("poll loop"):
        handle(record)
    loop, send, process = (capotel.span(n) for n in ("poll loop", "send orders", "process orders"))
    assert_parent(process, loop)
    assert_linked(process, send)


def test_producer_policy_links_the_ambient_span(capotel):
    record = _sent_record()

    @traced_handler
    def handle(rec):
        return None

    with tracer.start_as_current_span("poll loop"):
        handle(record)
    process = capotel.span("process orders")
    assert_parent(process, capotel.span("send orders"))
    assert_linked(process, capotel.span("poll loop"))


def test_producer_baggage_is_visible_inside_the_handler(capotel):
    token = otel_context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        record = _sent_record()
    finally:
        otel_context.detach(token)

    @traced_handler
    def handle(rec):
        return baggage.get_baggage("tenant")

    assert handle(record) == "acme"


def test_missing_headers_start_a_new_trace(capotel):
    @traced_handler
    def handle(rec):
        return None

    handle(make_record("orders"))
    process = capotel.span("process orders")
    assert process.parent is None
    assert process.links == ()


@pytest.mark.parametrize(
    "headers",
    [
        [("traceparent", b"\xff\xfe garbage")],
        [("traceparent", "00-zz-yy-01")],
        [("traceparent", None)],
        [("traceparent", b"00-" + b"0" * 32 + b"-" + b"0" * 16 + b"-01")],
        {"traceparent": b"not a trace"},
        [(b"\xff", b"\xff")],
        [("traceparent", b"x" * 100_000)],
    ],
)
def test_garbage_headers_start_a_new_trace_and_the_handler_runs(capotel, headers):
    calls = []

    @traced_handler
    def handle(rec):
        calls.append(rec)

    handle(make_record("orders", headers=headers))
    assert len(calls) == 1
    assert capotel.span("process orders").parent is None


def test_handler_exception_is_recorded_and_reraised_unchanged(capotel):
    class PaymentDeclinedError(Exception):
        pass

    error = PaymentDeclinedError("card expired")

    @traced_handler
    def handle(rec):
        raise error

    with pytest.raises(PaymentDeclinedError) as caught:
        handle(_sent_record())
    assert caught.value is error
    # the innermost frame is still the handler's raise
    tb = caught.value.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    assert tb is not None
    assert tb.tb_frame.f_code.co_name == "handle"
    process = capotel.span("process orders")
    assert process.status.status_code is StatusCode.ERROR
    expected_type = f"{__name__}.test_handler_exception_is_recorded_and_reraised_unchanged"
    assert process.attributes[sc.ERROR_TYPE] == f"{expected_type}.<locals>.PaymentDeclinedError"
    assert [e.name for e in process.events] == ["exception"]
    assert process.events[0].attributes["exception.message"] == "card expired"


def test_failed_process_span_exception_event_has_no_deprecated_escaped_attribute(capotel):
    @traced_handler
    def handle(rec):
        raise KeyError("sku")

    with pytest.raises(KeyError):
        handle(make_record("orders"))
    (event,) = capotel.span("process orders").events
    assert event.name == "exception"
    assert set(event.attributes) == {
        "exception.type",
        "exception.message",
        "exception.stacktrace",
    }
    assert event.attributes["exception.type"] == "KeyError"
    assert event.attributes["exception.message"] == "'sku'"
    assert 'raise KeyError("sku")' in event.attributes["exception.stacktrace"]


def test_builtin_exception_error_type_is_the_bare_class_name(capotel):
    @traced_handler
    def handle(rec):
        raise KeyError("sku")

    with pytest.raises(KeyError):
        handle(make_record("orders"))
    assert capotel.span("process orders").attributes[sc.ERROR_TYPE] == "KeyError"


def test_async_handler_span_covers_the_await_and_is_current(capotel):
    record = _sent_record()

    @traced_handler(group="async")
    async def handle(rec):
        await asyncio.sleep(0.01)
        return trace.get_current_span().get_span_context().span_id

    span_id = asyncio.run(handle(record))
    process = capotel.span("process orders")
    assert span_id == process.context.span_id
    assert process.end_time - process.start_time >= 10_000_000
    assert_parent(process, capotel.span("send orders"))


def test_async_handler_exception_is_reraised(capotel):
    @traced_handler
    async def handle(rec):
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        asyncio.run(handle(make_record("orders")))
    assert capotel.span("process orders").status.status_code is StatusCode.ERROR


def test_method_handlers_find_the_record_after_self(capotel):
    class Service:
        topic = "not-a-record"

        @traced_handler
        def handle(self, rec):
            return rec.topic

    assert Service().handle(make_record("payments")) == "payments"
    capotel.span("process payments")


def test_context_is_restored_after_the_handler(capotel):
    before = otel_context.get_current()

    @traced_handler
    def handle(rec):
        raise RuntimeError

    with pytest.raises(RuntimeError):
        handle(_sent_record())
    assert otel_context.get_current() == before
    assert not trace.get_current_span().get_span_context().is_valid


def test_process_span_context_manager_yields_the_current_span(capotel):
    record = _sent_record(offset=7)
    with process_span(record, group="g") as span:
        assert trace.get_current_span() is span
    process = capotel.span("process orders")
    assert process.attributes[sc.MESSAGING_KAFKA_OFFSET] == 7
    assert_parent(process, capotel.span("send orders"))


def test_process_span_async_form_records_errors(capotel):
    async def run() -> None:
        async with process_span(make_record("orders")) as span:
            assert span.is_recording()
            raise LookupError("x")

    with pytest.raises(LookupError):
        asyncio.run(run())
    assert capotel.span("process orders").attributes[sc.ERROR_TYPE] == "LookupError"


def test_tombstone_is_flagged_and_non_utf8_keys_are_not_recorded(capotel):
    @traced_handler
    def handle(rec):
        return None

    handle(make_record("orders", value=None, key=b"\xff\xfe"))
    attrs = capotel.span("process orders").attributes
    assert attrs[sc.MESSAGING_KAFKA_MESSAGE_TOMBSTONE] is True
    assert sc.MESSAGING_KAFKA_MESSAGE_KEY not in attrs


def test_key_capture_can_be_switched_off_per_handler(capotel):
    @traced_handler(capture_key=False)
    def handle(rec):
        return None

    handle(make_record("orders", key=b"customer-42"))
    assert sc.MESSAGING_KAFKA_MESSAGE_KEY not in capotel.span("process orders").attributes


def test_server_option_sets_server_address_and_port(capotel):
    @traced_handler(server="broker-1:9092,broker-2:9092")
    def handle(rec):
        return None

    handle(make_record("orders"))
    attrs = capotel.span("process orders").attributes
    assert (attrs[sc.SERVER_ADDRESS], attrs[sc.SERVER_PORT]) == ("broker-1", 9092)


def test_batch_handler_links_every_message(capotel):
    records = [_sent_record(partition=p, offset=o) for p, o in ((0, 1), (1, 5), (0, 2))]

    @traced_batch_handler(group="bulk")
    def handle(batch):
        return len(batch)

    assert handle(records) == 3
    process = capotel.span("process orders")
    sends = capotel.spans_named("send orders")
    assert len(sends) == 3
    assert len(process.links) == 3
    for send in sends:
        assert_linked(process, send)
    link_attrs = [dict(link.attributes) for link in process.links]
    # The topic is the span's own destination: the links do not repeat it.
    assert link_attrs[1] == {
        sc.MESSAGING_DESTINATION_PARTITION_ID: "1",
        sc.MESSAGING_KAFKA_OFFSET: 5,
    }
    assert process.attributes[sc.MESSAGING_DESTINATION_NAME] == "orders"
    assert process.attributes[sc.MESSAGING_BATCH_MESSAGE_COUNT] == 3
    assert_messaging_attributes(process, expected={sc.MESSAGING_CONSUMER_GROUP_NAME: "bulk"})


def test_a_batch_over_several_topics_names_each_links_topic(capotel):
    records = [
        _sent_record("a", partition=0, offset=3),
        _sent_record("b", partition=2, offset=9),
    ]

    @traced_batch_handler
    def handle(batch):
        return None

    handle(records)
    links = [dict(link.attributes) for link in capotel.span("process").links]
    assert links == [
        {
            sc.MESSAGING_DESTINATION_NAME: "a",
            sc.MESSAGING_DESTINATION_PARTITION_ID: "0",
            sc.MESSAGING_KAFKA_OFFSET: 3,
        },
        {
            sc.MESSAGING_DESTINATION_NAME: "b",
            sc.MESSAGING_DESTINATION_PARTITION_ID: "2",
            sc.MESSAGING_KAFKA_OFFSET: 9,
        },
    ]


def test_batch_over_several_topics_has_no_destination_name(capotel):
    @traced_batch_handler
    def handle(batch):
        return None

    handle({"tp-a": [make_record("a")], "tp-b": [make_record("b")]})
    process = capotel.span("process")
    assert sc.MESSAGING_DESTINATION_NAME not in process.attributes
    assert process.attributes[sc.MESSAGING_BATCH_MESSAGE_COUNT] == 2


def test_batch_context_manager_form(capotel):
    with process_batch_span([make_record("a"), make_record("a")]) as span:
        assert trace.get_current_span() is span
    assert capotel.span("process a").attributes[sc.MESSAGING_BATCH_MESSAGE_COUNT] == 2


def test_explicit_tracer_provider_is_used():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    @traced_handler(tracer_provider=provider)
    def handle(rec):
        return None

    handle(make_record("orders"))
    assert [s.name for s in exporter.get_finished_spans()] == ["process orders"]


def test_unsampled_message_still_runs_the_handler_inside_a_non_recording_span():
    provider = TracerProvider(sampler=ALWAYS_OFF)

    @traced_handler(tracer_provider=provider)
    def handle(rec):
        return trace.get_current_span().is_recording()

    assert handle(make_record("orders")) is False


@pytest.mark.parametrize(
    ("kwargs", "error", "named"),
    [
        ({"parent": "child"}, ValueError, "parent='child'"),
        ({"group": 5}, TypeError, "group"),
        ({"group": ""}, TypeError, "group"),
        ({"server": "host:99999"}, ValueError, "server"),
        ({"server": 9092}, TypeError, "server"),
        ({"capture_key": "yes"}, TypeError, "capture_key"),
        ({"tracer_provider": object()}, TypeError, "tracer_provider"),
    ],
)
def test_bad_options_fail_at_decoration_naming_the_setting(kwargs, error, named):
    with pytest.raises(error, match=named):
        traced_handler(**kwargs)


def test_generator_handlers_are_refused():
    def gen(rec):
        yield rec

    with pytest.raises(TypeError, match="generator"):
        traced_handler(gen)


def test_non_record_argument_runs_the_handler_without_a_span(capotel):
    @traced_handler
    def handle(payload):
        return payload * 2

    assert handle(21) == 42
    assert capotel.spans == []


def _consumer_record() -> object:
    from kafka.consumer.fetcher import ConsumerRecord

    return ConsumerRecord("orders", 0, -1, 7, 0, 0, b"k", b"v", [], None, 1, 1, -1)


# kafka-python's records take the flat path (found by their type, read, span opened at once);
# other records are found among the arguments first.
@pytest.mark.parametrize(
    "record", [make_record("orders"), _consumer_record()], ids=["found", "kafka-python"]
)
def test_instrumentation_failure_is_logged_once_and_never_reaches_the_handler(
    record, forgiving, caplog
):
    class BrokenTracerProvider(TracerProvider):
        def get_tracer(self, *args, **kwargs):
            raise RuntimeError("exporter exploded")

    calls = []

    @traced_handler(tracer_provider=BrokenTracerProvider())
    def handle(rec):
        calls.append(rec)
        return "ok"

    with caplog.at_level(logging.WARNING, logger="kafkascope"):
        results = [handle(record) for _ in range(3)]
    assert results == ["ok"] * 3
    assert calls == [record] * 3
    warnings = [r for r in caplog.records if r.name == "kafkascope"]
    assert len(warnings) == 1
    assert "process span start" in warnings[0].getMessage()


def test_key_hook_redacts_keys(capotel):
    from kafkascope._core import settings as _settings

    _settings.update(key_hook=lambda key: key[:3] + "***")

    @traced_handler
    def handle(rec):
        return None

    handle(make_record("orders", key="customer-42"))
    assert capotel.span("process orders").attributes[sc.MESSAGING_KAFKA_MESSAGE_KEY] == "cus***"


def test_unsampled_message_does_not_decode_or_redact_its_key():
    from kafkascope._core import settings as _settings

    calls: list[str] = []

    def hook(key: str) -> str:
        calls.append(key)
        return key

    _settings.update(key_hook=hook)
    exporter = InMemorySpanExporter()
    sampled = TracerProvider()
    sampled.add_span_processor(SimpleSpanProcessor(exporter))
    for provider in (TracerProvider(sampler=ALWAYS_OFF), sampled):
        traced_handler(tracer_provider=provider)(lambda rec: None)(
            make_record("orders", key=b"customer-42")
        )
    assert calls == ["customer-42"]  # only for the sampled span
    (span,) = exporter.get_finished_spans()
    assert dict(span.attributes or {})[sc.MESSAGING_KAFKA_MESSAGE_KEY] == "customer-42"


def test_samplers_are_given_the_sampling_relevant_attributes():
    seen: list[dict[str, object]] = []

    class Recording(Sampler):
        def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None,
                          links=None, trace_state=None):  # fmt: skip
            seen.append(dict(attributes or {}))
            return ALWAYS_ON.should_sample(parent_context, trace_id, name, kind, attributes)

        def get_description(self) -> str:
            return "recording"

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=Recording())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    handle = traced_handler(group="billing", server="kafka:9092", tracer_provider=provider)(
        lambda rec: None
    )
    handle(make_record("orders", key=b"k", partition=3, offset=7, timestamp=1))
    assert seen == [
        {
            sc.MESSAGING_SYSTEM: "kafka",
            sc.MESSAGING_OPERATION_NAME: "process",
            sc.MESSAGING_OPERATION_TYPE: "process",
            sc.MESSAGING_DESTINATION_NAME: "orders",
            sc.MESSAGING_DESTINATION_PARTITION_ID: "3",
            sc.MESSAGING_CONSUMER_GROUP_NAME: "billing",
            sc.SERVER_ADDRESS: "kafka",
            sc.SERVER_PORT: 9092,
        }
    ]
    (span,) = exporter.get_finished_spans()
    exported = dict(span.attributes or {})
    assert exported[sc.MESSAGING_KAFKA_OFFSET] == 7
    assert exported[sc.MESSAGING_KAFKA_MESSAGE_KEY] == "k"


def test_a_generator_batch_reaches_the_handler_whole(capotel):
    @traced_batch_handler
    def handle(batch):
        return [r.offset for r in batch]

    records = [make_record("orders", offset=i) for i in range(3)]
    assert handle(r for r in records) == [0, 1, 2]
    assert len(capotel.spans) == 1


def test_an_argument_whose_attributes_raise_still_runs_the_handler(capotel):
    class Exploding:
        def __getattr__(self, name):
            raise RuntimeError(f"lazy proxy cannot load {name}")

    @traced_handler
    def handle(payload):
        return "ran"

    assert handle(Exploding()) == "ran"
    assert capotel.spans == []


def test_keys_that_cannot_be_exported_are_not_recorded(capotel):
    @traced_handler
    def handle(rec):
        return None

    handle(make_record("orders", key="bad\ud800key"))
    assert sc.MESSAGING_KAFKA_MESSAGE_KEY not in capotel.span("process orders").attributes


def _by_keyword(rec):
    return None


def _after_a_positional(ctx, rec):
    return None


def _keyword_only(*, rec):
    return None


def _any_keyword(**kwargs):
    return None


@pytest.mark.parametrize(
    ("handler", "args", "keyword"),
    [
        (_by_keyword, (), "rec"),
        (_after_a_positional, ("context",), "rec"),
        (_keyword_only, (), "rec"),
        (_any_keyword, (), "message"),
    ],
)
def test_a_record_passed_by_keyword_is_traced(capotel, handler, args, keyword):
    traced_handler(handler)(*args, **{keyword: make_record("orders")})
    capotel.span("process orders")


def test_a_method_given_its_record_by_keyword_is_traced(capotel):
    class Service:
        @traced_handler
        def handle(self, rec):
            return rec.offset

    assert Service().handle(rec=make_record("orders", offset=7)) == 7
    assert capotel.span("process orders").attributes[sc.MESSAGING_KAFKA_OFFSET] == 7


def _no_argument():
    return None


class _Service:
    def only_self(self):
        return None


@pytest.mark.parametrize("decorator", [traced_handler, traced_batch_handler])
@pytest.mark.parametrize(
    ("function", "named"), [(_no_argument, "_no_argument"), (_Service.only_self, "only_self")]
)
def test_a_function_that_takes_no_argument_is_refused_at_decoration_naming_it(
    decorator, function, named
):
    with pytest.raises(TypeError, match=rf"{named}\(\): it takes no argument"):
        decorator(function)


def _misuse_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "without a Kafka record" in r.getMessage()]


def test_a_call_without_a_record_warns_once_per_handler_naming_it(capotel, caplog):
    @traced_handler
    def double(payload):
        return payload * 2

    @traced_handler
    def triple(payload):
        return payload * 3

    with caplog.at_level(logging.WARNING, logger="kafkascope"):
        assert [double(21) for _ in range(3)] == [42] * 3
        assert triple(1) == 3
    first, second = _misuse_warnings(caplog)
    assert "double was called without a Kafka record (arguments: int)" in first
    assert "by keyword as 'payload'" in first
    assert "triple was called" in second
    assert capotel.spans == []


def test_the_warning_names_the_arguments_types_never_their_values(capotel, caplog):
    @traced_handler
    def handle(payload, *, retries):
        return None

    with caplog.at_level(logging.WARNING, logger="kafkascope"):
        handle(b"card=4111-1111", retries="secret-3")
    [warning] = _misuse_warnings(caplog)
    assert "(arguments: bytes, retries=str)" in warning
    assert "4111" not in warning
    assert "secret" not in warning


@pytest.mark.parametrize("batch", [False, True], ids=["message", "batch"])
def test_a_failure_to_record_the_error_on_the_span_still_counts_it_failed(
    capotel, forgiving, monkeypatch: pytest.MonkeyPatch, batch: bool
):
    import kafkascope._consume.scope as scope

    def broken(*args: object) -> None:
        raise RuntimeError("instrumentation broke")

    monkeypatch.setattr(scope, "record_error", broken)
    decorate = traced_batch_handler if batch else traced_handler

    @decorate(group="billing")
    def handle(arg):
        raise KeyError("missing")

    with pytest.raises(KeyError, match="missing"):
        handle([make_record("orders")] if batch else make_record("orders"))
    point = capotel.metric(sc.METRIC_PROCESS_DURATION, {sc.ERROR_TYPE: "KeyError"})
    assert point.count == 1


@pytest.mark.parametrize("carried", [False, True], ids=["context var", "in the context too"])
def test_the_running_message_has_every_field_set(capotel, monkeypatch, carried):
    """The message a handler runs in is built field by field (no __init__ call per message):
    each of its fields is set, and to the record's values."""
    from kafkascope._core import message

    monkeypatch.setattr(message, "carried", carried)
    seen: list[message.Processing] = []

    @traced_handler(group="billing")
    def handle(record):
        current = message.current_message.get()
        assert current is not None
        in_context = otel_context.get_value(message.CONTEXT_KEY)
        assert in_context is (current if carried else None)
        seen.append(current)
        return trace.get_current_span()

    span = handle(make_record("orders", partition=2, offset=41))
    [current] = seen
    fields = {name: getattr(current, name) for name in message.Processing.__slots__}
    assert fields == {
        "topic": "orders",
        "partition": 2,
        "offset": 41,
        "group": "billing",
        "stamp": None,
        "span": span,
        "attempt": 1,
    }
    assert message.current_message.get() is None


@pytest.mark.parametrize("failed", [False, True], ids=["success", "failure"])
def test_a_span_finished_in_another_context_leaves_no_message_there(capotel, failed):
    """An async generator's ``process_span`` may exit in another context than it entered:
    finishing there raises nothing into the handler and leaves no message current there, on
    the common path (success) as on the general one."""
    import contextvars

    from kafkascope._consume.options import ProcessOptions
    from kafkascope._consume.single import begin
    from kafkascope._core.message import current_message

    entered = contextvars.copy_context()
    scope = entered.run(begin, ProcessOptions(group="billing"), make_record("orders"))
    assert scope is not None
    assert entered.run(current_message.get) is not None

    def finish_elsewhere():
        current_message.set(entered.run(current_message.get))  # as the generator sees it
        scope.finish(ValueError("boom") if failed else None)
        return current_message.get()

    assert contextvars.copy_context().run(finish_elsewhere) is None
    span = capotel.span("process orders")
    assert span.status.status_code is (StatusCode.ERROR if failed else StatusCode.UNSET)
