"""The trace page's markup and embedded JSON, for traces that carry hostile strings and shapes.

What Chromium does with the page is checked in tests/integration/test_cli_hostile_traces.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

from kafkascope._reports.html import trace_page
from kafkascope._reports.waterfall import MAX_DEPTH

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def span(span_id: str, parent: str | None = None, **tags: Any) -> dict[str, Any]:
    return {
        "traceID": TRACE_ID,
        "spanID": span_id,
        "operationName": tags.pop("name", "op"),
        "references": [{"refType": "CHILD_OF", "traceID": TRACE_ID, "spanID": parent}]
        if parent
        else [],
        "startTime": 1_000,
        "duration": 10,
        "tags": [{"key": k, "type": "string", "value": v} for k, v in tags.items()],
        "processID": "p1",
    }


def page(*spans: dict[str, Any]) -> str:
    return trace_page(
        {"spans": list(spans), "processes": {"p1": {"serviceName": "billing"}}},
        trace_id=TRACE_ID,
    )


def embedded(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="spans">(.*?)</script>', html, re.S)
    assert found is not None
    spans: dict[str, Any] = json.loads(found.group(1))
    return spans


def test_the_embedded_json_has_no_angle_bracket_whatever_the_attributes_hold():
    hostile = "<!--<script></script><script>alert(1)</script>&amp;"
    html = page(span("a", note=hostile, **{"<!--": "</script>"}))
    found = re.search(r'<script type="application/json" id="spans">(.*?)</script>', html, re.S)
    assert found is not None
    assert "<" not in found.group(1)
    assert ">" not in found.group(1)
    assert embedded(html)["0"]["attributes"]["note"] == hostile
    assert html.count("<script") == 2  # the JSON and the page's own script


def test_values_json_cannot_carry_are_text_in_the_page():
    weird = span("a")
    weird["tags"] = [
        {"key": "nan", "value": float("nan")},
        {"key": "inf", "value": float("inf")},
        {"key": "nested", "value": {"a": [1]}},
        {"key": 3, "value": "no string key"},
        "not a tag",
    ]
    attributes = embedded(page(weird))["0"]["attributes"]
    assert attributes == {"nan": "nan", "inf": "inf", "nested": "<dict>", "span.id": "a"}


def test_spans_sharing_an_id_each_keep_their_own_attributes():
    html = page(span("a", which="first"), span("a", which="second"))
    spans = embedded(html)
    assert sorted(s["attributes"]["which"] for s in spans.values()) == ["first", "second"]
    assert html.count('class="row"') == 2


def test_a_deep_trace_is_cut_like_the_terminals_with_a_marker_row():
    html = page(span("0"), *(span(str(i), str(i - 1)) for i in range(1, 300)))
    assert html.count('class="row"') == MAX_DEPTH
    assert f"… {300 - MAX_DEPTH} more spans deeper than {MAX_DEPTH} levels" in html


def test_a_parent_cycle_is_on_the_page_and_marked():
    html = page(span("a", "b"), span("b", "a"))
    assert html.count('class="row"') == 2
    assert html.count("(parent cycle)") == 1
