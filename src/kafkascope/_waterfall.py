"""Render a trace as a terminal waterfall: one line per span, indented under its parent."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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
