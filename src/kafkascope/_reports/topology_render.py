"""The topology as text: a table for the terminal, and a Mermaid flowchart for GitHub and wikis.

Names come from traces, so both show them
:func:`~kafkascope._reports.terminal_text.printable` (control characters escaped) and cut with
an ellipsis: services to :data:`~kafkascope._reports.terminal_text.SERVICE_COLUMNS`, topics to
:data:`TOPIC_COLUMNS`, consumer groups to :data:`GROUP_COLUMNS` columns.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from kafkascope._reports.terminal_text import SERVICE_COLUMNS, columns, pad, printable
from kafkascope._reports.topology import SENDS, Edge, Topology

TOPIC_COLUMNS: Final = 60
GROUP_COLUMNS: Final = 40


def _service(name: str) -> str:
    return printable(name, limit=SERVICE_COLUMNS)


def _topic(name: str) -> str:
    return printable(name, limit=TOPIC_COLUMNS)


TEXT_LINE_COLUMNS: Final = (
    2 * (TOPIC_COLUMNS + 2)
    + len(" ─▶ ")
    + len("  -1.23e+300/s  -1.23e+300 ms  -9999%  group ")
    + GROUP_COLUMNS
    + len(", dead letters")
)
"""No line of :func:`render_text` is wider than this."""
MERMAID_LINE_COLUMNS: Final = (
    len("    topic_")
    + TOPIC_COLUMNS
    + len("_12345678")
    + len('[("")]')
    + len("#quot;") * TOPIC_COLUMNS
)
"""No line of :func:`render_mermaid` is wider than this (a node whose label is all quotes)."""


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1000
    return f"{ms:.1f} ms" if abs(ms) < 1e6 else f"{ms:.3g} ms"


def _rate(per_second: float | None) -> str:
    if per_second is None:
        return "-"
    return f"{per_second:.2f}/s" if abs(per_second) < 1e6 else f"{per_second:.3g}/s"


def _ratio(ratio: float | None) -> str:
    return "-" if ratio is None else f"{min(max(ratio, -99.99), 99.99):.0%}"


def _sources(topology: Topology) -> str:
    sources = sorted({e.figures_from for e in topology.edges})
    return " and ".join(sources) if sources else "nothing"


def render_text(topology: Topology) -> str:
    """One line per edge, left to right: ``service ─▶ [topic]`` and ``[topic] ─▶ service``.

    Args:
        topology: the map from :func:`build_topology`.

    Returns:
        The table, for a terminal (names escaped and cut to width).
    """
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
            left, right = _service(edge.service), f"[{_topic(edge.topic)}]"
        else:
            left, right = f"[{_topic(edge.topic)}]", _service(edge.service)
        notes = []
        if edge.group:
            notes.append(f"group {printable(edge.group, limit=GROUP_COLUMNS)}")
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
    widths = [max(columns(row[i]) for row in [header, *cells]) for i in range(5)]

    def line(row: tuple[str, ...], arrow: str) -> str:
        return (
            f"{pad(row[0], widths[0])} {arrow} {pad(row[1], widths[1])}  "
            f"{row[2].rjust(widths[2])}  {row[3].rjust(widths[3])}  {row[4].rjust(widths[4])}"
            f"  {row[5]}"
        ).rstrip()

    return "\n".join([head, "", line(header, "  "), *(line(row, "─▶") for row in cells)])


_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def _node_id(kind: str, name: str) -> str:
    # Mermaid ids: letters, digits, underscores; a hash of the whole name keeps them distinct.
    digest = hashlib.blake2s(name.encode("utf-8", "surrogatepass"), digest_size=4).hexdigest()
    return f"{kind}_{_UNSAFE.sub('_', name[:TOPIC_COLUMNS])}_{digest}"


def _label(text: str) -> str:
    # Inside a quoted label Mermaid reads #name; and #code; as entities: write them for the
    # characters that would end the label or be taken as markup.
    return (
        text.replace("#", "#35;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    )


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

    Args:
        topology: the map from :func:`build_topology`.

    Returns:
        Mermaid source, which GitHub and most wikis render.
    """
    lines = ["flowchart LR"]
    for service in topology.services:
        lines.append(f'    {_node_id("svc", service)}("{_label(_service(service))}")')
    for topic in topology.topics:
        lines.append(f'    {_node_id("topic", topic)}[("{_label(_topic(topic))}")]')
    for edge in topology.ordered_edges():
        if edge.direction == SENDS:
            src, dst = _node_id("svc", edge.service), _node_id("topic", edge.topic)
        else:
            src, dst = _node_id("topic", edge.topic), _node_id("svc", edge.service)
        arrow = "-.->" if edge.dead_letter else "-->"
        lines.append(f'    {src} {arrow}|"{_label(_edge_label(edge))}"| {dst}')
    return "\n".join(lines)
