"""topology_from_jaeger and the map's JSON, on traces in the shape Jaeger's /api/traces returns.

``data/jaeger_trace.json`` is a real Jaeger answer (see tests/unit/reports/test_waterfall.py); the
other traces are built in the same shape (``_jaeger_traces.py``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kafkascope._reports.topology import (
    CONSUMES,
    SENDS,
    Edge,
    Topology,
    only_topics,
    topology_from_jaeger,
)
from kafkascope._reports.topology_render import TEXT_LINE_COLUMNS, render_mermaid, render_text
from tests._cli_process import unsafe_characters, width
from tests.unit.reports._jaeger_traces import small, span, tag, trace

RECORDED = Path(__file__).resolve().parents[1] / "data" / "jaeger_trace.json"


def edges(topology: Topology) -> dict[tuple[str, str, str], Edge]:
    return {(e.source, e.target, e.direction): e for e in topology.edges}


def pipeline() -> Topology:
    """orders -> [orders] -> billing -> [payments] -> ledger; audit only reads [orders];
    billing's failed processing sends to [orders.dlq]."""
    ok = span("billing", "consumer", "orders", group="billing", ms=4)
    failed = span("billing", "consumer", "orders", group="billing", ms=8, error=True)
    return topology_from_jaeger(
        [
            trace(
                span("orders", "producer", "orders", ms=2),
                span("orders", "producer", "orders", ms=2),
                ok,
                failed,
                span("billing", "producer", "payments", refs=[("CHILD_OF", ok["spanID"])]),
                span("billing", "producer", "orders.dlq", refs=[("CHILD_OF", failed["spanID"])]),
                span("ledger", "consumer", "payments", group="ledger", ms=3),
                span("audit", "consumer", "orders", group="audit", ms=1),
                span("audit", "consumer", "orders", group="audit", ms=1),
            )
        ],
        window_seconds=10,
    )


def test_sends_are_service_to_topic_and_process_spans_topic_to_service_edges():
    found = edges(pipeline())
    assert set(found) == {
        ("orders", "orders", SENDS),
        ("orders", "billing", CONSUMES),
        ("orders", "audit", CONSUMES),
        ("billing", "payments", SENDS),
        ("billing", "orders.dlq", SENDS),
        ("payments", "ledger", CONSUMES),
    }
    assert found[("orders", "billing", CONSUMES)].group == "billing"
    assert found[("orders", "orders", SENDS)].group is None
    assert found[("orders", "orders", SENDS)].spans == 2


def test_a_consume_only_service_is_a_node_with_incoming_edges_only():
    topology = pipeline()
    assert topology.services == ("audit", "billing", "ledger", "orders")
    assert topology.topics == ("orders", "orders.dlq", "payments")
    audit = [e for e in topology.edges if e.service == "audit"]
    assert [(e.topic, e.direction, e.spans) for e in audit] == [("orders", CONSUMES, 2)]
    ranks = topology.ranks()
    assert ranks[("service", "orders")] == 0
    assert ranks[("topic", "orders")] == 1
    assert ranks[("service", "audit")] == ranks[("service", "billing")] == 2
    assert ranks[("service", "ledger")] == 4


def test_a_send_continuing_a_failed_process_span_is_a_dead_letter_edge():
    found = edges(pipeline())
    assert found[("billing", "orders.dlq", SENDS)].dead_letter is True
    assert found[("billing", "payments", SENDS)].dead_letter is False  # its parent succeeded


def test_a_send_linked_to_a_failed_process_span_is_a_dead_letter_edge_too():
    failed = span("billing", "consumer", "orders", error=True)
    sent = span("billing", "producer", "orders.dlq", refs=[("FOLLOWS_FROM", failed["spanID"])])
    found = edges(topology_from_jaeger([trace(failed, sent)], window_seconds=1))
    assert found[("billing", "orders.dlq", SENDS)].dead_letter is True


def test_error_ratio_is_the_share_of_spans_in_error():
    found = edges(pipeline())
    assert found[("orders", "billing", CONSUMES)].error_ratio == 0.5
    assert found[("orders", "audit", CONSUMES)].error_ratio == 0.0
    only_status = span("svc", "consumer", "t")
    only_status["tags"].append(tag("otel.status_code", "ERROR"))  # no ``error`` tag
    fine = span("svc", "consumer", "t")
    found = edges(topology_from_jaeger([trace(only_status, fine)], window_seconds=1))
    assert found[("t", "svc", CONSUMES)].error_ratio == 0.5


def test_p95_is_the_nearest_rank_of_the_span_durations():
    spans = [span("svc", "consumer", "t", ms=ms) for ms in range(1, 21)]  # 1 .. 20 ms
    found = edges(topology_from_jaeger([trace(*spans)], window_seconds=1))
    assert found[("t", "svc", CONSUMES)].p95_seconds == pytest.approx(0.019)
    one = edges(topology_from_jaeger([trace(span("s", "producer", "t", ms=7))], window_seconds=1))
    assert one[("s", "t", SENDS)].p95_seconds == pytest.approx(0.007)


def test_messages_per_second_are_the_spans_over_the_window():
    spans = [span("svc", "producer", "t") for _ in range(30)]
    assert edges(topology_from_jaeger([trace(*spans)], window_seconds=60))[
        ("svc", "t", SENDS)
    ].per_second == pytest.approx(0.5)
    assert edges(topology_from_jaeger([trace(*spans)], window_seconds=15))[
        ("svc", "t", SENDS)
    ].per_second == pytest.approx(2.0)


def test_a_batch_span_counts_its_messages_unless_per_message_spans_exist():
    batch_only = topology_from_jaeger(
        [trace(span("svc", "consumer", "t", batch=5, ms=10, error=True))], window_seconds=5
    )
    edge = edges(batch_only)[("t", "svc", CONSUMES)]
    assert (edge.spans, edge.per_second, edge.error_ratio) == (5, 1.0, 1.0)
    assert edge.p95_seconds == pytest.approx(0.010)
    both = topology_from_jaeger(
        [
            trace(
                span("svc", "consumer", "t", batch=5, ms=10),
                *(span("svc", "consumer", "t", ms=2) for _ in range(5)),
            )
        ],
        window_seconds=5,
    )
    edge = edges(both)[("t", "svc", CONSUMES)]
    assert edge.spans == 5
    assert edge.p95_seconds == pytest.approx(0.002)


def test_receive_spans_and_spans_without_a_topic_are_not_edges():
    topology = topology_from_jaeger(
        [
            trace(
                span("svc", "consumer", "t", operation="receive"),
                span("svc", "producer", None),
                span("svc", "consumer", "t"),
            )
        ],
        window_seconds=1,
    )
    assert [(e.topic, e.direction, e.spans) for e in topology.edges] == [("t", CONSUMES, 1)]


def test_a_span_in_several_traces_of_the_answer_counts_once():
    sent = span("svc", "producer", "t")
    topology = topology_from_jaeger([trace(sent), trace(sent)], window_seconds=1)
    assert edges(topology)[("svc", "t", SENDS)].spans == 1
    assert topology.traces == 1


def test_the_recorded_jaeger_answer_gives_its_two_consumers_with_groups_and_errors():
    answer = json.loads(RECORDED.read_text())
    found = edges(topology_from_jaeger(answer["data"], window_seconds=60))
    # the sample's send spans carry no messaging.destination.name: no send edges
    assert set(found) == {("orders", "billing", CONSUMES), ("orders", "audit", CONSUMES)}
    billing = found[("orders", "billing", CONSUMES)]
    assert (billing.group, billing.spans, billing.error_ratio) == ("billing", 2, 0.5)
    assert billing.per_second == pytest.approx(2 / 60)


def test_a_window_that_is_not_positive_is_refused():
    with pytest.raises(ValueError, match="window_seconds"):
        topology_from_jaeger([], window_seconds=0)


def test_only_topics_keeps_the_matching_edges_and_their_nodes():
    kept = only_topics(pipeline(), re.compile(r"^payments$"))
    assert {(e.source, e.target) for e in kept.edges} == {
        ("billing", "payments"),
        ("payments", "ledger"),
    }
    assert (kept.services, kept.topics) == (("billing", "ledger"), ("payments",))


def test_json_rendering_of_a_known_graph():
    rendered = json.loads(json.dumps(small().to_json()))
    assert rendered["window_seconds"] == 10
    assert rendered["traces"] == 1
    assert rendered["services"] == ["billing", "shop"]
    assert rendered["topics"] == ["orders", "orders.dlq"]
    assert [(e["from"], e["to"]) for e in rendered["edges"]] == [
        ("shop", "orders"),
        ("orders", "billing"),
        ("billing", "orders.dlq"),
    ]
    assert rendered["edges"][1] == {
        "from": "orders",
        "to": "billing",
        "service": "billing",
        "topic": "orders",
        "direction": "consumes",
        "group": "billing",
        "spans": 2,
        "messages_per_second": 0.2,
        "p95_seconds": 0.006,
        "error_ratio": 0.5,
        "dead_letter": False,
        "figures_from": "spans",
    }
    assert rendered["edges"][2]["dead_letter"] is True


def test_mermaid_rendering_of_a_known_graph():
    billing, shop = "svc_billing_04209e9f", "svc_shop_c8f69bf8"
    orders, dlq = "topic_orders_733649f3", "topic_orders_dlq_ffd2cb55"
    assert render_mermaid(small()) == "\n".join(
        [
            "flowchart LR",
            f'    {billing}("billing")',
            f'    {shop}("shop")',
            f'    {orders}[("orders")]',
            f'    {dlq}[("orders.dlq")]',
            f'    {shop} -->|"0.20/s · p95 2.0 ms"| {orders}',
            f'    {orders} -->|"0.20/s · p95 6.0 ms · 50% errors"| {billing}',
            f'    {billing} -.->|"0.10/s · p95 1.0 ms · dead letters"| {dlq}',
        ]
    )


# ---------------------------------------------------------------- what a trace carries


def hostile() -> Topology:
    return topology_from_jaeger(
        [
            trace(
                span("shop\x1b]0;pwned\x07", "producer", "orders\x1b[2J" + "o" * 5000),
                span("b" * 5000, "consumer", "orders\x1b[2J" + "o" * 5000, group="g\u202e" * 99),
            )
        ],
        window_seconds=10,
    )


def test_terminal_rendering_escapes_and_cuts_names():
    text = render_text(hostile())
    assert unsafe_characters(text.encode()) == []
    assert re.search(r"^shop\\x1b\]0;pwned\\x07 +─▶ \[orders\\x1b\[2Jooo", text, re.M)
    assert max(width(line) for line in text.splitlines()) <= TEXT_LINE_COLUMNS


def test_mermaid_rendering_escapes_and_cuts_names():
    text = render_mermaid(hostile())
    assert unsafe_characters(text.encode()) == []
    assert '("shop\\x1b]0;pwned\\x07")' in text
    assert max(len(line) for line in text.splitlines()) <= 300


def test_mermaid_labels_cannot_end_their_quotes_or_open_markup():
    topology = topology_from_jaeger([trace(span('a"b<i>#', "producer", "t"))], window_seconds=10)
    assert '("a#quot;b#lt;i#gt;#35;")' in render_mermaid(topology)


def test_mermaid_ids_of_names_alike_after_cleaning_are_distinct():
    topology = topology_from_jaeger(
        [trace(span("abcd-1", "producer", "t"), span("abcd_1", "producer", "t"))],
        window_seconds=10,
    )
    ids = {line.split("(")[0].strip() for line in render_mermaid(topology).splitlines()[1:3]}
    assert len(ids) == 2


def test_fields_of_the_wrong_type_are_skipped_not_raised():
    good = span("shop", "producer", "orders")
    weird = [
        {**span("shop", "producer", "orders"), "tags": "x"},
        {**span("shop", "producer", "orders"), "references": [1, None]},
        {**span("shop", "producer", "orders"), "duration": "long", "processID": [1]},
        {**span("shop", "consumer", "orders", batch=1), "tags": [{"key": 1}, "x"]},
        {
            **span("x", "consumer", "orders"),
            "tags": [
                tag("span.kind", "consumer"),
                tag("messaging.destination.name", "orders"),
                tag("messaging.operation.type", "process"),
                tag("messaging.batch.message_count", "1e400"),
            ],
        },
    ]
    answer = {**trace(good), "spans": [good, *weird]}
    topology = topology_from_jaeger(
        [answer, {"spans": "x"}, {"processes": []}, "not a trace"],  # type: ignore[list-item]
        window_seconds=10,
    )
    # The span without tags is not an edge; one with an unusable duration counts (0 s) for a
    # service it cannot name; a batch of an unusable count has no messages.
    assert {(e.service, e.direction, e.spans) for e in topology.edges} == {
        ("shop", SENDS, 2),
        ("?", SENDS, 1),
        ("?", CONSUMES, 0),
    }
    json.dumps(topology.to_json(), allow_nan=False)
