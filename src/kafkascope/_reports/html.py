"""Self-contained HTML pages: the topology as an SVG map, and a trace as a waterfall.

Everything is inline (styles, the map, the spans as JSON, a few lines of script): the page needs
no network. Each service has its own colour (:func:`service_colours`), used for its node on the
map and for its spans' bars; failed spans have a red outline and a ``!``. A span's attributes
show on hover (the row's tooltip) and in the panel under the waterfall when it is clicked; the
address ``page.html#span=<span id>`` opens with that span selected.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from kafkascope._reports.topology import SENDS, Edge, Topology, topology_from_jaeger
from kafkascope._reports.waterfall import SpanRow, rows_from_jaeger

PALETTE: Final = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
)  # fmt: skip
"""Service colours, in the order of the sorted service names. Red is kept for errors."""
ERROR_COLOUR: Final = "#d62728"
TOPIC_FILL: Final = "#eeeeee"

_NODE_W, _NODE_H, _COL_W, _ROW_H = 140, 40, 270, 64

_STYLE: Final = """
body { font: 14px system-ui, sans-serif; margin: 16px; color: #222; background: #fff; }
h1 { font-size: 18px; margin: 0 0 8px; } h2 { font-size: 16px; margin: 18px 0 6px; }
.meta { color: #555; margin-bottom: 8px; }
svg text { font: 11px system-ui, sans-serif; }
.wf { border-top: 1px solid #ccc; }
.row { display: flex; align-items: center; height: 22px; border-bottom: 1px solid #f0f0f0;
  cursor: pointer; }
.row:hover, .row.selected { background: #f3f6fb; }
.label { width: 420px; flex: none; overflow: hidden; white-space: nowrap; text-overflow: ellipsis; }
.dot { display: inline-block; width: 10px; height: 10px; border-radius: 5px; margin-right: 6px; }
.lane { position: relative; flex: 1; height: 16px; }
.bar { position: absolute; top: 0; height: 16px; min-width: 8px; box-sizing: border-box; }
.bar.error { outline: 2px solid #d62728; }
.dur { width: 90px; flex: none; text-align: right; color: #555; padding-left: 8px; }
.err { color: #d62728; font-weight: bold; }
#detail { margin-top: 12px; border: 1px solid #ccc; padding: 8px; min-height: 40px; }
#detail table { border-collapse: collapse; } #detail td { padding: 2px 10px 2px 0;
  vertical-align: top; font-family: ui-monospace, monospace; font-size: 12px; }
"""

_SCRIPT: Final = """
(function () {
  var spans = JSON.parse(document.getElementById('spans').textContent);
  var detail = document.getElementById('detail');
  function show(id) {
    var span = spans[id];
    if (!span) { return; }
    document.querySelectorAll('.row.selected').forEach(function (r) {
      r.classList.remove('selected');
    });
    var row = document.querySelector('.row[data-span="' + id + '"]');
    if (row) { row.classList.add('selected'); }
    var table = document.createElement('table');
    var head = document.createElement('caption');
    head.textContent = span.service + ': ' + span.name;
    table.appendChild(head);
    Object.keys(span.attributes).sort().forEach(function (key) {
      var tr = document.createElement('tr');
      var k = document.createElement('td'); k.textContent = key;
      var v = document.createElement('td'); v.textContent = String(span.attributes[key]);
      tr.appendChild(k); tr.appendChild(v); table.appendChild(tr);
    });
    detail.replaceChildren(table);
  }
  document.querySelectorAll('.row').forEach(function (row) {
    row.addEventListener('click', function () { show(row.dataset.span); });
  });
  var wanted = /span=([0-9a-fA-F]+)/.exec(location.hash);
  if (wanted) { show(wanted[1]); }
})();
"""


def service_colours(services: Iterable[str]) -> dict[str, str]:
    """The colour of each service: :data:`PALETTE` in the order of the sorted names."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(sorted(set(services)))}


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _page(title: str, body: str, *, spans_json: str = "{}") -> str:
    # "</" inside the JSON would end the script element early.
    safe_json = spans_json.replace("</", "<\\/")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>{body}"
        f'<script type="application/json" id="spans">{safe_json}</script>'
        f"<script>{_SCRIPT}</script></body></html>\n"
    )


def _edge_text(edge: Edge, *, rates: bool) -> str:
    if rates and edge.per_second is not None:
        text = f"{edge.per_second:.2f}/s"
    else:
        text = f"{edge.spans} msg"
    if edge.p95_seconds is not None:
        text += f" · p95 {edge.p95_seconds * 1000:.1f} ms"
    if edge.error_ratio:
        text += f" · {edge.error_ratio:.0%} err"
    return text


def topology_svg(topology: Topology, *, rates: bool = True) -> str:
    """The map as an SVG element: services filled with their colour, topics grey, in columns."""
    if not topology.edges:
        return '<p class="meta">No messaging spans in this window.</p>'
    rank = topology.ranks()
    colours = service_colours(topology.services)
    columns: dict[int, list[tuple[str, str]]] = {}
    for node in sorted(rank, key=lambda n: (rank[n], n[1], n[0])):
        columns.setdefault(rank[node], []).append(node)
    where: dict[tuple[str, str], tuple[int, int]] = {}
    for col, nodes in columns.items():
        for i, node in enumerate(nodes):
            where[node] = (20 + col * _COL_W, 20 + i * _ROW_H)
    width = 40 + (max(columns) + 1) * _COL_W
    height = 70 + max(len(n) for n in columns.values()) * _ROW_H
    parts = [
        f'<svg id="map" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
    ]
    for edge in topology.ordered_edges():
        src = ("service", edge.service) if edge.direction == SENDS else ("topic", edge.topic)
        dst = ("topic", edge.topic) if edge.direction == SENDS else ("service", edge.service)
        (x1, y1), (x2, y2) = where[src], where[dst]
        x1, y1, x2, y2 = x1 + _NODE_W, y1 + _NODE_H // 2, x2, y2 + _NODE_H // 2
        mid = (x1 + x2) / 2
        # An edge past the next column dips under the row, not through the nodes it passes.
        dip = 0 if abs(x2 - x1) <= _COL_W else _NODE_H // 2 + 12
        stroke = ERROR_COLOUR if edge.dead_letter else "#555"
        dash = ' stroke-dasharray="6 4"' if edge.dead_letter else ""
        parts.append(
            f'<path class="edge" data-from="{_e(edge.source)}" data-to="{_e(edge.target)}" '
            f'd="M{x1},{y1} C{mid},{y1 + 2 * dip} {mid},{y2 + 2 * dip} {x2},{y2}" '
            f'fill="none" stroke="{stroke}" '
            f'stroke-width="2"{dash} marker-end="url(#arrow)"><title>{_e(edge.source)} → '
            f"{_e(edge.target)}: {_e(_edge_text(edge, rates=rates))}</title></path>"
        )
        if rates:  # a trace's page has the durations in its waterfall
            parts.append(
                f'<text x="{x1 + 6}" y="{y1 - 6 + (dip and _NODE_H)}" fill="#333">'
                f"{_e(_edge_text(edge, rates=rates))}</text>"
            )
    for (kind, name), (x, y) in where.items():
        if kind == "service":
            fill, ink, radius, label = colours[name], "#fff", 10, name
        else:
            fill, ink, radius, label = TOPIC_FILL, "#222", 2, f"[{name}]"
        parts.append(
            f'<g class="node {kind}" data-name="{_e(name)}"><rect x="{x}" y="{y}" '
            f'width="{_NODE_W}" height="{_NODE_H}" rx="{radius}" fill="{fill}" stroke="#444"/>'
            f'<text x="{x + _NODE_W / 2}" y="{y + _NODE_H / 2 + 4}" text-anchor="middle" '
            f'fill="{ink}">{_e(label if len(label) <= 22 else label[:21] + "…")}</text>'
            f"<title>{_e(kind)} {_e(name)}</title></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def topology_page(topology: Topology) -> str:
    """A page with the topology's map and its edges as a table."""
    sources = " and ".join(sorted({e.figures_from for e in topology.edges})) or "nothing"
    rows = "".join(
        f"<tr><td>{_e(e.source)}</td><td>{_e(e.target)}</td>"
        f"<td>{_e(_edge_text(e, rates=True))}</td><td>{'dead letters' if e.dead_letter else ''}"
        "</td></tr>"
        for e in topology.ordered_edges()
    )
    body = (
        "<h1>kafkascope topology</h1>"
        f'<div class="meta">{len(topology.services)} services, {len(topology.topics)} topics, '
        f"{topology.traces} traces over the last {topology.window_seconds:.0f}s; figures from "
        f"{_e(sources)}</div>{topology_svg(topology)}<h2>Edges</h2><table>"
        f"<tr><th>from</th><th>to</th><th>figures</th><th></th></tr>{rows}</table>"
    )
    return _page("kafkascope topology", body)


def _ordered(rows: list[SpanRow]) -> list[tuple[SpanRow, int]]:
    by_id = {r.span_id: r for r in rows}
    children: dict[str | None, list[SpanRow]] = {}
    for row in rows:
        children.setdefault(row.parent_id if row.parent_id in by_id else None, []).append(row)
    for siblings in children.values():
        siblings.sort(key=lambda r: (r.start_ns, r.span_id))
    out: list[tuple[SpanRow, int]] = []
    stack = [(root, 0) for root in reversed(children.get(None, []))]
    seen: set[str] = set()
    while stack:
        row, depth = stack.pop()
        if row.span_id in seen:
            continue
        seen.add(row.span_id)
        out.append((row, depth))
        stack.extend((child, depth + 1) for child in reversed(children.get(row.span_id, [])))
    return out


def _attributes(span: Mapping[str, Any]) -> dict[str, Any]:
    found = {str(t.get("key")): t.get("value") for t in span.get("tags") or []}
    found["span.id"] = span.get("spanID")
    return found


def trace_page(trace: Mapping[str, Any], *, trace_id: str) -> str:
    """A page with the trace's map and its spans as a waterfall (``trace`` as Jaeger returns it).

    Raises:
        ValueError: ``trace`` does not have the shape of a Jaeger trace.
    """
    rows = rows_from_jaeger(trace)
    raw = {str(s.get("spanID")): s for s in trace.get("spans") or []}
    colours = service_colours(r.service for r in rows)
    start = min((r.start_ns for r in rows), default=0)
    total = max(max((r.end_ns for r in rows), default=0) - start, 1)
    lines, spans = [], {}
    for row, depth in _ordered(rows):
        attributes = _attributes(raw.get(row.span_id, {}))
        spans[row.span_id] = {"service": row.service, "name": row.name, "attributes": attributes}
        tooltip = "\n".join(f"{k} = {v}" for k, v in sorted(attributes.items()))
        left = (row.start_ns - start) / total * 100
        width = (row.end_ns - row.start_ns) / total * 100
        error = " error" if row.error else ""
        flag = ' <span class="err">!</span>' if row.error else ""
        lines.append(
            f'<div class="row" data-span="{_e(row.span_id)}" data-service="{_e(row.service)}" '
            f'title="{_e(tooltip)}"><div class="label" style="padding-left:{depth * 16}px">'
            f'<span class="dot" style="background:{colours[row.service]}"></span>'
            f"<b>{_e(row.service)}</b>: {_e(row.name)}{flag}</div>"
            f'<div class="lane"><div class="bar{error}" style="left:{left:.3f}%;'
            f'width:{width:.3f}%;background:{colours[row.service]}"></div></div>'
            f'<div class="dur">{(row.end_ns - row.start_ns) / 1e6:.2f} ms</div></div>'
        )
    topology = topology_from_jaeger([trace], window_seconds=max(total / 1e9, 1e-9))
    body = (
        f"<h1>trace {_e(trace_id)}</h1>"
        f'<div class="meta">{len(rows)} spans, {total / 1e6:.2f} ms, services '
        f"{_e(', '.join(sorted(colours)))}. Hover a span for its attributes, click to keep them "
        f"below.</div><h2>Map</h2>{topology_svg(topology, rates=False)}<h2>Waterfall</h2>"
        f'<div class="wf">{"".join(lines)}</div><div id="detail">Click a span.</div>'
    )
    return _page(f"trace {trace_id}", body, spans_json=json.dumps(spans, default=str))
