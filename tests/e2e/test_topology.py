"""``kafkascope topology`` and the ``--html`` pages, against the pipeline on the real stack:
Jaeger's and Prometheus's HTTP APIs, and the pages rendered by a real headless Chromium."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from devstack.stack import Stack
from examples.pipeline.service import Topics, declined

from kafkascope import cli
from kafkascope._reports.html import ERROR_COLOUR, TOPIC_FILL, service_colours
from tests._browser import Run, chromium_binary, dump_dom, screenshot, vertical_runs
from tests.e2e.conftest import running_pipeline

pytestmark = pytest.mark.e2e

ORDERS = 10  # 2 of them declined: dead-lettered by billing, audited from the DLQ
SERVICES = ["audit", "billing", "enricher", "orders"]


@dataclass(frozen=True)
class Ran:
    """Ten orders through the pipeline on fresh topics, every trace in Jaeger."""

    stack: Stack
    topics: Topics
    prefix: str
    declined_trace_id: str

    def args(self, *extra: str) -> list[str]:
        return [
            "topology",
            "--jaeger",
            self.stack.endpoints.jaeger_url,
            "--since",
            "300",
            "--topics",
            f"^{re.escape(self.prefix)}",
            *extra,
        ]


def _json_of(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, Any]:
    assert cli.main(argv) == 0
    answer: dict[str, Any] = json.loads(capsys.readouterr().out)
    return answer


def _edges(answer: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["from"], e["to"]): e for e in answer["edges"]}


@pytest.fixture(scope="module")
def ran(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Ran:
    with running_pipeline(stack, tmp_path_factory.mktemp("topology")) as pipeline:
        placed = pipeline.place_orders(ORDERS, first=1)
        failing = [o for o in placed if declined(o["n"])]
        expected = {"enricher": ORDERS, "billing": ORDERS, "audit": ORDERS + len(failing)}
        assert pipeline.wait_for_outcomes(expected, timeout=30) == expected
        for order in placed:  # every span of every order in Jaeger
            stack.jaeger.wait_for_trace(
                order["trace_id"], min_spans=10 if declined(order["n"]) else 8, timeout=30
            )
        topics, prefix = pipeline.topics, pipeline.prefix
    # Prometheus has scraped each service's last export.
    for job, metric in [
        ("billing", "messaging_process_duration_seconds_count"),
        ("audit", "messaging_client_consumed_messages_total"),
        ("orders", "messaging_client_sent_messages_total"),
    ]:
        total = ORDERS + len(failing) if job == "audit" else ORDERS
        promql = f'sum({metric}{{job="{job}",messaging_destination_name=~"{prefix}.*"}})'
        assert stack.prometheus.wait_for(promql, float(total).__eq__, timeout=20) == total
    return Ran(stack, topics, prefix, failing[0]["trace_id"])


def test_topology_from_spans_maps_every_edge_with_counts_and_errors(ran: Ran, capsys):
    t = ran.topics
    answer = _json_of(capsys, ran.args("--json"))
    edges = _edges(answer)
    assert set(edges) == {
        ("orders", t.orders),
        (t.orders, "enricher"),
        ("enricher", t.enriched),
        (t.enriched, "billing"),
        (t.enriched, "audit"),
        ("billing", t.dead_letter),
        (t.dead_letter, "audit"),
    }
    assert answer["services"] == SERVICES
    spans = {key: e["spans"] for key, e in edges.items()}
    assert spans == {key: 2 if t.dead_letter in key else ORDERS for key in edges}
    assert edges[(t.enriched, "billing")]["error_ratio"] == pytest.approx(0.2)
    assert edges[(t.orders, "enricher")]["error_ratio"] == 0
    assert edges[(t.enriched, "audit")]["group"] == f"{ran.prefix}audit"
    assert [k for k, e in edges.items() if e["dead_letter"]] == [("billing", t.dead_letter)]
    # audit only consumes: no edge leaves it.
    assert not [e for e in answer["edges"] if e["from"] == "audit"]
    assert {e["figures_from"] for e in answer["edges"]} == {"spans"}
    assert all(e["p95_seconds"] > 0 for e in answer["edges"])
    assert edges[("orders", t.orders)]["messages_per_second"] == pytest.approx(ORDERS / 300)


def test_topology_takes_figures_from_prometheus_where_it_has_them(ran: Ran, capsys):
    t = ran.topics
    prometheus = ran.stack.endpoints.prometheus_url
    edges = _edges(_json_of(capsys, ran.args("--json", "--prometheus", prometheus)))
    assert {e["figures_from"] for e in edges.values()} == {"prometheus"}
    billing = edges[(t.enriched, "billing")]
    # Counted in the window, new series included (rate() would say 0 for a burst this short).
    assert billing["error_ratio"] == pytest.approx(0.2)
    assert billing["messages_per_second"] == pytest.approx(ORDERS / 300)
    assert edges[(t.dead_letter, "audit")]["messages_per_second"] == pytest.approx(2 / 300)
    # Interpolated in the histogram's buckets (0.005, 0.01, ...), not a span's duration.
    assert 0 < billing["p95_seconds"] <= 10
    assert edges[("billing", t.dead_letter)]["dead_letter"]


def test_topology_falls_back_to_spans_when_prometheus_is_unreachable(ran: Ran, capsys):
    dead = "http://127.0.0.1:9"  # discard port: nothing listens
    assert cli.main(ran.args("--json", "--prometheus", dead)) == 0
    out, err = capsys.readouterr()
    assert {e["figures_from"] for e in json.loads(out)["edges"]} == {"spans"}
    assert "figures from spans only" in err


def test_topology_prints_a_table_and_a_mermaid_flowchart(ran: Ran, capsys):
    t = ran.topics
    assert cli.main(ran.args()) == 0
    table = capsys.readouterr().out
    assert table.startswith("topology: 4 services, 3 topics, 7 edges")
    assert re.search(rf"billing\s+─▶ \[{re.escape(t.dead_letter)}\].*dead letters", table)
    assert re.search(rf"\[{re.escape(t.enriched)}\]\s+─▶ billing .* 20%", table)
    assert cli.main(ran.args("--mermaid")) == 0
    mermaid = capsys.readouterr().out.splitlines()
    assert mermaid[0] == "flowchart LR"
    assert sum("-.->" in line for line in mermaid) == 1  # the dead-letter send
    assert sum("-->" in line for line in mermaid) == 6
    assert any(f'[("{t.dead_letter}")]' in line for line in mermaid)


@pytest.fixture(scope="module")
def chromium() -> str:
    return chromium_binary()


def _split(runs: dict[str, list[Run]]) -> tuple[int, dict[str, list[Run]], dict[str, list[Run]]]:
    """The map's nodes (runs 30-42 px tall), its bottom edge, and the bars (14-18 px) below it."""
    nodes = {c: [r for r in rs if 30 <= r[2] <= 42] for c, rs in runs.items()}
    bottom = max((y + n for rs in nodes.values() for _, y, n in rs), default=0)
    bars = {c: [r for r in rs if 14 <= r[2] <= 18 and r[1] > bottom] for c, rs in runs.items()}
    return bottom, nodes, bars


def test_trace_page_shows_map_and_waterfall_in_chromium(
    ran: Ran, chromium: str, tmp_path: Path, capsys
):
    page = tmp_path / "trace.html"
    argv = ["trace", ran.declined_trace_id, "--jaeger", ran.stack.endpoints.jaeger_url]
    assert cli.main([*argv, "--html", str(page)]) == 0
    capsys.readouterr()
    assert not re.search(r"""(src|href)=["']?https?:""", page.read_text())  # self-contained
    image = screenshot(chromium, page, tmp_path / "trace.png", width=1900, height=900)
    colours = service_colours(SERVICES)
    bottom, nodes, bars = _split({c: vertical_runs(image, c) for c in colours.values()})
    for service, colour in colours.items():
        assert len(nodes[colour]) >= 20, f"{service}'s node is not on the map"
        assert len(bars[colour]) >= 3, f"no bar of {service} under the map (y > {bottom})"
    # 3 topics (their names cover most of their boxes)
    assert len(_split({"t": vertical_runs(image, TOPIC_FILL)})[1]["t"]) >= 3 * 8
    errors = [r for r in vertical_runs(image, ERROR_COLOUR) if r[1] > bottom]
    assert errors, "the failed process span has no red outline"

    # Clicking a span (here: the address that selects it) shows its attributes.
    charge = next(
        s
        for s in ran.stack.jaeger.get_trace(ran.declined_trace_id)["spans"]
        if s["operationName"] == f"process {ran.topics.enriched}"
        and any(t["value"] == f"{ran.prefix}billing" for t in s["tags"])
    )
    dom = dump_dom(chromium, f"{page.as_uri()}#span={charge['spanID']}", tmp_path / "profile")
    detail = dom[dom.index('id="detail"') :]
    assert f"billing: process {ran.topics.enriched}" in detail
    assert "examples.pipeline.service.PaymentDeclinedError" in detail  # error.type
    assert f"{ran.prefix}billing" in detail  # messaging.consumer.group.name


def test_topology_page_shows_the_map_in_chromium(ran: Ran, chromium: str, tmp_path: Path, capsys):
    page = tmp_path / "topology.html"
    assert cli.main([*ran.args("--html", str(page))]) == 0
    capsys.readouterr()
    image = screenshot(chromium, page, tmp_path / "topology.png", width=1900, height=700)
    colours = service_colours(SERVICES)
    for service, colour in colours.items():
        node_runs = [r for r in vertical_runs(image, colour) if 30 <= r[2] <= 42]
        assert len(node_runs) >= 20, f"{service}'s node is not on the map"
    assert len([r for r in vertical_runs(image, TOPIC_FILL) if 30 <= r[2] <= 42]) >= 3 * 8
    assert vertical_runs(image, ERROR_COLOUR), "the dead-letter edge is not drawn"
    dom = dump_dom(chromium, page.as_uri(), tmp_path / "profile")
    for name in [*SERVICES, ran.topics.dead_letter]:
        assert f'data-name="{name}"' in dom
