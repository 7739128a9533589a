"""Render a trace as a terminal waterfall: one line per span, indented under its parent."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry.sdk.trace import ReadableSpan

from kafkascope._reports import untrusted_json as untrusted
from kafkascope._reports.terminal_text import SERVICE_COLUMNS, columns, pad, printable


@dataclass(frozen=True)
class SpanRow:
    """What the waterfall shows of one span.

    Attributes:
        span_id: the span's id, in hex.
        parent_id: its parent's id, or None for a root.
        service: the ``service.name`` of the process that made it.
        name: the span's name.
        start_ns: start, in nanoseconds since the epoch.
        end_ns: end, in nanoseconds since the epoch.
        error: whether it ended in error.
        links: the span ids it links to.
    """

    span_id: str
    parent_id: str | None
    service: str
    name: str
    start_ns: int
    end_ns: int
    error: bool = False
    links: tuple[str, ...] = ()


def rows_from_spans(spans: Iterable[ReadableSpan]) -> list[SpanRow]:
    """Waterfall rows of finished SDK spans.

    Args:
        spans: finished spans, e.g. ``capotel.spans`` or an in-memory exporter's.

    Returns:
        One row per span.
    """
    rows = []
    for span in spans:
        ctx = span.get_span_context()
        if ctx is None:
            continue
        rows.append(
            SpanRow(
                span_id=format(ctx.span_id, "016x"),
                parent_id=format(span.parent.span_id, "016x") if span.parent else None,
                service=str(span.resource.attributes.get("service.name", "?")),
                name=span.name,
                start_ns=span.start_time or 0,
                end_ns=span.end_time or span.start_time or 0,
                error=not span.status.is_ok,
                links=tuple(format(link.context.span_id, "016x") for link in span.links),
            )
        )
    return rows


def rows_from_jaeger(trace: Mapping[str, Any]) -> list[SpanRow]:
    """Waterfall rows of one trace as Jaeger's HTTP API returns it (``/api/traces/{id}``).

    ``trace`` is one element of the answer's ``"data"``: ``spans`` and ``processes``. Service
    names come from each span's process; ``startTime`` and ``duration`` are microseconds. A span
    is an error when it has the tag ``error=true`` or ``otel.status_code=ERROR``.

    The parent is the ``CHILD_OF`` reference within the trace or, failing that, the first
    ``FOLLOWS_FROM`` reference within the trace, as Jaeger's UI reads them: when a span's parent
    is also one of its links (a kafkascope process span under the ``"producer"`` policy), Jaeger
    keeps a single ``FOLLOWS_FROM`` reference to it. ``FOLLOWS_FROM`` references (OpenTelemetry
    links) and any further ``CHILD_OF`` references are the row's links.

    Args:
        trace: one element of the answer's ``"data"``.

    Returns:
        One row per span.

    Raises:
        ValueError: if ``trace`` does not have the shape of a Jaeger trace.
    """
    spans = trace.get("spans")
    processes = trace.get("processes") or {}
    if not isinstance(spans, list) or not isinstance(processes, Mapping):
        raise ValueError("not a Jaeger trace: expected a list of spans and a map of processes")
    rows = []
    for span in spans:
        if not isinstance(span, Mapping) or "spanID" not in span:
            raise ValueError(f"not a Jaeger span: {untrusted.brief(span)}")
        start_us = untrusted.micros(span.get("startTime"))
        duration_us = untrusted.micros(span.get("duration") or 0)
        if start_us is None or duration_us is None:
            raise ValueError(f"not a Jaeger span (times): {untrusted.brief(span)}")
        trace_id = untrusted.text(span.get("traceID", ""))
        parent, links = _jaeger_references(untrusted.mappings(span.get("references")), trace_id)
        rows.append(
            SpanRow(
                span_id=untrusted.text(span["spanID"]),
                parent_id=parent,
                service=untrusted.service(span, processes),
                name=untrusted.text(span.get("operationName", "")),
                start_ns=start_us * 1000,
                end_ns=(start_us + duration_us) * 1000,
                error=_jaeger_error(untrusted.tags(span)),
                links=links,
            )
        )
    return rows


def _jaeger_references(
    references: Iterable[Mapping[str, Any]], trace_id: str
) -> tuple[str | None, tuple[str, ...]]:
    refs = [
        (untrusted.text(r.get("refType", "")), untrusted.text(r.get("spanID", "")), r)
        for r in references
    ]
    same_trace = [
        (kind, span_id) for kind, span_id, r in refs if _same_id(r.get("traceID"), trace_id)
    ]
    parent = next((sid for kind, sid in same_trace if kind == "CHILD_OF"), None)
    if parent is None:
        parent = next((sid for kind, sid in same_trace if kind == "FOLLOWS_FROM"), None)
    links = tuple(
        span_id
        for kind, span_id, _ in refs
        if kind == "FOLLOWS_FROM" or (kind == "CHILD_OF" and span_id != parent)
    )
    return parent, links


def _same_id(ref_trace_id: object, trace_id: str) -> bool:
    # Jaeger drops the leading zeros of 64-bit trace ids: compare the numbers.
    if ref_trace_id is None or not trace_id:
        return True
    try:
        return int(untrusted.text(ref_trace_id), 16) == int(trace_id, 16)
    except ValueError:
        return False


def _jaeger_error(tags: Mapping[str, Any]) -> bool:
    value = tags.get("error")
    if value is True or (isinstance(value, str) and value.lower() == "true"):
        return True
    status = tags.get("otel.status_code")
    return isinstance(status, str) and status.upper() == "ERROR"


NAME_COLUMNS: Final = 60
"""A span name is cut to this many columns (the last one an ellipsis)."""
MAX_DEPTH: Final = 24
"""Levels of the tree shown; the spans below a span at the last level are one marker line."""
BAR_WIDTH: Final = 32
_LINKS_SHOWN: Final = 9999
LINE_COLUMNS: Final = (
    2 * (MAX_DEPTH - 1)
    + SERVICE_COLUMNS
    + len(": ")
    + NAME_COLUMNS
    + len(" 999999.99 ms |")
    + BAR_WIDTH
    + len("|  ERROR  (parent cycle)")
    + len(f"  (links {_LINKS_SHOWN}+)")
)
"""No line of :func:`render_waterfall` (with the default bar width) is wider than this."""


@dataclass(frozen=True)
class TreeLine:
    """One line of a waterfall: a span at its depth, or a marker for the spans not shown.

    A marker (``row`` is None) stands for the ``hidden`` spans below the span on the line
    before it, which is at the last level shown.
    """

    depth: int
    row: SpanRow | None
    hidden: int = 0
    cycle: bool = False
    """The span's parent is one of its own descendants: it is shown as a root."""


def span_tree(rows: Sequence[SpanRow], *, max_depth: int = MAX_DEPTH) -> list[TreeLine]:
    """The rows as a tree, depth first, every row once: on a line or counted by a marker.

    A row whose parent is not among ``rows`` is a root; roots and siblings are in order of
    start time. Of several rows with one span id, the first is the parent of that id's
    children. Rows whose parents form a cycle follow the roots, each cycle entered at one of
    its members (marked ``cycle``). Rows deeper than ``max_depth`` levels are not lines: each
    subtree cut off is one marker line counting its rows.
    """
    order = sorted(range(len(rows)), key=lambda i: (rows[i].start_ns, i))
    first: dict[str, int] = {}
    for i, row in enumerate(rows):
        first.setdefault(row.span_id, i)
    parent = [first.get(row.parent_id) if row.parent_id is not None else None for row in rows]
    children: list[list[int]] = [[] for _ in rows]
    for i in order:
        if parent[i] is not None:
            children[parent[i]].append(i)  # type: ignore[index]
    seen = [False] * len(rows)
    lines: list[TreeLine] = []

    def place(top: int, *, cycle: bool) -> None:
        stack = [(top, 0)]
        while stack:
            i, depth = stack.pop()
            if seen[i]:
                continue
            seen[i] = True
            lines.append(TreeLine(depth, rows[i], cycle=cycle and i == top))
            below = [c for c in children[i] if not seen[c]]
            if below and depth + 1 >= max_depth:
                lines.append(TreeLine(depth + 1, None, hidden=hide(below)))
            else:
                stack.extend((c, depth + 1) for c in reversed(below))

    def hide(tops: list[int]) -> int:
        count, stack = 0, list(tops)
        while stack:
            i = stack.pop()
            if not seen[i]:
                seen[i] = True
                count += 1
                stack.extend(children[i])
        return count

    for i in order:
        if parent[i] is None:
            place(i, cycle=False)
    for i in order:
        if seen[i]:
            continue
        # Every unplaced row hangs under a cycle: follow the parents until one repeats.
        chased: set[int] = set()
        while i not in chased:
            chased.add(i)
            i = parent[i]  # type: ignore[assignment]
        place(i, cycle=True)
    return lines


def _ms(ns: int) -> str:
    ns = min(max(ns, 0), 2**63 - 1)
    if ns < 10**12:
        return f"{ns / 1e6:9.2f} ms"
    return f"{ns // 10**9:10d} s"


def render_waterfall(rows: Sequence[SpanRow], *, width: int = BAR_WIDTH) -> str:
    """The spans as an indented tree with durations and a bar on a shared time axis.

    Spans whose parent is not among ``rows`` are roots; children are ordered by start time
    (see :func:`span_tree` for duplicate ids, parent cycles and depth). What a trace carries
    is shown safely: control and format characters as escapes, service names cut to
    :data:`SERVICE_COLUMNS` and span names to :data:`NAME_COLUMNS` columns, at most
    :data:`MAX_DEPTH` levels, each line at most :data:`LINE_COLUMNS` wide.

    Args:
        rows: the spans, from :func:`rows_from_spans` or :func:`rows_from_jaeger`.
        width: columns of the time axis's bar.

    Returns:
        The waterfall, one line per span.

    Examples:
        ```python
        print(kafkascope.render_waterfall(kafkascope.rows_from_spans(capotel.spans)))
        ```

    Raises:
        ValueError: ``width`` is less than 1.
    """
    if width < 1:
        raise ValueError(f"width must be at least 1, not {width!r}")
    if not rows:
        return "(no spans)"
    tree = span_tree(rows)
    start = min(r.start_ns for r in rows)
    total = max(max(r.end_ns for r in rows) - start, 1)
    labels = [
        "  " * line.depth
        + f"{printable(line.row.service, limit=SERVICE_COLUMNS)}: "
        + printable(line.row.name, limit=NAME_COLUMNS)
        if line.row is not None
        else ""
        for line in tree
    ]
    label_width = max(columns(label) for label in labels)
    out: list[str] = []
    for line, label in zip(tree, labels, strict=True):
        row = line.row
        if row is None:
            out.append(
                "  " * line.depth + f"… {line.hidden} more spans deeper than {MAX_DEPTH} levels "
                "(--json lists every span)"
            )
            continue
        duration = max(row.end_ns - row.start_ns, 0)
        first = min(max((row.start_ns - start) * width // total, 0), width - 1)
        length = min(max(duration * width // total, 1), width - first)
        bar = " " * first + ("!" if row.error else "█") * length
        flag = "  ERROR" if row.error else ""
        cycle = "  (parent cycle)" if line.cycle else ""
        links = len(row.links)
        linked = (
            f"  (links {min(links, _LINKS_SHOWN)}{'+' if links > _LINKS_SHOWN else ''})"
            if links
            else ""
        )
        out.append(
            f"{pad(label, label_width)} {_ms(duration)} |{bar.ljust(width)}|{flag}{cycle}{linked}"
        )
    return "\n".join(out)


def render_summary(rows: Sequence[SpanRow], *, trace_id: str) -> str:
    """One line: the trace's id, spans, duration and services, at most :data:`LINE_COLUMNS`
    wide (as many service names as fit, then "and N more")."""
    duration = max(r.end_ns for r in rows) - min(r.start_ns for r in rows) if rows else 0
    head = f"trace {printable(trace_id, limit=32)}: {len(rows)} spans, {_ms(duration).strip()}, "
    return (
        head + "services " + _services({r.service for r in rows}, room=LINE_COLUMNS - len(head) - 9)
    )


def _services(names: Iterable[str], *, room: int) -> str:
    shown = sorted(printable(name, limit=SERVICE_COLUMNS) for name in names)
    if not shown:
        return "none"
    used = list(itertools.accumulate((columns(name) + 2 for name in shown), initial=-2))
    for count in range(len(shown), 0, -1):
        more = f" and {len(shown) - count} more" if count < len(shown) else ""
        if used[count] + len(more) <= room:
            return ", ".join(shown[:count]) + more
    return f"{len(shown)} of them"
