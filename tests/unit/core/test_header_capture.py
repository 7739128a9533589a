"""Chosen headers as ``messaging.header.<name>``: what is captured, what a glob refuses, the
bounds, and hostile headers that never raise."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.util.types import AttributeValue

from kafkascope._core import semconv as sc
from kafkascope._core.errors import ConfigurationError
from kafkascope._core.header_capture import (
    MAX_HEADERS,
    MAX_VALUE_LENGTH,
    MAX_VALUES,
    header_attributes,
    parse_header_name,
    parse_patterns,
)
from tests.unit._strategies import FAST


def _captured(
    patterns: str, headers: Any, conversation: str | None = None
) -> dict[str, AttributeValue]:
    return header_attributes(headers, parse_patterns(patterns, "capture_headers"), conversation)


def test_a_named_header_becomes_a_string_array_attribute():
    assert _captured("tenant", [("tenant", b"acme"), ("other", b"x")]) == {
        "messaging.header.tenant": ("acme",)
    }


def test_nothing_is_captured_unless_named():
    assert header_attributes([("tenant", b"acme")], None, None) == {}


def test_names_match_without_case_and_are_named_as_the_java_agent_names_them():
    assert _captured("Event-Type", [("EVENT-type", b"created")]) == {
        "messaging.header.event_type": ("created",)
    }


def test_a_repeated_header_keeps_its_values_in_order():
    assert _captured("hop", [("hop", b"a"), ("hop", b"b")]) == {"messaging.header.hop": ("a", "b")}


def test_a_glob_captures_the_headers_it_matches():
    captured = _captured("x-app-*", [("x-app-tenant", b"acme"), ("x-app-zone", b"eu"), ("y", b"")])
    assert captured == {
        "messaging.header.x_app_tenant": ("acme",),
        "messaging.header.x_app_zone": ("eu",),
    }


def test_an_exclusion_wins_over_a_glob():
    captured = _captured("*,!x-internal-*", [("x-internal-route", b"r"), ("tenant", b"acme")])
    assert captured == {"messaging.header.tenant": ("acme",)}


@pytest.mark.parametrize(
    "name",
    ["traceparent", "tracestate", "baggage", "b3", "X-B3-TraceId", "uber-trace-id",
     "kafkascope-pipeline-start", "kafkascope.dlq.error.message"],
)  # fmt: skip
def test_a_glob_never_captures_trace_context_baggage_or_kafkascope_headers(name):
    assert _captured("*", [(name, b"00-abc")]) == {}


@pytest.mark.parametrize(
    "name",
    ["Authorization", "cookie", "db_password", "client-secret", "x-auth-token", "API-Key",
     "x_api_key", "session-id", "aws-credentials"],
)  # fmt: skip
def test_a_glob_refuses_a_name_that_looks_like_a_credential(name):
    assert _captured("*", [(name, b"hunter2")]) == {}


def test_a_credential_header_named_exactly_is_captured():
    assert _captured("authorization", [("Authorization", b"Bearer t")]) == {
        "messaging.header.authorization": ("Bearer t",)
    }


def test_a_trace_context_header_named_exactly_is_captured():
    assert _captured("traceparent", [("traceparent", b"00-1-2-01")]) == {
        "messaging.header.traceparent": ("00-1-2-01",)
    }


def test_undecodable_bytes_are_rendered_as_replacement_characters():
    assert _captured("tenant", [("tenant", b"ac\xffme")]) == {
        "messaging.header.tenant": ("ac\ufffdme",)
    }


def test_a_long_value_is_cut_at_the_bound():
    captured = _captured("tenant", [("tenant", b"a" * 10_000)])
    assert captured["messaging.header.tenant"] == ("a" * MAX_VALUE_LENGTH,)


def test_a_null_value_is_skipped():
    assert _captured("tenant", [("tenant", None)]) == {}


def test_headers_given_as_a_mapping_are_read():
    assert _captured("tenant", {"tenant": "acme"}) == {"messaging.header.tenant": ("acme",)}


def test_the_conversation_header_becomes_the_conversation_id():
    attrs = header_attributes([("Correlation-ID", b"c-42")], None, "correlation-id")
    assert attrs == {sc.MESSAGING_MESSAGE_CONVERSATION_ID: "c-42"}


def test_only_the_first_conversation_header_counts():
    headers = [("correlation-id", b"first"), ("correlation-id", b"second")]
    assert header_attributes(headers, None, "correlation-id") == {
        sc.MESSAGING_MESSAGE_CONVERSATION_ID: "first"
    }


@pytest.mark.parametrize("bad", ["tenant id", "[ab]c", "ten!ant", "!", 42, ["ok", 3]])
def test_a_bad_pattern_is_a_configuration_error_naming_the_setting(bad):
    with pytest.raises(ConfigurationError) as raised:
        parse_patterns(bad, "OTEL_PYTHON_KAFKASCOPE_CAPTURE_HEADERS")
    assert raised.value.setting == "OTEL_PYTHON_KAFKASCOPE_CAPTURE_HEADERS"
    assert "OTEL_PYTHON_KAFKASCOPE_CAPTURE_HEADERS" in str(raised.value)


@pytest.mark.parametrize("bad", ["correlation-*", "a,b", "a b", 7])
def test_a_conversation_header_must_be_one_exact_name(bad):
    with pytest.raises(ConfigurationError, match="conversation_id_header"):
        parse_header_name(bad, "conversation_id_header")


def test_only_exclusions_capture_nothing():
    assert parse_patterns("!x-*", "capture_headers") is None


def _view(data: bytes) -> memoryview:
    return memoryview(data)


_NAMES = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300),
    st.sampled_from(["tenant", "x-app-a", "traceparent", "authorization", "correlation-id"]),
    st.integers(),
    st.none(),
)
_VALUES = st.one_of(
    st.binary(max_size=200),
    st.binary(min_size=100_000, max_size=100_000),
    st.text(max_size=200),
    st.none(),
    st.integers(),
    st.binary(max_size=50).map(_view),
)
_PAIRS = st.one_of(st.tuples(_NAMES, _VALUES), st.just(("tenant",)), st.integers(), st.none())


@FAST
@given(
    headers=st.one_of(
        st.lists(_PAIRS, max_size=50),
        st.lists(st.tuples(st.just("x-app-h"), _VALUES), min_size=2000, max_size=3000),
        st.lists(
            st.tuples(st.text("abcdef", min_size=1, max_size=6).map("x-app-".__add__), _VALUES),
            min_size=100,
            max_size=200,
        ),
        st.dictionaries(st.text(max_size=20), _VALUES, max_size=20),
        st.none(),
        st.integers(),
    )
)
def test_hostile_headers_never_raise_and_every_bound_holds(headers):
    capture = parse_patterns("tenant,x-app-*,*,authorization", "capture_headers")
    attrs = header_attributes(headers, capture, "correlation-id")
    captured = {k: v for k, v in attrs.items() if k.startswith("messaging.header.")}
    assert len(captured) <= MAX_HEADERS
    for values in captured.values():
        assert isinstance(values, tuple)
        assert 1 <= len(values) <= MAX_VALUES
        for value in values:
            assert isinstance(value, str)
            assert len(value) <= MAX_VALUE_LENGTH
            value.encode("utf-8")  # exportable: no lone surrogates
    conversation = attrs.get(sc.MESSAGING_MESSAGE_CONVERSATION_ID)
    assert conversation is None or (
        isinstance(conversation, str) and len(conversation) <= MAX_VALUE_LENGTH
    )
    assert "messaging.header.traceparent" not in attrs
