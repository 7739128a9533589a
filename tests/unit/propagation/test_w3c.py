"""The direct W3C extraction gives what the SDK's propagators give, on any input."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import kafkascope
from kafkascope._propagation import w3c as _fast_extract
from kafkascope._propagation.carrier import MAX_VALUE_BYTES
from kafkascope._propagation.inject import inject_span

SDK = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])


class DictGetter(Getter[dict[str, str]]):
    def get(self, carrier: dict[str, str], key: str) -> list[str] | None:
        return [carrier[key]] if key in carrier else None

    def keys(self, carrier: dict[str, str]) -> list[str]:
        return list(carrier)


def _decoded(value: bytes | None) -> str | None:
    """How kafkascope's carrier reads a header value: strict UTF-8 within the size bound."""
    if value is None or len(value) > MAX_VALUE_BYTES:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _sdk(traceparent, tracestate, bag, context=None) -> Context:
    carrier = {
        name: text
        for name, value in zip(_fast_extract.FIELDS, (traceparent, tracestate, bag), strict=True)
        if (text := _decoded(value)) is not None
    }
    return SDK.extract(carrier, context, getter=DictGetter())


def _view(ctx: Context) -> tuple[Any, ...]:
    span_context = trace.get_current_span(ctx).get_span_context()
    return (
        span_context,
        span_context.trace_state.to_header(),
        dict(baggage.get_all(ctx)),
        sorted(ctx.keys()),
    )


HEX = "0123456789abcdef"
hex_text = lambda n: st.text(HEX, min_size=n, max_size=n)  # noqa: E731


@st.composite
def traceparents(draw: st.DrawFn) -> bytes:
    version = draw(st.sampled_from(["00", "01", "cc", "ff", "0A", "fe"]))
    trace_id = draw(st.one_of(hex_text(32), st.just("0" * 32)))
    span_id = draw(st.one_of(hex_text(16), st.just("0" * 16)))
    flags = draw(st.one_of(hex_text(2), st.sampled_from(["00", "01", "03", "FF", "g1"])))
    text = f"{version}-{trace_id}-{span_id}-{flags}"
    mutation = draw(
        st.sampled_from(
            ["none"] * 6
            + ["upper", "upper-one", "drop", "add", "extra", "spaces", "newline", "sep", "tabs"]
        )
    )
    if mutation == "upper":
        text = text.upper()
    elif mutation == "upper-one":
        index = draw(st.integers(0, len(text) - 1))
        text = text[:index] + text[index].upper() + text[index + 1 :]
    elif mutation == "drop":
        index = draw(st.integers(0, len(text) - 1))
        text = text[:index] + text[index + 1 :]
    elif mutation == "add":
        index = draw(st.integers(0, len(text)))
        text = text[:index] + draw(st.sampled_from(["a", "0", "-", "_", "é"])) + text[index:]
    elif mutation == "extra":
        text += "-" + draw(st.text(max_size=20))
    elif mutation == "spaces":
        text = " " * draw(st.integers(0, 2)) + text + " " * draw(st.integers(0, 2))
    elif mutation == "newline":
        text += "\n"
    elif mutation == "sep":
        text = text.replace("-", draw(st.sampled_from(["_", "--", ""])), 1)
    elif mutation == "tabs":
        text = "\t" + text + "\t"
    return text.encode("utf-8", "surrogatepass")


TRACESTATE_KEY = st.from_regex(
    r"[a-z][a-z0-9_\-*/]{0,10}(@[a-z][a-z0-9_\-*/]{0,5})?", fullmatch=True
)
TRACESTATE_VALUE = st.from_regex(
    r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,15}[\x21-\x2b\x2d-\x3c\x3e-\x7e]", fullmatch=True
)
tracestates = st.one_of(
    st.lists(st.tuples(TRACESTATE_KEY, TRACESTATE_VALUE), max_size=40).map(
        lambda pairs: ",".join(f"{k}={v}" for k, v in pairs).encode()
    ),
    st.text(max_size=60).map(lambda t: t.encode("utf-8", "surrogatepass")),
)
BAGGAGE_KEY = st.from_regex(r"[!#-'*+\-.0-9A-Z^-z|~]{1,12}", fullmatch=True)
BAGGAGE_VALUE = st.one_of(
    st.from_regex(r"[!#-+\--:<-\[\]-~]{0,12}", fullmatch=True),
    st.text(max_size=8).map(lambda t: "".join(f"%{b:02X}" for b in t.encode("utf-8", "replace"))),
)
BAGGAGE_MEMBER = st.one_of(
    st.tuples(BAGGAGE_KEY, BAGGAGE_VALUE).map(lambda kv: f"{kv[0]}={kv[1]}"),
    st.tuples(BAGGAGE_KEY, BAGGAGE_VALUE, BAGGAGE_KEY).map(lambda kv: f"{kv[0]} = {kv[1]};{kv[2]}"),
    st.text(max_size=12),
)
baggages = st.one_of(
    st.lists(BAGGAGE_MEMBER, max_size=30).map(
        lambda ms: ", ".join(ms).encode("utf-8", "surrogatepass")
    ),
    st.lists(st.just("k=v"), min_size=170, max_size=200).map(lambda ms: ",".join(ms).encode()),
    st.just(b"big=" + b"x" * 4100),
    st.binary(max_size=40),
)
hostile = st.one_of(
    st.binary(max_size=80),
    st.just(b"x" * (MAX_VALUE_BYTES + 1)),
    st.just(b"\xff\xfe" + b"0" * 53),
    st.text(max_size=60).map(lambda t: t.encode("utf-8", "surrogatepass")),
)
contexts = st.one_of(
    st.none(),
    st.just(baggage.set_baggage("upstream", "kept", Context())),
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    traceparent=st.one_of(st.none(), traceparents(), hostile),
    tracestate=st.one_of(st.none(), tracestates, hostile),
    bag=st.one_of(st.none(), baggages, hostile),
    context=contexts,
)
@example(b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", None, None, None)
@example(b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-", None, None, None)
@example(b"01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x", b"a=1,a=2", None, None)
@example(b"00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01", None, None, None)
@example(b"00-0af7651916cd43dd8448eb211c80319C-b7ad6b7169203331-01", None, None, None)
@example(b"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", None, None, None)
@example(b"00-00000000000000000000000000000000-b7ad6b7169203331-01", None, None, None)
@example(b"00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", None, None, None)
@example(b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", b"a=1", b"x=%FF", None)
def test_direct_extraction_equals_the_sdk_propagators(traceparent, tracestate, bag, context):
    fast = _fast_extract.extract_w3c(traceparent, tracestate, bag, context=context)
    assert _view(fast) == _view(_sdk(traceparent, tracestate, bag, context))


@settings(max_examples=600, deadline=None)
@given(traceparent=traceparents(), tracestate=st.one_of(st.none(), tracestates))
def test_direct_traceparent_parsing_equals_the_sdk(traceparent, tracestate):
    fast = _fast_extract.extract_w3c(traceparent, tracestate, None)
    assert _view(fast) == _view(_sdk(traceparent, tracestate, None))


@settings(max_examples=200, deadline=None)
@given(
    traceparent=st.one_of(st.none(), traceparents()),
    tracestate=st.one_of(st.none(), tracestates),
    bag=st.one_of(st.none(), baggages),
)
def test_direct_extraction_equals_extract_context_on_single_headers(traceparent, tracestate, bag):
    headers = [("content-type", b"application/json")]
    headers += [
        (name, value)
        for name, value in zip(_fast_extract.FIELDS, (traceparent, tracestate, bag), strict=True)
        if value is not None
    ]
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(SDK)
    try:
        expected = kafkascope.extract_context(headers)
    finally:
        propagate.set_global_textmap(previous)
    fast = _fast_extract.extract_w3c(traceparent, tracestate, bag)
    assert _view(fast)[:3] == _view(expected)[:3]


def test_the_canonical_traceparent_gives_a_remote_span_context():
    ctx = _fast_extract.extract_w3c(
        b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", b"rojo=00f067aa0ba902b7", None
    )
    span_context = trace.get_current_span(ctx).get_span_context()
    assert span_context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert span_context.span_id == 0xB7AD6B7169203331
    assert span_context.is_remote
    assert span_context.trace_flags.sampled
    assert span_context.trace_state.to_header() == "rojo=00f067aa0ba902b7"


def test_no_baggage_header_leaves_the_given_baggage_alone():
    base = baggage.set_baggage("upstream", "kept", Context())
    ctx = _fast_extract.extract_w3c(None, None, None, context=base)
    assert dict(baggage.get_all(ctx)) == {"upstream": "kept"}


def test_the_propagator_installed_from_the_default_environment_is_the_default():
    if not _fast_extract._INSTALLED_IS_DEFAULT:
        pytest.skip("this process was started with a custom OTEL_PROPAGATORS")
    assert _fast_extract.is_default_propagator(_fast_extract._INSTALLED)


def test_a_propagator_set_later_is_not_taken_for_the_default():
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(
        CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    )
    try:
        assert not _fast_extract.is_default_propagator()
    finally:
        propagate.set_global_textmap(previous)
    assert not _fast_extract.is_default_propagator(TraceContextTextMapPropagator())


HEADER_NAMES = st.sampled_from(
    ["traceparent", "tracestate", "baggage", "TraceParent", "BAGGAGE", "Tracestate", "x-id"]
)
HEADER_VALUES = st.one_of(
    st.none(),
    traceparents(),
    tracestates,
    baggages,
    hostile,
    traceparents().map(lambda v: v.decode("utf-8", "surrogatepass")),
    baggages.map(bytearray),
    st.integers(),
)
header_lists = st.lists(
    st.one_of(
        st.tuples(HEADER_NAMES, HEADER_VALUES),
        st.tuples(HEADER_NAMES.map(str.encode), HEADER_VALUES),
        st.just(("x",)),
    ),
    max_size=8,
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(headers=header_lists, trust_baggage=st.booleans(), as_mapping=st.booleans())
@example([("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")], True, False)
@example([("baggage", b"a=1"), ("Baggage", b"a=2,b=3")], True, False)
@example([("baggage", b"")], True, False)
def test_one_pass_extraction_equals_extract_context(headers, trust_baggage, as_mapping):
    carrier: Any = dict(headers) if as_mapping and all(len(h) == 2 for h in headers) else headers
    assert _fast_extract.is_default_propagator()
    fast = _fast_extract.extract_headers(carrier, trust_baggage=trust_baggage)
    expected = kafkascope.extract_context(carrier, trust_baggage=trust_baggage)
    assert _view(fast)[:3] == _view(expected)[:3]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(headers=header_lists, trust_baggage=st.booleans())
@example([("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")], True)
def test_a_span_context_the_scan_parsed_is_valid_and_not_yet_in_its_context(headers, trust_baggage):
    context, parsed, _, _ = _fast_extract.scan_headers(headers, trust_baggage=trust_baggage)
    if parsed is not None:
        assert parsed.is_valid
        assert parsed.is_remote
        assert trace.get_current_span(context) is trace.INVALID_SPAN
        whole = _fast_extract.with_remote_span(context, parsed)
        expected = kafkascope.extract_context(headers, trust_baggage=trust_baggage)
        assert _view(whole)[:3] == _view(expected)[:3]


@pytest.mark.parametrize(
    ("headers", "parsed"),
    [
        ([("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")], True),
        ([("TraceParent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")], True),
        # Baggage too: one whole context. Not canonical: the SDK parses it.
        (
            [
                ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
                ("baggage", b"a=1"),
            ],
            False,
        ),
        ([("traceparent", b" 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")], False),
        ([("traceparent", b"00-00000000000000000000000000000000-b7ad6b7169203331-01")], False),
        ([("x-id", b"1")], False),
    ],
)
def test_the_scan_parses_a_lone_canonical_traceparent_itself(
    headers: list[tuple[str, Any]], parsed: bool
) -> None:
    context, span_context, _, _ = _fast_extract.scan_headers(headers)
    assert (span_context is not None) is parsed
    if span_context is not None:
        context = _fast_extract.with_remote_span(context, span_context)
    assert _view(context) == _view(kafkascope.extract_context(headers))


def test_one_pass_extraction_uses_a_custom_propagator():
    headers = [("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(W3CBaggagePropagator())  # no trace context at all
    try:
        extracted = _fast_extract.extract_headers(headers)
    finally:
        propagate.set_global_textmap(previous)
    assert not trace.get_current_span(extracted).get_span_context().is_valid


span_contexts = st.builds(
    lambda trace_id, span_id, flags, state: trace.SpanContext(
        trace_id, span_id, is_remote=False, trace_flags=trace.TraceFlags(flags), trace_state=state
    ),
    st.one_of(st.just(0), st.integers(1, 2**128 - 1)),
    st.one_of(st.just(0), st.integers(1, 2**64 - 1)),
    st.sampled_from([0, 1]),
    st.one_of(st.just(trace.TraceState()), st.just(trace.TraceState([("rojo", "1")]))),
)
outbound_headers = st.one_of(
    st.none(),
    st.lists(
        st.tuples(
            st.one_of(HEADER_NAMES, st.text(max_size=6)),
            st.one_of(st.none(), st.binary(max_size=8), st.text(max_size=4)),
        ),
        max_size=6,
    ),
    st.dictionaries(HEADER_NAMES, st.binary(max_size=8), max_size=3),
)


@settings(max_examples=600, deadline=None)
@given(headers=outbound_headers, span_context=span_contexts, with_baggage=st.booleans())
@example([("traceparent", b"stale"), ("app", b"1")], trace.SpanContext(1, 2, False), False)
def test_direct_injection_equals_inject_headers(headers, span_context, with_baggage):
    span = trace.NonRecordingSpan(span_context)
    ctx = baggage.set_baggage("tenant", "acme") if with_baggage else otel_context.get_current()
    token = otel_context.attach(ctx)
    try:
        direct = inject_span(headers, span)
        try:
            expected: Any = kafkascope.inject_headers(
                headers, context=trace.set_span_in_context(span)
            )
        except TypeError as exc:
            expected = exc
    finally:
        otel_context.detach(token)
    if direct is not None:
        assert direct == expected
    simple = headers is None or (
        isinstance(headers, list)
        and all(isinstance(v, bytes | None) and k.isascii() for k, v in headers)
    )
    if simple and span_context.is_valid and not span_context.trace_state and not with_baggage:
        assert direct is not None  # the common case takes the direct path
