"""The topology as text: a table for the terminal, and a Mermaid flowchart for GitHub and wikis."""

from __future__ import annotations

import re

from kafkascope._reports.topology import SENDS, Edge, Topology


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def _rate(per_second: float | None) -> str:
    return "-" if per_second is None else f"{per_second:.2f}/s"


def _ratio(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.0%}"


def _sources(topology: Topology) -> str:
    sources = sorted({e.figures_from for e in topology.edges})
    return " and ".join(sources) if sources else "nothing"


def render_text(topology: Topology) -> str:
    """One line per edge, left to right: ``service ─▶ [topic]`` and ``[topic] ─▶ service``."""
    if not topology.edges:
        return f"(no messaging spans in the last {topology.window_seconds:.0f}s)"
    head = (
        f"{len(topology.services)} services, {len(topology.topics)} topics, "
        f"{len(topology.edges)} edges from {topology.traces} traces over the last "
        f"{topology.window_seconds:.0f}s (figures from {_sources(topology)})"
    )
    cells = []
    for edge in topology.ordered_edges():
        if edge.direction == SENDS:
            left, right = edge.service, f"[{edge.topic}]"
        else:
            left, right = f"[{edge.topic}]", edge.service
        notes = []
        if edge.group:
            notes.append(f"group {edge.group}")
        if edge.dead_letter:
            notes.append("dead letters")
        cells.append(
            (
                left,
                right,
                _rate(edge.per_second),
                _ms(edge.p95_seconds),
                _ratio(edge.error_ratio),
                ", ".join(notes),
            )
        )
    header = ("from", "to", "msg/s", "p95", "errors", "")
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(5)]

    def line(row: tuple[str, ...], arrow: str) -> str:
        return (
            f"{row[0].ljust(widths[0])} {arrow} {row[1].ljust(widths[1])}  "
            f"{row[2].rjust(widths[2])}  {row[3].rjust(widths[3])}  {row[4].rjust(widths[4])}"
            f"  {row[5]}"
        ).rstrip()

    return "\n".join([head, "", line(header, "  "), *(line(row, "─▶") for row in cells)])


_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def _node_id(kind: str, name: str) -> str:
    # Mermaid ids: letters, digits, underscores; the hex of the name keeps them distinct.
    return f"{kind}_{_UNSAFE.sub('_', name)}_{name.encode().hex()[:8]}"


def _label(text: str) -> str:
    return text.replace('"', "#quot;")


def _edge_label(edge: Edge) -> str:
    parts = [_rate(edge.per_second)]
    if edge.p95_seconds is not None:
        parts.append(f"p95 {_ms(edge.p95_seconds)}")
    if edge.error_ratio:
        parts.append(f"{_ratio(edge.error_ratio)} errors")
    if edge.dead_letter:
        parts.append("dead letters")
    return " · ".join(parts)


def render_mermaid(topology: Topology) -> str:
    """A ``flowchart LR``: services as rounded boxes, topics as cylinders, figures on the edges.

    Dead-letter sends are dotted arrows.
    """
    lines = ["flowchart LR"]
    for service in topology.services:
        lines.append(f'    {_node_id("svc", service)}("{_label(service)}")')
    for topic in topology.topics:
        lines.append(f'    {_node_id("topic", topic)}[("{_label(topic)}")]')
    for edge in topology.ordered_edges():
        if edge.direction == SENDS:
            src, dst = _node_id("svc", edge.service), _node_id("topic", edge.topic)
        else:
            src, dst = _node_id("topic", edge.topic), _node_id("svc", edge.service)
        arrow = "-.->" if edge.dead_letter else "-->"
        lines.append(f'    {src} {arrow}|"{_label(_edge_label(edge))}"| {dst}')
    return "\n".join(lines)
