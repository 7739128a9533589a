"""Read the pipeline's telemetry back from the stack: a trace from Jaeger's HTTP API, the
messaging metrics from Prometheus's HTTP API."""

from __future__ import annotations

from dataclasses import dataclass

from devstack.jaeger import Jaeger
from devstack.prometheus import Prometheus

from kafkascope import SpanRow, render_waterfall, rows_from_jaeger

BY = "job, messaging_destination_name"
FIRST_BUCKET = 0.005
"""The lowest bucket boundary of ``messaging.process.duration`` (the conventions' advice)."""


def trace_rows(
    jaeger: Jaeger, trace_id: str, *, min_spans: int, timeout: float = 30.0
) -> list[SpanRow]:
    """The trace's spans as waterfall rows, once Jaeger has at least ``min_spans`` of them."""
    return rows_from_jaeger(jaeger.wait_for_trace(trace_id, min_spans=min_spans, timeout=timeout))


def trace_tree(rows: list[SpanRow]) -> str:
    """The trace as an indented tree: service, span name, duration."""
    return render_waterfall(rows)


@dataclass(frozen=True)
class Flow:
    """What Prometheus says about one service on one topic."""

    service: str
    topic: str
    role: str
    per_second: float
    error_ratio: float | None = None
    p95_seconds: float | None = None
    max_lag: float | None = None


def _by_series(prometheus: Prometheus, promql: str) -> dict[tuple[str, str], float]:
    found = {}
    for series in prometheus.query(promql):
        labels = series["metric"]
        key = (labels.get("job", "?"), labels.get("messaging_destination_name", "?"))
        found[key] = float(series["value"][1])
    return found


def flows(prometheus: Prometheus, *, window: str = "10s") -> list[Flow]:
    """Throughput, error rate, p95 processing time and lag per service and topic.

    Rates and quantiles are over the last ``window``; lag is its maximum (summed over a
    topic's partitions) over the same window.
    """
    consumed = _by_series(
        prometheus, f"sum by ({BY}) (rate(messaging_client_consumed_messages_total[{window}]))"
    )
    sent = _by_series(
        prometheus, f"sum by ({BY}) (rate(messaging_client_sent_messages_total[{window}]))"
    )
    processed = _by_series(
        prometheus, f"sum by ({BY}) (rate(messaging_process_duration_seconds_count[{window}]))"
    )
    failed = _by_series(
        prometheus,
        f"sum by ({BY}) "
        f'(rate(messaging_process_duration_seconds_count{{error_type!=""}}[{window}]))',
    )
    p95 = _by_series(
        prometheus,
        "histogram_quantile(0.95, sum by (le, "
        f"{BY}) (rate(messaging_process_duration_seconds_bucket[{window}])))",
    )
    lag = _by_series(
        prometheus, f"max_over_time((sum by ({BY}) (kafkascope_consumer_lag))[{window}:1s])"
    )
    rows = [
        Flow(
            service,
            topic,
            "consumes",
            rate,
            error_ratio=failed.get((service, topic), 0.0) / processed[(service, topic)]
            if processed.get((service, topic))
            else None,
            p95_seconds=p95.get((service, topic)),
            max_lag=lag.get((service, topic)),
        )
        for (service, topic), rate in consumed.items()
    ]
    rows += [Flow(service, topic, "sends", rate) for (service, topic), rate in sent.items()]
    order = {"orders": 0, "enricher": 1, "billing": 2, "audit": 3}
    return sorted(rows, key=lambda f: (order.get(f.service, 9), f.role != "sends", f.topic))


def render_flows(rows: list[Flow]) -> str:
    """The flows as a table."""

    def cell(value: float | None, fmt: str) -> str:
        return format(value, fmt) if value is not None else "-"

    lines = [
        f"{'service':<9} {'':<8} {'topic':<24} {'msg/s':>7} {'errors':>7} {'p95':>9} {'max lag':>8}"
    ]
    for row in rows:
        if row.p95_seconds is None:
            p95 = "-"
        elif row.p95_seconds <= FIRST_BUCKET:  # interpolated inside the lowest bucket
            p95 = f"< {FIRST_BUCKET * 1000:.0f} ms"
        else:
            p95 = f"{row.p95_seconds * 1000:.1f} ms"
        errors = f"{row.error_ratio:.0%}" if row.error_ratio is not None else "-"
        lines.append(
            f"{row.service:<9} {row.role:<8} {row.topic:<24} {row.per_second:>7.1f} "
            f"{errors:>7} {p95:>9} {cell(row.max_lag, '.0f'):>8}"
        )
    return "\n".join(lines)
