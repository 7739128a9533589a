"""The pipeline on the real stack: services -> OpenTelemetry Collector -> Jaeger, Prometheus and
a log file, asserted through Jaeger's and Prometheus's HTTP APIs and the Collector's file."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from devstack.stack import Stack
from devstack.wait import wait_until
from examples.pipeline.launcher import Pipeline
from examples.pipeline.service import REVIEW_SECONDS, Topics, declined, held_for_review

from kafkascope import Exemplar, SpanRow, fetch_exemplars, rows_from_jaeger, slowest_exemplar
from tests.e2e.conftest import running_pipeline

pytestmark = pytest.mark.e2e

SERVICES = {"orders", "enricher", "billing", "audit"}
DECLINED_ORDER_SPANS = 10  # orders 2, enricher 3, billing 3, audit 2


@dataclass(frozen=True)
class Followed:
    """One declined order sent through the pipeline, and its trace as Jaeger returned it."""

    topics: Topics
    order: dict[str, Any]
    trace: dict[str, Any]
    rows: list[SpanRow]

    def span(self, service: str, name: str) -> SpanRow:
        found = [r for r in self.rows if r.service == service and r.name == name]
        assert len(found) == 1, f"{service}: {name!r} x{len(found)} in {self.names()}"
        return found[0]

    def names(self) -> list[tuple[str, str]]:
        return sorted((r.service, r.name) for r in self.rows)

    def tags(self, row: SpanRow) -> dict[str, Any]:
        raw = next(s for s in self.trace["spans"] if s["spanID"] == row.span_id)
        return {tag["key"]: tag["value"] for tag in raw.get("tags", [])}


@pytest.fixture(scope="module")
def followed(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Followed:
    """Order 5 (declined by billing) sent through the whole pipeline, which is then stopped."""
    with running_pipeline(stack, tmp_path_factory.mktemp("followed")) as pipeline:
        [order] = pipeline.place_orders(1, first=5)
        assert declined(order["n"])
        seen = pipeline.wait_for_outcomes({"enricher": 1, "billing": 1, "audit": 2}, timeout=30)
        assert seen == {"enricher": 1, "billing": 1, "audit": 2}, pipeline.log_tails()
        trace = stack.jaeger.wait_for_trace(
            order["trace_id"], min_spans=DECLINED_ORDER_SPANS, timeout=30
        )
        topics = pipeline.topics
    return Followed(topics, order, trace, rows_from_jaeger(trace))


def test_one_message_is_one_trace_across_all_services(followed: Followed):
    assert {row.service for row in followed.rows} == SERVICES
    assert len(followed.rows) == DECLINED_ORDER_SPANS, followed.names()
    trace_ids = {int(span["traceID"], 16) for span in followed.trace["spans"]}
    assert trace_ids == {int(followed.order["trace_id"], 16)}


def test_spans_nest_send_process_send_process(followed: Followed):
    t = followed.topics
    place = followed.span("orders", "place order")
    send_order = followed.span("orders", f"send {t.orders}")
    enrich = followed.span("enricher", f"process {t.orders}")
    lookup = followed.span("enricher", "lookup customer")
    send_enriched = followed.span("enricher", f"send {t.enriched}")
    charge = followed.span("billing", f"process {t.enriched}")
    audit = followed.span("audit", f"process {t.enriched}")

    assert place.parent_id is None
    assert send_order.parent_id == place.span_id
    assert enrich.parent_id == send_order.span_id
    assert lookup.parent_id == enrich.span_id
    assert send_enriched.parent_id == enrich.span_id
    assert charge.parent_id == send_enriched.span_id
    assert audit.parent_id == send_enriched.span_id  # the unmodified service, zero-code
    for row in (send_order, send_enriched):
        assert followed.tags(row)["span.kind"] == "producer"
    for row in (enrich, charge, audit):
        assert followed.tags(row)["span.kind"] == "consumer"
        assert followed.tags(row)["messaging.system"] == "kafka"
    prefix = followed.topics.orders.removesuffix("orders")
    assert followed.tags(charge)["messaging.consumer.group.name"] == f"{prefix}billing"
    assert followed.tags(audit)["messaging.consumer.group.name"] == f"{prefix}audit"


def test_dead_letter_send_links_to_the_failed_process_span(followed: Followed):
    t = followed.topics
    charge = followed.span("billing", f"process {t.enriched}")
    dead_letter = followed.span("billing", f"send {t.dead_letter}")
    audited = followed.span("audit", f"process {t.dead_letter}")

    assert charge.error
    assert followed.tags(charge)["error.type"] == "examples.pipeline.service.PaymentDeclinedError"
    assert charge.span_id in dead_letter.links
    assert followed.tags(dead_letter)["span.kind"] == "producer"
    assert audited.parent_id == dead_letter.span_id


def test_billing_batch_span_links_to_the_message(stack: Stack, followed: Followed):
    charge = followed.span("billing", f"process {followed.topics.enriched}")
    raw = next(s for s in followed.trace["spans"] if s["spanID"] == charge.span_id)
    elsewhere = [
        ref
        for ref in raw["references"]
        if int(ref["traceID"], 16) != int(followed.order["trace_id"], 16)
    ]
    assert len(elsewhere) == 1, raw["references"]  # the batch span, in a trace of its own
    batch_trace = rows_from_jaeger(
        stack.jaeger.wait_for_trace(elsewhere[0]["traceID"].rjust(32, "0"), timeout=15)
    )
    [batch] = [r for r in batch_trace if r.span_id == elsewhere[0]["spanID"]]
    assert batch.service == "billing"
    assert batch.name == f"process {followed.topics.enriched}"
    send_enriched = followed.span("enricher", f"send {followed.topics.enriched}")
    assert send_enriched.span_id in batch.links


def _attributes(record: dict[str, Any]) -> dict[str, Any]:
    found = {}
    for attribute in record.get("attributes", []):
        value = attribute.get("value", {})
        found[attribute["key"]] = next(iter(value.values()), None) if value else None
    return found


def _service(record: dict[str, Any]) -> str | None:
    for attribute in record["resource"].get("attributes", []):
        if attribute["key"] == "service.name":
            return str(attribute["value"].get("stringValue"))
    return None


def test_correlated_logs_reach_the_collector_with_the_trace_id(stack: Stack, followed: Followed):
    trace_id = followed.order["trace_id"]

    def every_services_records() -> list[dict[str, Any]] | None:
        records = [r for r in stack.collector.log_records() if r.get("traceId") == trace_id]
        return records if {_service(r) for r in records} == SERVICES else None

    records = wait_until(
        every_services_records, 20, f"log records of {sorted(SERVICES)} in the Collector"
    )
    charge = followed.span("billing", f"process {followed.topics.enriched}")
    [declined_line] = [r for r in records if "declined order" in r["body"]["stringValue"]]
    assert declined_line["spanId"] == charge.span_id
    assert declined_line["severityText"] in ("WARN", "WARNING")
    attributes = _attributes(declined_line)
    assert attributes["messaging.destination.name"] == followed.topics.enriched
    prefix = followed.topics.orders.removesuffix("orders")
    assert attributes["messaging.consumer.group.name"] == f"{prefix}billing"
    [audited] = [r for r in records if "audited dead letter" in r["body"]["stringValue"]]
    assert _attributes(audited)["messaging.destination.name"] == followed.topics.dead_letter


def _wait_for_value(
    stack: Stack, promql: str, expected: float, timeout: float = 20
) -> float | None:
    return stack.prometheus.wait_for(promql, lambda value: value == expected, timeout=timeout)


def test_prometheus_counts_every_message(stack: Stack, pipeline_factory: Callable[[], Pipeline]):
    pipeline = pipeline_factory()
    t = pipeline.topics
    placed = pipeline.place_orders(10, first=1)
    failures = sum(1 for order in placed if declined(order["n"]))
    assert (len(placed), failures) == (10, 2)
    seen = pipeline.wait_for_outcomes({"enricher": 10, "billing": 10, "audit": 12}, timeout=30)
    assert seen == {"enricher": 10, "billing": 10, "audit": 12}, pipeline.log_tails()

    def count(metric: str, job: str, topic: str, extra: str = "") -> str:
        return f'sum({metric}{{job="{job}",messaging_destination_name="{topic}"{extra}}})'

    sent, consumed = (
        "messaging_client_sent_messages_total",
        "messaging_client_consumed_messages_total",
    )
    processed = "messaging_process_duration_seconds_count"
    expectations = [
        (count(sent, "orders", t.orders), 10),
        (count(consumed, "enricher", t.orders), 10),
        (count(processed, "enricher", t.orders), 10),
        (count(sent, "enricher", t.enriched), 10),
        (count(consumed, "billing", t.enriched), 10),
        (count(processed, "billing", t.enriched), 10),
        (count(processed, "billing", t.enriched, ',error_type!=""'), failures),
        (count(consumed, "audit", t.enriched), 10),
        (count(processed, "audit", t.enriched), 10),
        (count(consumed, "audit", t.dead_letter), failures),
        (
            count("messaging_process_duration_seconds_bucket", "billing", t.enriched, ',le="+Inf"'),
            10,
        ),
    ]
    got = {promql: _wait_for_value(stack, promql, expected) for promql, expected in expectations}
    assert got == dict(expectations)
    lag = f'sum(kafkascope_consumer_lag{{job="billing",messaging_destination_name="{t.enriched}"}})'
    assert _wait_for_value(stack, lag, 0) == 0


def test_collector_outage_changes_no_results_and_telemetry_resumes(
    stack: Stack, pipeline_factory: Callable[[], Pipeline]
):
    pipeline = pipeline_factory()
    orders = pipeline.start_orders(rate=15, count=60, first=1)
    time.sleep(1.5)
    stack.stop_collector()
    try:
        during = len(pipeline.outcomes("billing"))
        time.sleep(3)
        after = len(pipeline.outcomes("billing"))
    finally:
        stack.start_collector()
    assert after > during, "billing stalled while the Collector was down"
    orders.proc.wait(timeout=30)
    seen = pipeline.wait_for_outcomes({"enricher": 60, "billing": 60, "audit": 72}, timeout=30)
    assert seen == {"enricher": 60, "billing": 60, "audit": 72}
    statuses = [o["status"] for o in pipeline.outcomes("billing")]
    assert (statuses.count("charged"), statuses.count("dead-lettered")) == (48, 12)
    assert len({o["order_id"] for o in pipeline.outcomes("billing")}) == 60

    [order] = pipeline.place_orders(1, first=1000)  # declined: every service again
    trace = stack.jaeger.wait_for_trace(
        order["trace_id"], min_spans=DECLINED_ORDER_SPANS, timeout=30
    )
    assert {row.service for row in rows_from_jaeger(trace)} == SERVICES


def test_the_slowest_exemplar_leads_to_the_trace_of_an_order_slow_on_purpose(
    stack: Stack, pipeline_factory: Callable[[], Pipeline]
):
    """Prometheus's exemplar of the slowest end-to-end latency bucket is the trace id of an order
    the enricher held for review, and Jaeger has that trace, showing the wait."""
    pipeline = pipeline_factory()
    started = time.time()
    placed = pipeline.place_orders(60, first=1)
    held = {o["trace_id"]: o for o in placed if held_for_review(o["n"])}
    assert sorted(o["n"] for o in held.values()) == [7, 57]
    failures = sum(1 for o in placed if declined(o["n"]))
    pipeline.wait_for_outcomes({"enricher": 60, "billing": 60, "audit": 60 + failures}, timeout=60)
    promql = (
        "kafkascope_pipeline_latency_seconds_bucket"
        f'{{job="billing",messaging_destination_name="{pipeline.topics.enriched}"}}'
    )

    found: list[Exemplar] = []

    def slow_exemplar() -> Exemplar | None:
        found[:] = fetch_exemplars(
            stack.prometheus.url, promql, start=started - 5, end=time.time(), timeout=10
        )
        chosen = slowest_exemplar(found)
        return chosen if chosen is not None and chosen.value >= REVIEW_SECONDS else None

    chosen = wait_until(
        slow_exemplar, 30, "an exemplar of billing's end-to-end latency in Prometheus", interval=1
    )
    assert chosen.trace_id in held, (chosen, sorted(held))
    assert REVIEW_SECONDS <= chosen.value < REVIEW_SECONDS + 5
    assert chosen.series["kafkascope_pipeline_origin"] == pipeline.topics.orders
    # The fast orders' exemplars sit in lower buckets.
    assert all(e.value < 1.0 for e in found if e.trace_id not in held)

    trace = stack.jaeger.wait_for_trace(chosen.trace_id, min_spans=8, timeout=30)
    rows = {(r.service, r.name): r for r in rows_from_jaeger(trace)}
    enrich = rows[("enricher", f"process {pipeline.topics.orders}")]
    forward = rows[("enricher", f"send {pipeline.topics.enriched}")]
    billing = rows[("billing", f"process {pipeline.topics.enriched}")]
    assert (forward.start_ns - enrich.start_ns) / 1e9 >= REVIEW_SECONDS  # held, on purpose
    raw = next(s for s in trace["spans"] if s["spanID"] == billing.span_id)
    tags = {tag["key"]: tag["value"] for tag in raw.get("tags", [])}
    assert tags["kafkascope.pipeline.latency"] == pytest.approx(chosen.value, abs=0.01)
