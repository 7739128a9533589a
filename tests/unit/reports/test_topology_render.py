"""The topology rendered for the terminal and as a Mermaid flowchart."""

from __future__ import annotations

from kafkascope._reports.topology import topology_from_jaeger
from kafkascope._reports.topology_render import render_text
from tests.unit.reports._jaeger_traces import small


def test_terminal_rendering_of_a_known_graph():
    assert render_text(small()) == "\n".join(
        [
            "2 services, 2 topics, 3 edges from 1 traces over the last 10s (figures from spans)",
            "",
            "from        to             msg/s     p95  errors",
            "shop     ─▶ [orders]      0.20/s  2.0 ms      0%",
            "[orders] ─▶ billing       0.20/s  6.0 ms     50%  group billing",
            "billing  ─▶ [orders.dlq]  0.10/s  1.0 ms      0%  dead letters",
        ]
    )


def test_terminal_rendering_of_an_empty_window():
    assert render_text(topology_from_jaeger([], window_seconds=300)) == (
        "(no messaging spans in the last 300s)"
    )
