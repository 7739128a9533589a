"""Render a trace as a terminal waterfall: one line per span, indented under its parent."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan


@dataclass(frozen=True)
class SpanRow:
    """What the waterfall shows of one span."""

    span_id: str
    parent_id: str | None
    service: str
    name: str
    start_ns: int
    end_ns: int
    error: bool = False
    links: tuple[str, ...] = ()


def rows_from_spans(spans: Iterable[ReadableSpan]) -> list[SpanRow]:
    """Waterfall rows of finished SDK spans."""
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

    Raises:
        ValueError: if ``trace`` does not have the shape of a Jaeger trace.
    """
    spans = trace.get("spans")
    processes = trace.get("processes") or {}
    if not isinstance(spans, list) or not isinstance(processes, Mapping):
        raise ValueError("not a Jaeger trace: expected a list of spans and a map of processes")
    rows = []
    for span in spans:
        if not isinstance(span, Mapping):
            raise ValueError(f"not a Jaeger span: {span!r:.80}")
        try:
            span_id = str(span["spanID"])
            trace_id = str(span.get("traceID", ""))
            start_ns = int(span["startTime"]) * 1000
            end_ns = start_ns + int(span.get("duration") or 0) * 1000
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a Jaeger span: {span!r:.80}") from exc
        parent, links = _jaeger_references(span.get("references") or [], trace_id)
        process = processes.get(span.get("processID")) or span.get("process") or {}
        rows.append(
            SpanRow(
                span_id=span_id,
                parent_id=parent,
                service=str(process.get("serviceName") or "?"),
                name=str(span.get("operationName", "")),
                start_ns=start_ns,
                end_ns=end_ns,
                error=_jaeger_error(span.get("tags") or []),
                links=links,
            )
        )
    return rows


def _jaeger_references(
    references: Iterable[Mapping[str, Any]], trace_id: str
) -> tuple[str | None, tuple[str, ...]]:
    refs = [(str(r.get("refType", "")), str(r.get("spanID", "")), r) for r in references]
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
        return int(str(ref_trace_id), 16) == int(trace_id, 16)
    except ValueError:
        return False


def _jaeger_error(tags: Iterable[Mapping[str, Any]]) -> bool:
    for tag in tags:
        key, value = tag.get("key"), tag.get("value")
        if key == "error" and (value is True or str(value).lower() == "true"):
            return True
        if key == "otel.status_code" and str(value).upper() == "ERROR":
            return True
    return False


def _ms(ns: int) -> str:
    return f"{ns / 1e6:9.2f} ms"


def render_waterfall(rows: Sequence[SpanRow], *, width: int = 32) -> str:
    """The spans as an indented tree with durations and a bar on a shared time axis.

    Spans whose parent is not among ``rows`` are roots; children are ordered by start time.
    """
    if not rows:
        return "(no spans)"
    by_id = {row.span_id: row for row in rows}
    children: dict[str | None, list[SpanRow]] = {}
    for row in rows:
        parent = row.parent_id if row.parent_id in by_id else None
        children.setdefault(parent, []).append(row)
    for siblings in children.values():
        siblings.sort(key=lambda r: r.start_ns)
    start = min(r.start_ns for r in rows)
    total = max(max(r.end_ns for r in rows) - start, 1)
    label_width = max(len(f"{r.service}: {r.name}") for r in rows) + 2 * _depth(rows, by_id)
    lines: list[str] = []

    def walk(row: SpanRow, depth: int) -> None:
        label = "  " * depth + f"{row.service}: {row.name}"
        first = int((row.start_ns - start) / total * width)
        length = max(1, int((row.end_ns - row.start_ns) / total * width))
        bar = " " * first + ("!" if row.error else "█") * min(length, width - first)
        flag = "  ERROR" if row.error else ""
        linked = f"  (links {len(row.links)})" if row.links else ""
        lines.append(
            f"{label.ljust(label_width)} {_ms(row.end_ns - row.start_ns)} |{bar.ljust(width)}|"
            f"{flag}{linked}"
        )
        for child in children.get(row.span_id, []):
            walk(child, depth + 1)

    for root in children.get(None, []):
        walk(root, 0)
    return "\n".join(lines)


def _depth(rows: Sequence[SpanRow], by_id: dict[str, SpanRow]) -> int:
    deepest = 0
    for row in rows:
        depth, current = 0, row
        while current.parent_id in by_id and depth < len(rows):
            current = by_id[current.parent_id]
            depth += 1
        deepest = max(deepest, depth)
    return deepest
