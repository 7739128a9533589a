"""Property tests: the ``kafkascope`` command's renderers take any trace without breaking.

Span names, services, topics, attributes and the shape of a trace come from whoever produces
messages (and Jaeger's and Prometheus's answers from whatever listens on their address). For
hostile strings (control characters, bidi overrides, surrogates, huge values), hostile shapes
(chains 3,000 deep, parent cycles, missing parents, duplicate ids) and fields of the wrong type,
the waterfall, the topology renderers (terminal, Mermaid, JSON, HTML), ``slowest`` and the
``trace``/``topology``/``slowest`` commands never raise, never write a raw control character to
the terminal, and keep their documented bounds of width and depth. The carrier and handler
properties are in test_properties.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kafkascope._reports.html import topology_page, trace_page
from kafkascope._reports.slowest import DESCRIBE_COLUMNS, describe, parse_exemplars, slowest
from kafkascope._reports.topology import topology_from_jaeger
from kafkascope._reports.topology_render import (
    MERMAID_LINE_COLUMNS,
    TEXT_LINE_COLUMNS,
    render_mermaid,
    render_text,
)
from kafkascope._reports.waterfall import (
    LINE_COLUMNS,
    MAX_DEPTH,
    SpanRow,
    render_waterfall,
    rows_from_jaeger,
    span_tree,
)
from kafkascope.cli import EXIT_NOT_FOUND, EXIT_OK, EXIT_UNAVAILABLE, main
from tests._cli_process import unsafe_characters, width
from tests._http_answers import Answers, answering

FAST = settings(max_examples=150, deadline=None, database=None)
WITH_SERVER = settings(
    FAST,
    max_examples=100,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
HUGE = 20_000

# ---------------------------------------------------------------- strategies: strings and values

NASTY = [
    "\x1b[2J\x1b[H",  # clear the screen
    "\x1b]0;pwned\x07",  # set the window title
    "\x9b31m",  # C1 CSI
    "\x1bP+q\x1b\\",  # device control string
    "\u202e",  # right-to-left override
    "\u2028",  # line separator
    "\r",
    "\n",
    "\t",
    "\x00",
    "\x7f",
    "\ud800",  # a lone surrogate
    "\ue000",  # private use
    "e\u0301" * 50,  # stacked combining marks
    "日本語",  # wide
    "<!--<script>",
    "</script>",
    '"#quot;<i>',
    "\\x1b",
]

texts = st.one_of(
    st.text(max_size=30),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=30),
    st.lists(st.sampled_from(NASTY) | st.text(max_size=5), max_size=8).map("".join),
    st.builds(
        lambda piece, n: piece * n,
        st.sampled_from(["x", "\x1b[2J", "日", "é"]),
        st.integers(1, HUGE),
    ),
)
"""Names and values: any Unicode (surrogates included), escape sequences, huge strings."""

wrong_types = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
any_value = texts | wrong_types
IDS = ["a", "b", "c", "d", "e", "f"]
ids = st.sampled_from(IDS) | st.sampled_from(IDS).map(str.upper) | any_value

tag_keys = st.sampled_from(
    [
        "span.kind",
        "messaging.destination.name",
        "messaging.operation.type",
        "messaging.consumer.group.name",
        "messaging.batch.message_count",
        "error",
        "otel.status_code",
        "error.type",
    ]
)
tag_values = (
    st.sampled_from(
        ["producer", "consumer", "process", "receive", "orders", True, "true", "ERROR", 3]
    )
    | any_value
)


@st.composite
def tags(draw: st.DrawFn) -> Any:
    """A span's tags: mostly ``{key, type, value}`` entries, sometimes not even a list."""
    if draw(st.integers(0, 9)) == 0:
        return draw(any_value)
    return draw(
        st.lists(
            st.builds(
                lambda k, v: {"key": k, "type": "string", "value": v}, tag_keys | texts, tag_values
            )
            | any_value,
            max_size=8,
        )
    )


@st.composite
def references(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(any_value)
    ref = st.fixed_dictionaries(
        {
            "refType": st.sampled_from(["CHILD_OF", "FOLLOWS_FROM"]) | any_value,
            "spanID": ids,
        },
        optional={"traceID": st.sampled_from([TRACE_ID, "ff" * 16, TRACE_ID[16:]]) | any_value},
    )
    return draw(st.lists(ref | any_value, max_size=3))


times = st.integers(0, 2**40) | st.integers(-(2**70), 2**70) | any_value


@st.composite
def jaeger_span(draw: st.DrawFn, span_id: Any = None) -> Any:
    """One span as Jaeger answers it, any field possibly missing or of another type."""
    if draw(st.integers(0, 19)) == 0:
        return draw(any_value)
    span = {
        "traceID": draw(st.sampled_from([TRACE_ID]) | any_value),
        "spanID": draw(ids) if span_id is None else span_id,
        "operationName": draw(texts | any_value),
        "references": draw(references()),
        "startTime": draw(st.integers(1_000, 2_000) | times),
        "duration": draw(st.integers(0, 1_000) | times),
        "tags": draw(tags()),
        "processID": draw(st.sampled_from(["p1", "p2", "p3"]) | any_value),
    }
    for key in draw(st.lists(st.sampled_from(sorted(span)), max_size=2)):
        span.pop(key, None)
    return span


processes = st.one_of(
    st.dictionaries(
        st.sampled_from(["p1", "p2", "p3"]),
        st.fixed_dictionaries({"serviceName": texts | any_value}) | any_value,
        max_size=3,
    ),
    any_value,
)


def _chain(n: int, name: str) -> list[dict[str, Any]]:
    return [_span(f"{i:x}", f"{i - 1:x}" if i else None, name, start=1_000 + i) for i in range(n)]


def _cycle(n: int, name: str) -> list[dict[str, Any]]:
    return [_span(f"{i:x}", f"{(i + 1) % n:x}", name) for i in range(n)]


def _span(span_id: str, parent: str | None, name: str, *, start: int = 1_000) -> dict[str, Any]:
    return {
        "traceID": TRACE_ID,
        "spanID": span_id,
        "operationName": name,
        "references": [{"refType": "CHILD_OF", "traceID": TRACE_ID, "spanID": parent}]
        if parent
        else [],
        "startTime": start,
        "duration": 5,
        "tags": [],
        "processID": "p1",
    }


@st.composite
def jaeger_traces(draw: st.DrawFn) -> Any:
    """A trace as Jaeger answers it: random spans over a few ids (so missing parents, duplicate
    ids and cycles come up), a chain up to 3,000 deep, or a parent cycle."""
    shape = draw(st.sampled_from(["spans"] * 6 + ["chain", "cycle", "not a trace"]))
    if shape == "not a trace":
        return draw(any_value)
    if shape == "chain":
        spans: Any = _chain(draw(st.sampled_from([1, 30, 3_000])), draw(texts))
    elif shape == "cycle":
        spans = _cycle(draw(st.integers(1, 40)), draw(texts))
    else:
        spans = draw(st.lists(jaeger_span(), max_size=12) | any_value)
    answer = {"traceID": TRACE_ID, "spans": spans, "processes": draw(processes)}
    for key in draw(st.lists(st.sampled_from(["spans", "processes"]), max_size=1)):
        answer.pop(key, None)
    return answer


FOUND_TRACES = [
    # UnicodeEncodeError writing --html: a lone surrogate in a name went into the page's text
    {"spans": [_span("a", None, "\ud800")], "processes": {}},
    # RecursionError before the waterfall stopped recursing
    {"spans": _chain(3_000, "deep"), "processes": {"p1": {"serviceName": "s"}}},
    # printed nothing before cycles were placed
    {"spans": _cycle(2, "ring"), "processes": {"p1": {"serviceName": "s"}}},
    {"spans": [_span("a", None, "\x1b]0;pwned\x07" + "x" * 5_000)], "processes": {}},
]

# ---------------------------------------------------------------- checks


def check_terminal(text: str, *, max_columns: int) -> None:
    """No character a terminal could act on; no line wider than ``max_columns`` columns, nor
    longer than twice that in code points (combining marks are 0 columns)."""
    assert unsafe_characters(text.encode("utf-8")) == []
    for line in text.splitlines():
        assert width(line) <= max_columns, line[:200]
        assert len(line) <= 2 * max_columns, line[:200]


def rows_of(trace: Any) -> list[SpanRow] | None:
    try:
        return rows_from_jaeger(trace)
    except ValueError:
        return None
    except AttributeError:
        assert not isinstance(trace, dict)  # not even a mapping: the caller's type error
        return None


# ---------------------------------------------------------------- the waterfall


@FAST
@given(jaeger_traces())
@example(trace=FOUND_TRACES[1])
@example(trace=FOUND_TRACES[2])
@example(trace=FOUND_TRACES[3])
def test_waterfall_of_any_trace_is_safe_and_bounded(trace):
    rows = rows_of(trace)
    if rows is None:
        return
    check_terminal(render_waterfall(rows), max_columns=LINE_COLUMNS)
    tree = span_tree(rows)
    assert max((line.depth for line in tree), default=0) <= MAX_DEPTH
    # every span is on a line, once, or counted by a marker
    shown = [id(line.row) for line in tree if line.row is not None]
    assert len(shown) == len(set(shown))
    assert len(shown) + sum(line.hidden for line in tree) == len(rows)


@FAST
@given(jaeger_traces())
@example(trace=FOUND_TRACES[0])
@example(trace=FOUND_TRACES[1])
@example(trace=FOUND_TRACES[2])
def test_trace_page_of_any_trace_keeps_its_script_whole(trace):
    try:
        page = trace_page(trace, trace_id=TRACE_ID)
    except ValueError:
        return
    except AttributeError:
        assert not isinstance(trace, dict)
        return
    check_page(page)


def check_page(page: str) -> None:
    """Only the page's own two script elements; the embedded JSON holds no ``<`` (so nothing
    in it can end or stall its element) and parses as strict JSON; the page can be written as
    UTF-8."""
    page.encode("utf-8")
    assert page.count("<script") == 2
    found = re.search(r'<script type="application/json" id="spans">(.*?)</script>', page, re.S)
    assert found is not None
    assert "<" not in found.group(1)
    json.loads(found.group(1), parse_constant=lambda name: pytest.fail(f"JSON has {name}"))


# ---------------------------------------------------------------- the topology


@FAST
@given(st.lists(jaeger_traces(), max_size=3), st.floats(0.001, 1e6))
@example(traces=FOUND_TRACES, window=300.0)
def test_topology_renderers_of_any_traces_are_safe_and_bounded(traces, window):
    topology = topology_from_jaeger(traces, window_seconds=window)
    check_terminal(render_text(topology), max_columns=TEXT_LINE_COLUMNS)
    check_terminal(render_mermaid(topology), max_columns=MERMAID_LINE_COLUMNS)
    rendered = json.dumps(topology.to_json(), allow_nan=False)
    check_terminal(rendered, max_columns=len(rendered))  # JSON escapes every control character
    check_page(topology_page(topology))


# ---------------------------------------------------------------- slowest


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any] = any_value) -> Any:
    """``good`` four times in five, else ``bad``: deep enough into an answer to reach the
    code that reads it."""
    return st.integers(0, 4).flatmap(lambda n: good if n else bad)


exemplar_answers = mostly(
    st.lists(
        mostly(
            st.fixed_dictionaries(
                {
                    "seriesLabels": mostly(
                        st.fixed_dictionaries(
                            {"le": mostly(st.sampled_from(["+Inf", "0.5", "10", "1e400"]))},
                            optional={
                                "job": texts,
                                "messaging_destination_name": texts,
                                "messaging_consumer_group_name": texts,
                                "kafkascope_pipeline_origin": texts,
                            },
                        )
                    ),
                    "exemplars": mostly(
                        st.lists(
                            mostly(
                                st.fixed_dictionaries(
                                    {
                                        "labels": mostly(
                                            st.fixed_dictionaries(
                                                {
                                                    "trace_id": mostly(
                                                        st.sampled_from([TRACE_ID, "AB"])
                                                    )
                                                },
                                                optional={"span_id": any_value},
                                            )
                                        ),
                                        "value": mostly(
                                            st.sampled_from(["1.5", "NaN", "+Inf", "1e308"])
                                        ),
                                        "timestamp": mostly(st.floats(0, 2e9)),
                                    }
                                )
                            ),
                            max_size=3,
                        )
                    ),
                }
            )
        ),
        max_size=4,
    )
)
FOUND_EXEMPLARS = [
    # ValueError from float("soon") before timestamps were read as numbers or nothing
    [
        {
            "seriesLabels": {"le": "1"},
            "exemplars": [{"labels": {"trace_id": "ab"}, "value": "1", "timestamp": "soon"}],
        }
    ],
    # a raw escape sequence in the described labels
    [
        {
            "seriesLabels": {"le": "1", "job": "\x1b]0;pwned\x07"},
            "exemplars": [{"labels": {"trace_id": "ab"}, "value": "1"}],
        }
    ],
]


@FAST
@given(exemplar_answers)
@example(data=FOUND_EXEMPLARS[0])
@example(data=FOUND_EXEMPLARS[1])
def test_slowest_of_any_prometheus_answer_is_safe_and_bounded(data):
    chosen = slowest(parse_exemplars(data))
    if chosen is not None:
        assert re.fullmatch(r"[0-9a-f]{1,32}", chosen.trace_id)
        check_terminal(describe(chosen), max_columns=DESCRIBE_COLUMNS)


# ---------------------------------------------------------------- the commands, end to end


@pytest.fixture(scope="module")
def servers() -> Iterator[Answers]:
    with answering(default=(200, b'{"data": []}')) as answers:
        yield answers


def encoded(value: Any) -> bytes:
    # json.dumps writes lone surrogates as \ud800 escapes, as Go's encoder would not; both parse
    return json.dumps(value).encode()


def run_main(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


@WITH_SERVER
@given(jaeger_traces(), st.sampled_from([(), ("--json",), ("--html",)]))
@example(trace=FOUND_TRACES[0], shown=("--html",))
@example(trace=FOUND_TRACES[1], shown=())
@example(trace=FOUND_TRACES[3], shown=())
def test_trace_command_on_any_answer(servers, tmp_path_factory, trace, shown):
    servers.routes[f"/api/traces/{TRACE_ID}"] = (200, encoded({"data": [trace]}))
    extra: list[str] = list(shown)
    if shown == ("--html",):
        page = Path(tmp_path_factory.mktemp("page")) / "trace.html"
        extra.append(str(page))
    status, out, err = run_main("trace", TRACE_ID, "--jaeger", servers.url, *extra)
    assert status in {EXIT_OK, EXIT_NOT_FOUND, EXIT_UNAVAILABLE}, err
    assert unsafe_characters(err.encode()) == []
    if shown == ("--json",):  # every span in full, JSON-escaped
        check_terminal(out, max_columns=len(out))
        if status == EXIT_OK:
            assert isinstance(json.loads(out), list)
    else:
        check_terminal(out, max_columns=LINE_COLUMNS)
    if status == EXIT_OK and shown == ("--html",):
        check_page(page.read_text(encoding="utf-8"))


@WITH_SERVER
@given(st.lists(jaeger_traces(), max_size=3), st.sampled_from([(), ("--mermaid",), ("--json",)]))
def test_topology_command_on_any_answer(servers, traces, shown):
    servers.routes["/api/services"] = (200, encoded({"data": ["s1"]}))
    for trace in traces:
        if isinstance(trace, dict):
            trace["traceID"] = TRACE_ID
    servers.routes["/api/traces"] = (200, encoded({"data": traces}))
    status, out, err = run_main("topology", "--jaeger", servers.url, *shown)
    assert status in {EXIT_OK, EXIT_UNAVAILABLE}, err
    assert unsafe_characters(err.encode()) == []
    bound = MERMAID_LINE_COLUMNS if shown == ("--mermaid",) else TEXT_LINE_COLUMNS + 10
    if shown == ("--json",):
        bound = len(out)
        if status == EXIT_OK:
            json.loads(out)
    check_terminal(out, max_columns=bound)


@WITH_SERVER
@given(exemplar_answers, jaeger_traces())
@example(exemplars=FOUND_EXEMPLARS[1], trace=FOUND_TRACES[3])
def test_slowest_command_on_any_answers(servers, exemplars, trace):
    servers.routes["/api/v1/query_exemplars"] = (
        200,
        encoded({"status": "success", "data": exemplars}),
    )
    chosen = slowest(parse_exemplars(exemplars))
    if chosen is not None:
        servers.routes[f"/api/traces/{chosen.trace_id}"] = (200, encoded({"data": [trace]}))
    argv = ["slowest", "--prometheus", servers.url, "--jaeger", servers.url]
    status, out, err = run_main(*argv)
    assert status in {EXIT_OK, EXIT_NOT_FOUND, EXIT_UNAVAILABLE}, err
    assert unsafe_characters(err.encode()) == []
    head, _, waterfall = out.partition("\n")
    check_terminal(
        head,
        max_columns=len("slowest exemplar of  in the last 15m: ")
        + len("kafkascope_pipeline_latency_seconds")
        + DESCRIBE_COLUMNS,
    )
    check_terminal(waterfall, max_columns=LINE_COLUMNS)
