"""Property tests: header carriers take any input without breaking, and stay bounded."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from opentelemetry import baggage, trace
from opentelemetry.context import Context

from kafkascope import extract_context, inject_headers, traced_handler
from kafkascope._core import settings as _settings
from kafkascope._propagation.carrier import MAX_BAGGAGE_BYTES, MAX_BAGGAGE_ENTRIES, HeaderGetter
from tests.unit._strategies import FAST, PROPAGATION_NAMES, carriers, pairs

pytestmark = pytest.mark.usefixtures("quiet_sdk_parsers")


def _check_context(ctx: Context) -> None:
    assert isinstance(ctx, Context)
    span_context = trace.get_current_span(ctx).get_span_context()
    event(f"remote span: {span_context.is_valid}")
    if span_context.is_valid:
        assert span_context.is_remote
        assert 0 < span_context.trace_id < 2**128
        assert 0 < span_context.span_id < 2**64
    else:
        assert span_context == trace.INVALID_SPAN_CONTEXT
    entries = baggage.get_all(ctx)
    event(f"baggage entries: {min(len(entries), 10)}{'+' if len(entries) >= 10 else ''}")
    assert len(entries) <= MAX_BAGGAGE_ENTRIES
    joined = ",".join(f"{k}={v}" for k, v in entries.items())
    assert len(joined.encode("utf-8", "surrogatepass")) <= MAX_BAGGAGE_BYTES


@FAST
@given(carriers, st.booleans())
def test_extract_context_never_raises_and_gives_a_remote_span_or_none(headers, trust):
    _check_context(extract_context(headers, trust_baggage=trust))
    if not trust:
        assert not baggage.get_all(extract_context(headers, trust_baggage=False))


@FAST
@given(carriers, st.sampled_from([*PROPAGATION_NAMES, "other", "TRACEPARENT"]))
def test_getter_returns_none_or_a_short_list_of_text(headers, key):
    getter = HeaderGetter()
    got = getter.get(headers, key)
    assert got is None or (0 < len(got) <= 8 and all(isinstance(v, str) for v in got))
    names = getter.keys(headers)
    assert isinstance(names, list)
    assert all(isinstance(n, str) for n in names)


@FAST
@given(st.lists(pairs, max_size=12), st.integers(0, 12))
@example(noise=[("baggage", "k=\ud800")], at=0)  # found: lost the trace (UnicodeEncodeError)
@example(noise=[("traceparent",)], at=1)  # found: a malformed pair hid the later ones
def test_a_valid_traceparent_survives_any_other_headers(noise, at):
    """Garbage in other headers (bad baggage and tracestate included) never costs the trace."""
    headers: list[Any] = [p for p in noise if not _is_traceparent_key(p[0])]
    headers.insert(at, ("traceparent", f"00-{'a' * 32}-{'b' * 16}-01".encode()))
    span_context = trace.get_current_span(extract_context(headers)).get_span_context()
    assert span_context.trace_id == int("a" * 32, 16)


def _is_traceparent_key(key: object) -> bool:
    if isinstance(key, bytes):
        key = key.decode("utf-8", "replace")
    return isinstance(key, str) and key.lower() == "traceparent"


@FAST
@given(carriers)
# found: each raised something other than TypeError, or returned what clients cannot send
@example(headers=[(b"\x80", None)])
@example(headers=[("a",)])
@example(headers=[("a", b"1", b"2")])
@example(headers=["ab"])
@example(headers="traceparent")
@example(headers=[("k", "\ud800")])
@example(headers=[("\ud800", b"v")])
def test_inject_headers_returns_sendable_pairs_or_raises_type_error(headers):
    expected = _as_sent(headers)
    try:
        out = inject_headers(headers)
    except TypeError:
        event("TypeError")
        assert expected is None, f"refused headers a client can send: {headers!r:.200}"
        return
    event("sent")
    assert isinstance(out, list)
    for pair in out:
        assert isinstance(pair, tuple)
        assert len(pair) == 2
        name, value = pair
        assert type(name) is str
        name.encode("utf-8")  # sendable: Kafka clients encode header names as UTF-8
        assert value is None or type(value) is bytes
    # No span is current here, so nothing is added: the headers come back as clients send them.
    assert out == expected


def _as_sent(headers: Any) -> list[tuple[str, bytes | None]] | None:
    """``headers`` as a Kafka client sends them, or None if a client cannot send them: a list,
    tuple or dict of pairs whose keys are text (or UTF-8 bytes) and whose values are None,
    bytes-like or text, all of it encodable as UTF-8."""
    if headers is None:
        return []
    if isinstance(headers, dict):
        pairs = list(headers.items())
    elif isinstance(headers, list | tuple):
        pairs = list(headers)
    else:
        return None
    sent: list[tuple[str, bytes | None]] = []
    for pair in pairs:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            return None
        key, value = pair
        try:
            if type(key) is bytes:
                name = key.decode("utf-8")
            elif type(key) is str:
                name = key
                key.encode("utf-8")
            else:
                return None
            if value is None:
                sent.append((name, None))
            elif type(value) is str:
                sent.append((name, value.encode("utf-8")))
            elif isinstance(value, bytes | bytearray | memoryview):
                sent.append((name, bytes(value)))
            else:
                return None
        except UnicodeError:
            return None
    return sent


@settings(FAST, max_examples=60)
@given(carriers)
def test_untrusted_baggage_never_reaches_the_handler(headers):
    _settings.update(trust_baggage=False)
    seen: list[dict[str, object]] = []

    @traced_handler
    def handle(rec: object) -> None:
        seen.append(dict(baggage.get_all()))

    try:
        handle(SimpleNamespace(topic="orders", offset=1, headers=headers))
    finally:
        _settings.update(trust_baggage=True)
    assert seen == [{}]
