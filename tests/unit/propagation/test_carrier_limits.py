"""Inbound headers are untrusted: baggage and tracestate stay bounded whatever arrives.

The SDK's W3C propagators bound what they read themselves (baggage: the first header only, at
most 8192 bytes and 180 entries; tracestate: 8192 characters over all headers and 32 members).
These tests pin the bounds kafkascope adds for every propagator, including ones that would join
duplicate headers (the getter only ever gives the last one) or enumerate header names, and the
``trust_baggage`` switch.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import Getter, TextMapPropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from kafkascope import extract_context, traced_handler
from kafkascope._core import settings as _settings
from kafkascope._propagation.carrier import (
    MAX_BAGGAGE_BYTES,
    MAX_BAGGAGE_ENTRIES,
    MAX_KEYS,
    MAX_VALUE_BYTES,
    HeaderGetter,
)
from kafkascope.testing import make_record

TRACEPARENT = f"00-{'a' * 32}-{'b' * 16}-01"
MANY = 10_000
FAST_ENOUGH = 0.5
"""Seconds: extraction of the largest inputs below takes a few milliseconds; this is the bound
that a quadratic or unbounded read would blow through."""


def _timed(headers: Any) -> tuple[Context, float]:
    start = time.perf_counter()
    ctx = extract_context(headers)
    return ctx, time.perf_counter() - start


def _joined_size(entries: Any) -> int:
    return len(",".join(f"{k}={v}" for k, v in entries.items()).encode())


class JoiningBaggagePropagator(TextMapPropagator):
    """Joins every ``baggage`` header (as RFC 9110 allows) and keeps every entry: no limits."""

    def extract(
        self, carrier: Any, context: Context | None = None, getter: Getter[Any] | None = None
    ) -> Context:
        ctx = context if context is not None else Context()
        values = getter.get(carrier, "baggage") if getter is not None else None
        for member in ",".join(values or ()).split(","):
            name, sep, value = member.partition("=")
            if sep:
                ctx = baggage.set_baggage(name.strip(), value.strip(), ctx)
        return ctx

    def inject(self, carrier: Any, context: Context | None = None, setter: Any = None) -> None:
        return None

    @property
    def fields(self) -> set[str]:
        return {"baggage"}


class PrefixBaggagePropagator(TextMapPropagator):
    """Jaeger's ``uberctx-{name}`` baggage: one entry per header, found by enumerating keys."""

    def extract(
        self, carrier: Any, context: Context | None = None, getter: Getter[Any] | None = None
    ) -> Context:
        ctx = context if context is not None else Context()
        if getter is None:
            return ctx
        for key in getter.keys(carrier):
            if key.startswith("uberctx-"):
                values = getter.get(carrier, key)
                if values:
                    ctx = baggage.set_baggage(key[len("uberctx-") :], values[0], ctx)
        return ctx

    def inject(self, carrier: Any, context: Context | None = None, setter: Any = None) -> None:
        return None

    @property
    def fields(self) -> set[str]:
        return set()


@pytest.fixture
def unbounded_propagators() -> Iterator[None]:
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(
        CompositePropagator(
            [
                TraceContextTextMapPropagator(),
                JoiningBaggagePropagator(),
                PrefixBaggagePropagator(),
            ]
        )
    )
    try:
        yield
    finally:
        propagate.set_global_textmap(previous)


def test_sdk_baggage_propagator_keeps_its_own_limits():
    # What the bounds below are aligned with: the SDK never yields more than this.
    assert W3CBaggagePropagator._MAX_PAIRS == MAX_BAGGAGE_ENTRIES
    assert W3CBaggagePropagator._MAX_HEADER_LENGTH == MAX_BAGGAGE_BYTES


def test_ten_thousand_baggage_headers_give_bounded_baggage_quickly():
    headers = [("traceparent", TRACEPARENT.encode())]
    headers += [("baggage", f"k{i}=v{i}".encode()) for i in range(MANY)]
    ctx, took = _timed(headers)
    assert 0 < len(baggage.get_all(ctx)) <= MAX_BAGGAGE_ENTRIES
    assert trace.get_current_span(ctx).get_span_context().is_valid
    assert took < FAST_ENOUGH


def test_one_header_of_ten_thousand_entries_is_ignored_as_too_large():
    entries = ",".join(f"k{i}=v{i}" for i in range(MANY))
    ctx, took = _timed([("baggage", entries.encode())])
    assert dict(baggage.get_all(ctx)) == {}
    assert took < FAST_ENOUGH


def test_baggage_header_at_the_limit_keeps_at_most_the_sdk_entry_count():
    entries = ",".join(f"k{i}=1" for i in range(MAX_BAGGAGE_ENTRIES * 2))[:MAX_VALUE_BYTES]
    entries = entries.rsplit(",", 1)[0]
    ctx = extract_context([("baggage", entries.encode())])
    assert len(baggage.get_all(ctx)) == MAX_BAGGAGE_ENTRIES


def test_a_joining_propagator_gets_bounded_text_and_yields_bounded_baggage(
    unbounded_propagators,
):
    # Each header is a maximal W3C baggage list; a propagator that joins duplicates would see
    # 10,000 of them (80 MB, a million entries) if the getter gave them all.
    packed = ",".join(f"k{i}=1" for i in range(MAX_VALUE_BYTES))[:MAX_VALUE_BYTES]
    packed = packed.rsplit(",", 1)[0]
    headers = [("baggage", packed.encode())] * MANY
    assert HeaderGetter().get(headers, "baggage") == [packed]
    ctx, took = _timed(headers)
    entries = baggage.get_all(ctx)
    assert 0 < len(entries) <= MAX_BAGGAGE_ENTRIES
    assert _joined_size(entries) <= MAX_BAGGAGE_BYTES
    assert took < FAST_ENOUGH


def test_a_repeated_maximal_header_is_read_once():
    big = "k=" + "v" * (MAX_VALUE_BYTES - 2)
    headers = [("baggage", big.encode())] * 8
    assert HeaderGetter().get(headers, "baggage") == [big]


def test_large_baggage_entries_are_trimmed_to_the_byte_budget(unbounded_propagators):
    value = "v" * 1000
    headers = [("baggage", f"k{i}={value}".encode()) for i in range(8)]
    headers += [(f"uberctx-u{i}", value.encode()) for i in range(MANY)]
    ctx, took = _timed(headers)
    entries = baggage.get_all(ctx)
    assert 0 < len(entries) <= MAX_BAGGAGE_ENTRIES
    assert _joined_size(entries) <= MAX_BAGGAGE_BYTES
    assert took < FAST_ENOUGH


def test_enumerating_propagators_see_a_bounded_number_of_keys(unbounded_propagators):
    headers = [(f"uberctx-k{i}", b"v") for i in range(MANY)]
    assert len(HeaderGetter().keys(headers)) == MAX_KEYS
    ctx, took = _timed(headers)
    assert 0 < len(baggage.get_all(ctx)) <= min(MAX_KEYS, MAX_BAGGAGE_ENTRIES)
    assert took < FAST_ENOUGH


def test_ten_thousand_tracestate_headers_keep_the_trace_with_bounded_state():
    headers = [("traceparent", TRACEPARENT.encode())]
    headers += [("tracestate", f"v{i}=x".encode()) for i in range(MANY)]
    ctx, took = _timed(headers)
    span_context = trace.get_current_span(ctx).get_span_context()
    assert span_context.trace_id == int("a" * 32, 16)
    assert len(span_context.trace_state) <= 32
    assert took < FAST_ENOUGH


def test_huge_tracestate_is_dropped_but_the_trace_is_kept():
    members = ",".join(f"v{i}=x" for i in range(MANY))
    headers = [("traceparent", TRACEPARENT.encode()), ("tracestate", members.encode())]
    span_context = trace.get_current_span(extract_context(headers)).get_span_context()
    assert span_context.is_valid
    assert len(span_context.trace_state) == 0


def test_baggage_with_unsendable_text_does_not_cost_the_trace():
    headers = [("traceparent", TRACEPARENT), ("baggage", "k=\ud800")]
    assert trace.get_current_span(extract_context(headers)).get_span_context().is_valid


def test_a_malformed_header_does_not_hide_the_ones_after_it():
    headers: list[Any] = [("traceparent",), 5, ("traceparent", TRACEPARENT.encode())]
    assert trace.get_current_span(extract_context(headers)).get_span_context().is_valid


def test_untrusted_baggage_keeps_the_callers_own(unbounded_propagators):
    mine = baggage.set_baggage("mine", "1", Context())
    headers = [("baggage", b"theirs=1"), ("uberctx-jaeger", b"1")]
    ctx = extract_context(headers, context=mine, trust_baggage=False)
    assert dict(baggage.get_all(ctx)) == {"mine": "1"}


@pytest.mark.parametrize("trust", [True, False])
def test_trust_baggage_setting_decides_what_the_handler_sees(unbounded_propagators, trust):
    _settings.update(trust_baggage=trust)
    headers = [
        ("traceparent", TRACEPARENT.encode()),
        ("baggage", b"user=alice"),
        ("uberctx-tenant", b"acme"),
    ]
    seen: list[dict[str, object]] = []

    @traced_handler
    def handle(record: object) -> None:
        seen.append(dict(baggage.get_all()))

    handle(make_record("orders", headers=headers))
    assert seen == [{"user": "alice", "tenant": "acme"} if trust else {}]
