"""Self-contained HTML pages: the topology as an SVG map, and a trace as a waterfall.

Everything is inline (styles, the map, the spans as JSON, a few lines of script): the page needs
no network. Each service has its own colour (:func:`service_colours`), used for its node on the
map and for its spans' bars; failed spans have a red outline and a ``!``. A span's attributes
show on hover (the row's tooltip) and in the panel under the waterfall when it is clicked; the
address ``page.html#span=<span id>`` opens with that span selected.

What a trace carries is shown, never obeyed: text is HTML-escaped, the embedded JSON has no
``<``, ``>`` or ``&`` (so no ``</script>`` or ``<!--`` can end or stall its script element),
long names and values wrap inside the page's width, and the waterfall has the terminal's
shape (:func:`~kafkascope._reports.waterfall.span_tree`: every span once, a parent cycle marked,
spans deeper than :data:`~kafkascope._reports.waterfall.MAX_DEPTH` levels counted on one row).
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from kafkascope._reports import untrusted_json as untrusted
from kafkascope._reports.topology import SENDS, Edge, Topology, topology_from_jaeger
from kafkascope._reports.waterfall import MAX_DEPTH, rows_from_jaeger, span_tree

PALETTE: Final = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
)  # fmt: skip
"""Service colours, in the order of the sorted service names. Red is kept for errors."""
ERROR_COLOUR: Final = "#d62728"
TOPIC_FILL: Final = "#eeeeee"

_NODE_W, _NODE_H, _COL_W, _ROW_H = 140, 40, 270, 64
_TOOLTIP_CHARS: Final = 200

_STYLE: Final = """
body { font: 14px system-ui, sans-serif; margin: 16px; color: #222; background: #fff; }
h1 { font-size: 18px; margin: 0 0 8px; } h2 { font-size: 16px; margin: 18px 0 6px; }
h1, .meta, td, caption { overflow-wrap: anywhere; }
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
.marker { height: 22px; line-height: 22px; color: #555; font-style: italic;
  border-bottom: 1px solid #f0f0f0; }
#detail { margin-top: 12px; border: 1px solid #ccc; padding: 8px; min-height: 40px; }
#detail table { border-collapse: collapse; table-layout: fixed; width: 100%; }
#detail caption { text-align: left; }
#detail td { padding: 2px 10px 2px 0; vertical-align: top; font-family: ui-monospace, monospace;
  font-size: 12px; }
#detail td:first-child { width: 30%; }
"""

_SCRIPT: Final = """
(function () {
  var spans = JSON.parse(document.getElementById('spans').textContent);
  var detail = document.getElementById('detail');
  function show(key) {
    var span = spans[key];
    if (!span) { return; }
    document.querySelectorAll('.row').forEach(function (r) {
      r.classList.toggle('selected', r.dataset.row === key);
    });
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
  var rows = Array.prototype.slice.call(document.querySelectorAll('.row'));
  rows.forEach(function (row) {
    row.addEventListener('click', function () { show(row.dataset.row); });
  });
  var wanted = /span=([0-9a-fA-F]+)/.exec(location.hash);
  var found = wanted && rows.filter(function (r) { return r.dataset.span === wanted[1]; })[0];
  if (found) { show(found.dataset.row); }
})();
"""


def service_colours(services: Iterable[str]) -> dict[str, str]:
    """The colour of each service: :data:`PALETTE` in the order of the sorted names."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(sorted(set(services)))}


_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def _e(text: object) -> str:
    # A lone surrogate (JSON can carry one) cannot be written as UTF-8: shown as U+FFFD.
    return html.escape(_SURROGATE.sub("\ufffd", str(text)), quote=True)


def _page(title: str, body: str, *, spans_json: str = "{}") -> str:
    # In a script element "</script" ends it and "<!--<script" makes the parser skip the next
    # "</script>": the JSON carries no "<" (nor ">" and "&", for good measure), as escapes.
    safe_json = spans_json.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
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


def _json_value(value: object) -> object:
    # What JSON.parse takes back: no NaN or Infinity, no nested structures (shown as text).
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return untrusted.text(value)


def _attributes(span: Mapping[str, Any]) -> dict[str, object]:
    found = {key: _json_value(value) for key, value in untrusted.tags(span).items()}
    found["span.id"] = untrusted.text(span.get("spanID"))
    return found


def _tooltip(attributes: Mapping[str, object]) -> str:
    return "\n".join(
        f"{k[:_TOOLTIP_CHARS]} = {str(v)[:_TOOLTIP_CHARS]}" for k, v in sorted(attributes.items())
    )


def trace_page(trace: Mapping[str, Any], *, trace_id: str) -> str:
    """A page with the trace's map and its spans as a waterfall (``trace`` as Jaeger returns it).

    Raises:
        ValueError: ``trace`` does not have the shape of a Jaeger trace.
    """
    rows = rows_from_jaeger(trace)
    # One row per span, in the answer's order: a span's own tags, duplicate ids or not.
    raw = dict(zip(map(id, rows), untrusted.mappings(trace.get("spans")), strict=True))
    index = {id(row): i for i, row in enumerate(rows)}
    colours = service_colours(r.service for r in rows)
    start = min((r.start_ns for r in rows), default=0)
    total = max(max((r.end_ns for r in rows), default=0) - start, 1)
    lines, spans = [], {}
    for line in span_tree(rows):
        indent = f"padding-left:{line.depth * 14}px"
        row = line.row
        if row is None:
            lines.append(
                f'<div class="marker" style="{indent}">… {line.hidden} more spans deeper than '
                f"{MAX_DEPTH} levels (kafkascope trace --json lists every span)</div>"
            )
            continue
        key = str(index[id(row)])
        attributes = _attributes(raw[id(row)])
        spans[key] = {"service": row.service, "name": row.name, "attributes": attributes}
        left = min(max((row.start_ns - start) / total * 100, 0.0), 100.0)
        width = min(max((row.end_ns - row.start_ns) / total * 100, 0.0), 100.0 - left)
        error = " error" if row.error else ""
        flag = ' <span class="err">!</span>' if row.error else ""
        cycle = " <i>(parent cycle)</i>" if line.cycle else ""
        lines.append(
            f'<div class="row" data-row="{key}" data-span="{_e(row.span_id)}" '
            f'data-service="{_e(row.service)}" title="{_e(_tooltip(attributes))}">'
            f'<div class="label" style="{indent}">'
            f'<span class="dot" style="background:{colours[row.service]}"></span>'
            f"<b>{_e(row.service)}</b>: {_e(row.name)}{flag}{cycle}</div>"
            f'<div class="lane"><div class="bar{error}" style="left:{left:.3f}%;'
            f'width:{width:.3f}%;background:{colours[row.service]}"></div></div>'
            f'<div class="dur">{max(row.end_ns - row.start_ns, 0) / 1e6:.2f} ms</div></div>'
        )
    topology = topology_from_jaeger([trace], window_seconds=max(total / 1e9, 1e-9))
    body = (
        f"<h1>trace {_e(trace_id)}</h1>"
        f'<div class="meta">{len(rows)} spans, {total / 1e6:.2f} ms, services '
        f"{_e(', '.join(sorted(colours)))}. Hover a span for its attributes, click to keep them "
        f"below.</div><h2>Map</h2>{topology_svg(topology, rates=False)}<h2>Waterfall</h2>"
        f'<div class="wf">{"".join(lines)}</div><div id="detail">Click a span.</div>'
    )
    return _page(f"trace {trace_id}", body, spans_json=json.dumps(spans, allow_nan=False))
