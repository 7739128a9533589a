from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.b3 import B3MultiFormat
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from kafkascope import extract_context, inject_headers
from kafkascope._propagation.carrier import MAX_VALUE_BYTES, HeaderGetter, replace_fields

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
SPAN_ID = 0xB7AD6B7169203331
TRACEPARENT = f"00-{TRACE_ID:032x}-{SPAN_ID:016x}-01"


def _span_context(ctx: Context) -> SpanContext:
    return trace.get_current_span(ctx).get_span_context()


@pytest.mark.parametrize(
    "headers",
    [
        [("traceparent", TRACEPARENT.encode())],
        [("traceparent", TRACEPARENT)],
        [(b"traceparent", TRACEPARENT.encode())],
        [("TraceParent", TRACEPARENT.encode())],
        {"traceparent": TRACEPARENT.encode()},
        (("other", b"x"), ("traceparent", bytearray(TRACEPARENT.encode()))),
    ],
)
def test_extracts_traceparent_in_every_shape_clients_use(headers):
    ctx = _span_context(extract_context(headers))
    assert (ctx.trace_id, ctx.span_id, ctx.is_remote) == (TRACE_ID, SPAN_ID, True)


@pytest.mark.parametrize(
    "headers",
    [
        None,
        [],
        {},
        "traceparent",
        b"traceparent",
        42,
        [("traceparent",)],
        [("traceparent", b"\xc3\x28")],
        [("traceparent", 12345)],
        [("traceparent", TRACEPARENT.encode() + b" " * MAX_VALUE_BYTES)],
        [(None, TRACEPARENT.encode())],
        object(),
    ],
)
def test_bad_carriers_give_a_context_without_a_span(headers):
    assert not _span_context(extract_context(headers)).is_valid


def test_last_of_duplicate_traceparents_wins_as_with_the_java_agent():
    stale = f"00-{1:032x}-{2:016x}-01"
    headers = [("traceparent", stale.encode()), ("traceparent", TRACEPARENT.encode())]
    remote = _span_context(extract_context(headers))
    assert (remote.trace_id, remote.span_id) == (TRACE_ID, SPAN_ID)


def test_last_of_duplicate_traceparents_wins_whatever_their_case():
    stale = f"00-{1:032x}-{2:016x}-01"
    headers = [("traceparent", stale.encode()), ("Traceparent", TRACEPARENT.encode())]
    assert _span_context(extract_context(headers)).span_id == SPAN_ID


def test_tracestate_is_the_last_header_not_the_stale_ones_joined():
    stale = f"00-{1:032x}-{2:016x}-01"
    headers = [
        ("traceparent", stale.encode()),
        ("tracestate", b"old=1"),
        ("traceparent", TRACEPARENT.encode()),
        ("tracestate", b"new=2"),
    ]
    assert dict(_span_context(extract_context(headers)).trace_state) == {"new": "2"}


def test_repeated_baggage_headers_combine_and_a_later_entry_wins_as_with_the_java_agent():
    headers = [("baggage", b"tenant=stale,region=eu"), ("Baggage", b"tenant=fresh")]
    assert dict(baggage.get_all(extract_context(headers))) == {"tenant": "fresh", "region": "eu"}


def test_combined_baggage_keeps_the_latest_headers_that_fit_one_header():
    # Three 3 KiB entries (under the SDK's 4 KiB per entry) make more than one 8 KiB header.
    a, b, c = ("a=" + "x" * 3000, "b=" + "y" * 3000, "c=" + "z" * 3000)
    headers = [("baggage", a.encode()), ("baggage", b.encode()), ("baggage", b"\xff")]
    headers.append(("baggage", c.encode()))
    assert HeaderGetter().get(headers, "baggage") == [f"{b},{c}"]
    assert dict(baggage.get_all(extract_context(headers))) == {"b": "y" * 3000, "c": "z" * 3000}


def test_an_unreadable_last_traceparent_is_absent_not_the_stale_one():
    stale = f"00-{1:032x}-{2:016x}-01"
    headers = [("traceparent", stale.encode()), ("traceparent", b"\xff\xfe")]
    assert not _span_context(extract_context(headers)).is_valid


def test_getter_gives_only_the_last_value_of_a_repeated_key():
    headers = [("k", f"v{i}".encode()) for i in range(100)]
    assert HeaderGetter().get(headers, "k") == ["v99"]
    assert HeaderGetter().keys(headers) == ["k"] * 100


def test_untrusted_baggage_is_ignored():
    headers = [("traceparent", TRACEPARENT.encode()), ("baggage", b"user=alice")]
    assert baggage.get_baggage("user", extract_context(headers)) == "alice"
    assert baggage.get_baggage("user", extract_context(headers, trust_baggage=False)) is None


def test_inject_adds_current_context_without_touching_the_input():
    original = [("app", b"1")]
    parent = NonRecordingSpan(SpanContext(TRACE_ID, SPAN_ID, True, TraceFlags(1)))
    out = inject_headers(original, context=trace.set_span_in_context(parent))
    assert original == [("app", b"1")]
    assert out[0] == ("app", b"1")
    assert ("traceparent", f"00-{TRACE_ID:032x}-{SPAN_ID:016x}-01".encode()) in out


def test_inject_converts_header_shapes_to_what_clients_send():
    headers: dict[str | bytes, str | bytes | bytearray | None] = {
        "a": "text",
        b"b": None,
        "c": bytearray(b"x"),
    }
    out = inject_headers(headers)
    assert out == [("a", b"text"), ("b", None), ("c", b"x")]


STALE_TRACEPARENT = f"00-{1:032x}-{2:016x}-01".encode()
PARENT = trace.set_span_in_context(
    NonRecordingSpan(SpanContext(TRACE_ID, SPAN_ID, False, TraceFlags(1)))
)


def test_inject_replaces_a_traceparent_already_present():
    existing = [("traceparent", STALE_TRACEPARENT)]
    out = inject_headers(existing, context=PARENT)
    assert out == [("traceparent", TRACEPARENT.encode())]
    assert existing == [("traceparent", STALE_TRACEPARENT)]


def test_inject_replaces_every_field_and_keeps_the_other_headers_in_order():
    forwarded = [
        ("tracestate", b"old=1"),
        ("app", b"1"),
        ("Traceparent", STALE_TRACEPARENT),
        ("baggage", b"tenant=stale"),
        ("app", b"2"),
        ("content-type", b"json"),
    ]
    ctx = baggage.set_baggage("tenant", "fresh", PARENT)
    out = inject_headers(forwarded, context=ctx)
    assert out == [
        ("app", b"1"),
        ("app", b"2"),
        ("content-type", b"json"),
        ("traceparent", TRACEPARENT.encode()),
        ("baggage", b"tenant=fresh"),
    ]


def test_inject_drops_an_inbound_field_the_context_has_no_value_for():
    out = inject_headers([("baggage", b"tenant=stale"), ("tracestate", b"a=1")], context=PARENT)
    assert out == [("traceparent", TRACEPARENT.encode())]


def test_without_a_span_to_inject_the_headers_are_sent_as_they_are():
    forwarded = [("traceparent", STALE_TRACEPARENT), ("baggage", b"tenant=acme")]
    assert inject_headers(forwarded, context=Context()) == forwarded


def test_replace_fields_is_pure_and_case_insensitive():
    headers: list[tuple[str, bytes | None]] = [("X-Trace", b"old"), ("keep", None), ("B", b"1")]
    injected = [("x-trace", b"new")]
    out = replace_fields(headers, injected, {"b"})
    assert out == [("keep", None), ("x-trace", b"new")]
    assert headers == [("X-Trace", b"old"), ("keep", None), ("B", b"1")]
    assert injected == [("x-trace", b"new")]
    assert out is not headers


def test_replace_fields_drops_a_name_injected_even_if_not_among_the_fields():
    out = replace_fields(
        [("uberctx-tenant", b"old"), ("a", b"1")], [("uberctx-tenant", b"new")], ()
    )
    assert out == [("a", b"1"), ("uberctx-tenant", b"new")]


@pytest.fixture
def with_b3() -> Iterator[None]:
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(
        CompositePropagator(
            [TraceContextTextMapPropagator(), W3CBaggagePropagator(), B3MultiFormat()]
        )
    )
    try:
        yield
    finally:
        propagate.set_global_textmap(previous)


def test_an_extra_propagator_has_its_fields_replaced_too(with_b3):
    forwarded = [
        ("x-b3-traceid", f"{1:032x}".encode()),
        ("x-b3-spanid", f"{2:016x}".encode()),
        ("x-b3-parentspanid", f"{3:016x}".encode()),
        ("x-b3-sampled", b"0"),
        ("app", b"1"),
        ("traceparent", STALE_TRACEPARENT),
    ]
    out = inject_headers(forwarded, context=PARENT)
    names = [k for k, _ in out]
    # B3MultiFormat.fields names traceid, spanid and sampled only: parentspanid is not one of
    # its fields, so it stays (the propagator's declaration decides, as for any propagator).
    assert names[:2] == ["x-b3-parentspanid", "app"]
    assert sorted(names[2:]) == ["traceparent", "x-b3-sampled", "x-b3-spanid", "x-b3-traceid"]
    assert dict(out)["x-b3-spanid"] == f"{SPAN_ID:016x}".encode()
    assert _span_context(extract_context(out)).span_id == SPAN_ID


def test_otel_propagators_from_the_environment_decide_the_fields_replaced():
    script = (
        "from opentelemetry import trace\n"
        "from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags\n"
        "from kafkascope import inject_headers\n"
        f"span = NonRecordingSpan(SpanContext({TRACE_ID}, {SPAN_ID}, False, TraceFlags(1)))\n"
        "out = inject_headers([('x-b3-traceid', b'stale'), ('traceparent', b'stale'),"
        " ('a', b'1')], context=trace.set_span_in_context(span))\n"
        "print(sorted(k for k, _ in out))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_PROPAGATORS"] = "b3multi"
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    # b3multi alone: its fields are replaced, traceparent is no field of it and stays.
    assert (
        done.stdout.strip() == "['a', 'traceparent', 'x-b3-sampled', 'x-b3-spanid', 'x-b3-traceid']"
    )


def test_inject_rejects_values_clients_cannot_send():
    with pytest.raises(TypeError, match="'n' value must be bytes, str or None"):
        inject_headers([("n", 5)])  # type: ignore[list-item]


class _SingleHeaderPropagator(TextMapPropagator):
    """A propagator with another header name, standing for B3 or Jaeger."""

    def extract(self, carrier, context=None, getter=None):
        values = getter.get(carrier, "x-trace") if getter else None
        if not values:
            return context or Context()
        trace_id, span_id = (int(p, 16) for p in values[0].split(":"))
        span = NonRecordingSpan(SpanContext(trace_id, span_id, True, TraceFlags(1)))
        return trace.set_span_in_context(span, context)

    def inject(self, carrier, context=None, setter=None):
        ctx = trace.get_current_span(context).get_span_context()
        if ctx.is_valid and setter is not None:
            setter.set(carrier, "x-trace", f"{ctx.trace_id:x}:{ctx.span_id:x}")

    @property
    def fields(self):
        return {"x-trace"}


@pytest.fixture
def custom_propagator() -> Iterator[None]:
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(_SingleHeaderPropagator())
    try:
        yield
    finally:
        propagate.set_global_textmap(previous)


def test_the_global_propagator_is_used_both_ways(custom_propagator):
    parent = NonRecordingSpan(SpanContext(TRACE_ID, SPAN_ID, False, TraceFlags(1)))
    out = inject_headers(context=trace.set_span_in_context(parent))
    assert [k for k, _ in out] == ["x-trace"]
    assert _span_context(extract_context(out)).span_id == SPAN_ID
