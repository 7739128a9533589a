"""rows_from_jaeger: Jaeger's /api/traces answer as waterfall rows.

``data/jaeger_trace.json`` is a real answer of Jaeger v2.13 for the sample trace of
tests/integration/test_cli_jaeger.py (re-record it with KAFKASCOPE_RECORD_JAEGER_FIXTURE=1).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kafkascope._reports.terminal_text import SERVICE_COLUMNS
from kafkascope._reports.waterfall import (
    LINE_COLUMNS,
    MAX_DEPTH,
    NAME_COLUMNS,
    SpanRow,
    render_waterfall,
    rows_from_jaeger,
    span_tree,
)
from tests._cli_process import unsafe_characters, width

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


# ---------------------------------------------------------------- what a trace carries


def row(span_id: str, parent: str | None = None, **fields: Any) -> SpanRow:
    return SpanRow(
        span_id=span_id,
        parent_id=parent,
        service=fields.pop("service", "billing"),
        name=fields.pop("name", "op"),
        start_ns=fields.pop("start", 1_000_000),
        end_ns=fields.pop("end", 2_000_000),
        **fields,
    )


def test_control_characters_in_names_are_shown_as_escapes():
    rendered = render_waterfall(
        [row("a", service="billing\x1b]0;pwned\x07", name="\x1b[2J\x1b[Hcleared\x9b31m\u202e")]
    )
    assert unsafe_characters(rendered.encode()) == []
    assert rendered.startswith("billing\\x1b]0;pwned\\x07: \\x1b[2J\\x1b[Hcleared\\x9b31m\\u202e ")


def test_a_5000_character_name_is_cut_and_lines_stay_bounded():
    lines = render_waterfall(
        [row("a", name="n" * 5000), row("b", "a", service="s" * 5000)]
    ).splitlines()
    assert lines[0].startswith("billing: " + "n" * (NAME_COLUMNS - 1) + "… ")
    assert lines[1].startswith("  " + "s" * (SERVICE_COLUMNS - 1) + "…: op ")
    assert max(width(line) for line in lines) <= LINE_COLUMNS
    assert len({line.index("|") for line in lines}) == 1  # the bars still line up


def test_a_trace_3000_deep_shows_24_levels_then_counts_the_rest():
    chain = [row("0")] + [row(str(i), str(i - 1), start=1_000_000 + i) for i in range(1, 3000)]
    lines = render_waterfall(chain).splitlines()
    assert len(lines) == MAX_DEPTH + 1
    assert lines[MAX_DEPTH - 1].startswith("  " * (MAX_DEPTH - 1) + "billing: op ")
    assert lines[-1] == "  " * MAX_DEPTH + (
        f"… {3000 - MAX_DEPTH} more spans deeper than {MAX_DEPTH} levels (--json lists every span)"
    )


def test_a_parent_cycle_is_shown_and_marked():
    lines = render_waterfall([row("a", "b", name="first"), row("b", "a", name="second")])
    assert lines.splitlines()[0].startswith("billing: first ")
    assert lines.splitlines()[0].endswith("(parent cycle)")
    assert lines.splitlines()[1].startswith("  billing: second ")


def test_spans_under_a_cycle_follow_the_roots():
    rows = [row("r", name="root"), row("a", "b"), row("b", "a"), row("c", "b", name="below")]
    tree = span_tree(rows)
    assert [(line.depth, line.row.name if line.row else None, line.cycle) for line in tree] == [
        (0, "root", False),
        (0, "op", True),
        (1, "op", False),
        (2, "below", False),
    ]


def test_a_span_that_is_its_own_parent_is_shown_once():
    assert render_waterfall([row("a", "a")]).endswith("(parent cycle)")


def test_duplicate_span_ids_show_each_span_once():
    # Each level's id twice: following every copy would print 2**12 lines.
    rows = [row(f"{d}", f"{d - 1}" if d else None) for d in range(12) for _ in range(2)]
    assert len(render_waterfall(rows).splitlines()) == len(rows)


def test_every_span_is_on_a_line_or_counted_by_a_marker():
    rows = [row("0")] + [row(str(i), str(i // 2)) for i in range(1, 200)]
    tree = span_tree(rows, max_depth=4)
    shown = sum(1 for line in tree if line.row is not None)
    assert shown + sum(line.hidden for line in tree) == len(rows)
    assert max(line.depth for line in tree) == 4


def test_negative_durations_and_far_apart_times_keep_the_bar_in_its_column():
    rows = [row("a", start=0, end=2**62), row("b", "a", start=2**62, end=0)]
    lines = render_waterfall(rows).splitlines()
    assert all(line.count("|") == 2 for line in lines)
    assert len({len(line) for line in lines}) == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"startTime": 1e400},
        {"startTime": -5},
        {"startTime": 2**70},
        {"duration": -1},
        {"duration": "long"},
        {"startTime": True},
    ],
)
def test_times_out_of_range_are_not_a_jaeger_span(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not a Jaeger span"):
        rows_from_jaeger({"spans": [{**span("a"), **fields}], "processes": {}})


def test_fields_of_the_wrong_type_get_safe_defaults() -> None:
    weird = span("a", name=["a", "list"], tags="error", references=[1, "x", None], processID=[1])
    rows = rows_from_jaeger({"spans": [weird], "processes": {"p1": "not a process"}})
    assert rows == [SpanRow("a", None, "?", "<list>", 1_000_000, 1_010_000)]
