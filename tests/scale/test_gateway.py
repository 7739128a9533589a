"""The agent -> gateway Collector tier (collector/gateway/) on one machine: two agents, two
gateways with tail sampling, Jaeger.

Two services, each sending to its own agent (as if on two hosts): ``orders`` publishes and
``billing`` handles every message with ``@traced_handler``, so every trace has a span from each
agent. The agents must route both spans of a trace to the same gateway, or the gateway holding
only the producer span would not see the error or the latency and would drop it.

Sampling share: the gateways keep SAMPLING_PERCENTAGE % of the normal traces by a hash of the
trace ID, so of NORMAL random trace IDs the kept count is binomial(NORMAL, p). The test accepts
the kept share within TOLERANCE of p: 4 standard deviations of the share (sqrt(p(1-p)/n) = 1.63
percentage points for n=600, p=0.2), so a correct tier fails this check about once in 16,000
runs.
"""

from __future__ import annotations

import contextlib
import math
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from devstack.gateway import GatewayTier, metric_sum
from devstack.jaeger import Jaeger
from devstack.wait import wait_until
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from kafkascope import inject_headers, traced_handler
from kafkascope.testing import make_record

pytestmark = pytest.mark.scale

SAMPLING_PERCENTAGE = 20.0
LATENCY_THRESHOLD_MS = 300
NORMAL = 600
ERRORS = 20
SLOW = 5
P = SAMPLING_PERCENTAGE / 100
TOLERANCE = 4 * math.sqrt(P * (1 - P) / NORMAL)
TRACES = NORMAL + ERRORS + SLOW
DECISION_WAIT_S = 2


@pytest.fixture
def tier(tmp_path: Path, jaeger: Jaeger, collector_exe: Path) -> Iterator[GatewayTier]:
    with GatewayTier.start(
        tmp_path / "tier",
        jaeger_otlp_endpoint=jaeger.otlp_grpc_endpoint,
        agents=2,
        sampling_percentage=SAMPLING_PERCENTAGE,
        latency_threshold_ms=LATENCY_THRESHOLD_MS,
        decision_wait=f"{DECISION_WAIT_S}s",
        binary=collector_exe,
    ) as running:
        try:
            yield running
        finally:
            print(running.log_tails())


class PaymentDeclinedError(Exception):
    pass


def _providers(service: str, endpoint: str) -> tuple[TracerProvider, MeterProvider]:
    resource = Resource.create({"service.name": service})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(endpoint=endpoint, insecure=True), max_export_batch_size=256
        )
    )
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=endpoint, insecure=True), export_interval_millis=60_000
    )
    return tracer_provider, MeterProvider(resource=resource, metric_readers=[reader])


@pytest.fixture
def services(tier: GatewayTier) -> Iterator[dict[str, tuple[TracerProvider, MeterProvider]]]:
    """``orders`` sends to the first agent, ``billing`` to the second; shut down before the tier."""
    run = uuid.uuid4().hex[:6]
    made = {
        "orders": _providers(f"gw-orders-{run}", tier.agents[0].otlp_grpc_endpoint),
        "billing": _providers(f"gw-billing-{run}", tier.agents[1].otlp_grpc_endpoint),
    }
    yield made
    for tracer_provider, meter_provider in made.values():
        tracer_provider.shutdown()
        meter_provider.shutdown()


def _service(provider: TracerProvider) -> str:
    return str(provider.resource.attributes["service.name"])


def _spans_in_jaeger(jaeger: Jaeger, trace_id: str) -> int:
    try:
        return len(jaeger.get_trace(trace_id).get("spans") or [])
    except LookupError:
        return 0


def test_gateways_keep_every_error_and_slow_trace_whole_and_the_set_share_of_the_rest(
    tier: GatewayTier, jaeger: Jaeger, services: dict[str, tuple[TracerProvider, MeterProvider]]
) -> None:
    orders_tp, _ = services["orders"]
    billing_tp, billing_mp = services["billing"]
    topic = f"gw{uuid.uuid4().hex[:6]}.orders"
    tracer = orders_tp.get_tracer("gw-orders")

    @traced_handler(group="billing", tracer_provider=billing_tp, meter_provider=billing_mp)
    def bill(record) -> None:
        kind = record.value
        if kind == b"error":
            raise PaymentDeclinedError("card declined")
        if kind == b"slow":
            time.sleep(LATENCY_THRESHOLD_MS / 1000 + 0.15)

    kinds = [b"error"] * ERRORS + [b"slow"] * SLOW + [b"normal"] * NORMAL
    trace_ids: dict[bytes, list[str]] = {b"error": [], b"slow": [], b"normal": []}
    for offset, kind in enumerate(kinds):
        with tracer.start_as_current_span(f"{topic} publish", kind=trace.SpanKind.PRODUCER) as span:
            headers = inject_headers()
            trace_ids[kind].append(format(span.get_span_context().trace_id, "032x"))
        record = make_record(topic, kind, offset=offset, headers=headers)
        with contextlib.suppress(PaymentDeclinedError):
            bill(record)
    for provider in (orders_tp, billing_tp):
        provider.force_flush()
    billing_mp.force_flush()

    # Every trace reached exactly one gateway: with a trace split between them, both would
    # count it as a new trace ID.
    def new_trace_ids() -> float:
        return sum(
            metric_sum(g.scrape(), "otelcol_processor_tail_sampling_new_trace_id_received")
            for g in tier.gateways
        )

    wait_until(
        lambda: new_trace_ids() >= TRACES,
        60,
        f"the gateways to receive {TRACES} trace IDs",
        interval=0.5,
    )
    per_gateway = [
        metric_sum(g.scrape(), "otelcol_processor_tail_sampling_new_trace_id_received")
        for g in tier.gateways
    ]
    assert sum(per_gateway) == TRACES, per_gateway
    assert all(count > 0 for count in per_gateway), f"one gateway got no trace: {per_gateway}"

    # A trace ID is counted with its first span; its second may still be in an agent's batch.
    def accepted() -> float:
        return sum(metric_sum(g.scrape(), "otelcol_receiver_accepted_spans") for g in tier.gateways)

    wait_until(
        lambda: accepted() >= 2 * TRACES,
        60,
        f"the gateways to accept {2 * TRACES} spans",
        interval=0.5,
    )
    assert accepted() == 2 * TRACES

    # Every decision taken: sampled=true plus sampled=false add up to every trace.
    def decided() -> float:
        return sum(
            metric_sum(g.scrape(), "otelcol_processor_tail_sampling_global_count_traces_sampled")
            for g in tier.gateways
        )

    wait_until(
        lambda: decided() >= TRACES, 60, f"the gateways to decide on {TRACES} traces", interval=0.5
    )

    for kind in (b"error", b"slow"):
        for trace_id in trace_ids[kind]:
            found = jaeger.wait_for_trace(trace_id, min_spans=2, timeout=30)
            names = {p["serviceName"] for p in found["processes"].values()}
            assert len(found["spans"]) == 2, (kind, trace_id, found["spans"])
            assert names == {_service(orders_tp), _service(billing_tp)}

    # The decisions are in; give the gateways' batch processors and Jaeger a moment to store.
    time.sleep(2)
    counts = [_spans_in_jaeger(jaeger, trace_id) for trace_id in trace_ids[b"normal"]]
    kept = sum(1 for count in counts if count)
    assert all(count in (0, 2) for count in counts), "a normal trace arrived in part"
    share = kept / NORMAL
    print(
        f"[gateway] kept {kept} of {NORMAL} normal traces = {share:.1%} "
        f"(setting {P:.0%}, accepted {P - TOLERANCE:.1%}..{P + TOLERANCE:.1%}); "
        f"trace IDs per gateway {per_gateway}"
    )
    assert abs(share - P) <= TOLERANCE

    # Metrics are not sampled: billing's agent counts every handled message, errors apart.
    text = tier.agents[1].scrape(tier.agents[1].prometheus_metrics_url)
    handled = metric_sum(
        text, "messaging_process_duration_seconds_count", messaging_destination_name=topic
    )
    failed = metric_sum(
        text,
        "messaging_process_duration_seconds_count",
        messaging_destination_name=topic,
        error_type=f"{__name__}.PaymentDeclinedError",
    )
    assert handled == TRACES, text
    assert failed == ERRORS, text
