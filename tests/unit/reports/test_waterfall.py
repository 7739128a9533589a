"""rows_from_jaeger: Jaeger's /api/traces answer as waterfall rows.

``data/jaeger_trace.json`` is a real answer of Jaeger v2.13 for the sample trace of
tests/integration/test_cli_jaeger.py (re-record it with KAFKASCOPE_RECORD_JAEGER_FIXTURE=1).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kafkascope._reports.waterfall import SpanRow, render_waterfall, rows_from_jaeger

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "jaeger_trace.json"
TRACE_ID = "26672ee3191fddb17c4b1ead62eb208c"


def recorded_trace() -> dict[str, Any]:
    trace: dict[str, Any] = json.loads(FIXTURE.read_text())["data"][0]
    return trace


def rows_by_name(rows: list[SpanRow]) -> dict[str, list[SpanRow]]:
    named: dict[str, list[SpanRow]] = {}
    for row in sorted(rows, key=lambda r: r.start_ns):
        named.setdefault(f"{row.service}: {row.name}", []).append(row)
    return named


def span(
    span_id: str, *, refs: list[dict[str, str]] | None = None, **fields: Any
) -> dict[str, Any]:
    return {
        "traceID": TRACE_ID,
        "spanID": span_id,
        "operationName": fields.pop("name", "op"),
        "references": refs or [],
        "startTime": fields.pop("start", 1_000),
        "duration": fields.pop("duration", 10),
        "tags": fields.pop("tags", []),
        "processID": fields.pop("process", "p1"),
        **fields,
    }


def ref(kind: str, span_id: str, trace_id: str = TRACE_ID) -> dict[str, str]:
    return {"refType": kind, "traceID": trace_id, "spanID": span_id}


def one_row(*spans: dict[str, Any], processes: dict[str, Any] | None = None) -> SpanRow:
    rows = rows_from_jaeger(
        {"spans": list(spans), "processes": processes or {"p1": {"serviceName": "billing"}}}
    )
    return rows[-1]


def test_recorded_trace_gives_one_row_per_span_with_its_service() -> None:
    named = rows_by_name(rows_from_jaeger(recorded_trace()))
    assert {name: len(rows) for name, rows in named.items()} == {
        "orders: POST /orders": 1,
        "orders: send orders": 1,
        "billing: process orders": 2,
        "billing: charge card": 1,
        "billing: send invoices": 1,
        "audit: poll orders": 1,
        "audit: process orders": 1,
    }


def test_recorded_trace_parents_follow_child_of_then_follows_from() -> None:
    named = rows_by_name(rows_from_jaeger(recorded_trace()))
    request = named["orders: POST /orders"][0]
    send = named["orders: send orders"][0]
    failed, retried = named["billing: process orders"]
    assert request.parent_id is None
    assert send.parent_id == request.span_id
    # parent and link are the same span: Jaeger keeps one FOLLOWS_FROM reference
    assert (failed.parent_id, failed.links) == (send.span_id, (send.span_id,))
    assert (retried.parent_id, retried.links) == (send.span_id, (send.span_id,))
    assert named["billing: charge card"][0].parent_id == failed.span_id
    assert named["billing: send invoices"][0].parent_id == retried.span_id


def test_recorded_batch_span_links_to_both_messages_one_in_another_trace() -> None:
    named = rows_by_name(rows_from_jaeger(recorded_trace()))
    batch = named["audit: process orders"][0]
    assert batch.parent_id == named["audit: poll orders"][0].span_id
    assert len(batch.links) == 2
    assert named["orders: send orders"][0].span_id in batch.links


def test_recorded_errors_are_the_failed_handler_and_its_child() -> None:
    rows = rows_from_jaeger(recorded_trace())
    failing = sorted(f"{r.service}: {r.name}" for r in rows if r.error)
    assert failing == ["billing: charge card", "billing: process orders"]


def test_recorded_times_are_microseconds_as_nanoseconds() -> None:
    raw = recorded_trace()["spans"][0]
    row = next(r for r in rows_from_jaeger(recorded_trace()) if r.span_id == raw["spanID"])
    assert row.start_ns == raw["startTime"] * 1000
    assert row.end_ns - row.start_ns == raw["duration"] * 1000


def test_recorded_trace_renders_as_a_tree() -> None:
    lines = render_waterfall(rows_from_jaeger(recorded_trace())).splitlines()
    assert lines[0].startswith("orders: POST /orders ")
    assert lines[1].startswith("  orders: send orders ")
    assert lines[-1].startswith("      audit: process orders ")
    assert lines[-1].endswith("(links 2)")
    assert len(lines) == 8


def test_child_of_is_the_parent_even_after_a_follows_from() -> None:
    row = one_row(span("b", refs=[ref("FOLLOWS_FROM", "c"), ref("CHILD_OF", "a")]))
    assert (row.parent_id, row.links) == ("a", ("c",))


def test_a_reference_into_another_trace_is_a_link_not_a_parent() -> None:
    row = one_row(span("b", refs=[ref("FOLLOWS_FROM", "c", trace_id="ff" * 16)]))
    assert (row.parent_id, row.links) == (None, ("c",))


def test_a_second_child_of_is_a_link() -> None:
    row = one_row(span("b", refs=[ref("CHILD_OF", "a"), ref("CHILD_OF", "c")]))
    assert (row.parent_id, row.links) == ("a", ("c",))


def test_trace_ids_without_leading_zeros_are_the_same_trace() -> None:
    short = {"traceID": "00000000000000001234", "spanID": "a", "refType": "CHILD_OF"}
    row = one_row(span("b", refs=[short], traceID="1234"))
    assert row.parent_id == "a"


@pytest.mark.parametrize(
    ("tags", "error"),
    [
        ([{"key": "error", "type": "bool", "value": True}], True),
        ([{"key": "error", "type": "string", "value": "true"}], True),
        ([{"key": "otel.status_code", "type": "string", "value": "ERROR"}], True),
        ([{"key": "otel.status_code", "type": "string", "value": "OK"}], False),
        ([{"key": "error", "type": "bool", "value": False}], False),
        ([{"key": "error.type", "type": "string", "value": "ValueError"}], False),
        ([], False),
    ],
)
def test_error_comes_from_the_error_or_status_tags(tags: list[dict[str, Any]], error: bool) -> None:
    assert one_row(span("a", tags=tags)).error is error


def test_service_comes_from_the_process_or_is_unknown() -> None:
    rows = rows_from_jaeger(
        {
            "spans": [span("a", process="p1"), span("b", process="p9")],
            "processes": {"p1": {"serviceName": "billing"}},
        }
    )
    assert [r.service for r in rows] == ["billing", "?"]


@pytest.mark.parametrize(
    "trace",
    [
        {"processes": {}},
        {"spans": "nope", "processes": {}},
        {"spans": [{"spanID": "a"}], "processes": {}},
        {"spans": [{"spanID": "a", "startTime": "soon"}], "processes": {}},
        {"spans": ["a"], "processes": {}},
    ],
)
def test_a_trace_of_another_shape_is_a_value_error(trace: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not a Jaeger"):
        rows_from_jaeger(trace)
