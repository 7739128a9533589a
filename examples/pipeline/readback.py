"""Read the pipeline's telemetry back from the stack: a trace from Jaeger's HTTP API, the
messaging metrics, each consumer's time lag, the end-to-end latency per stage and the
exemplars of its buckets from Prometheus's HTTP API."""

from __future__ import annotations

import time
from dataclasses import dataclass

from devstack.jaeger import Jaeger
from devstack.prometheus import Prometheus

from kafkascope import Exemplar, SpanRow, fetch_exemplars, render_waterfall, rows_from_jaeger
from kafkascope import slowest_exemplar as slowest

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


@dataclass(frozen=True)
class TimeLag:
    """One consumer group's time lag on one topic, as Prometheus has it."""

    service: str
    group: str
    topic: str
    now_seconds: float
    max_seconds: float


def time_lags(prometheus: Prometheus, *, window: str = "10s") -> list[TimeLag]:
    """Each consumer's time lag (worst partition): now, and its maximum over ``window``."""
    by = "job, messaging_consumer_group_name, messaging_destination_name"
    gauge = f"max by ({by}) (kafkascope_consumer_time_lag_seconds)"
    worst = {
        _group_key(s["metric"]): float(s["value"][1])
        for s in prometheus.query(f"max_over_time(({gauge})[{window}:1s])")
    }
    rows = [
        TimeLag(
            *_group_key(s["metric"]), float(s["value"][1]), worst.get(_group_key(s["metric"]), 0.0)
        )
        for s in prometheus.query(gauge)
    ]
    return sorted(rows, key=lambda r: (_ORDER.get(r.service, 9), r.topic))


def _group_key(labels: dict[str, str]) -> tuple[str, str, str]:
    return (
        labels.get("job", "?"),
        labels.get("messaging_consumer_group_name", "?"),
        labels.get("messaging_destination_name", "?"),
    )


_ORDER = {"orders": 0, "enricher": 1, "billing": 2, "audit": 3}


def render_time_lags(rows: list[TimeLag]) -> str:
    """One line per consumer."""
    return "\n".join(
        f"time lag  {r.service:<9} {r.topic:<24} now {r.now_seconds:6.2f} s, "
        f"max {r.max_seconds:6.2f} s"
        for r in rows
    )


@dataclass(frozen=True)
class Stage:
    """End-to-end latency at one stage: from the chain's first send to this handler's start."""

    service: str
    topic: str
    origin: str
    messages: float
    p50_seconds: float | None
    p99_seconds: float | None
    mean_seconds: float | None


def stages(prometheus: Prometheus, *, window: str = "5m") -> list[Stage]:
    """``kafkascope.pipeline.latency`` per stage (service, topic, origin) over ``window``."""
    by = "job, messaging_destination_name, kafkascope_pipeline_origin"
    metric = "kafkascope_pipeline_latency_seconds"

    def query(promql: str) -> dict[tuple[str, str, str], float]:
        return {
            (
                s["metric"].get("job", "?"),
                s["metric"].get("messaging_destination_name", "?"),
                s["metric"].get("kafkascope_pipeline_origin", "?"),
            ): float(s["value"][1])
            for s in prometheus.query(promql)
        }

    counts = query(f"sum by ({by}) (increase({metric}_count[{window}]))")
    sums = query(f"sum by ({by}) (increase({metric}_sum[{window}]))")
    p50 = query(f"histogram_quantile(0.5, sum by (le, {by}) (rate({metric}_bucket[{window}])))")
    p99 = query(f"histogram_quantile(0.99, sum by (le, {by}) (rate({metric}_bucket[{window}])))")
    rows = [
        Stage(
            *key,
            messages=n,
            p50_seconds=p50.get(key),
            p99_seconds=p99.get(key),
            mean_seconds=sums.get(key, 0.0) / n if n else None,
        )
        for key, n in counts.items()
    ]
    return sorted(rows, key=lambda r: (_ORDER.get(r.service, 9), r.topic))


def render_stages(rows: list[Stage]) -> str:
    """One line per stage."""

    def ms(value: float | None) -> str:
        return f"{value * 1000:8.1f} ms" if value is not None else "       - ms"

    return "\n".join(
        f"end to end  {r.origin} -> {r.service:<9} ({r.topic:<24}) p50 {ms(r.p50_seconds)}, "
        f"p99 {ms(r.p99_seconds)}, mean {ms(r.mean_seconds)} over ~{r.messages:.0f} messages"
        for r in rows
    )


def slowest_exemplar(
    prometheus: Prometheus, *, metric: str = "kafkascope_pipeline_latency_seconds", window_s: float
) -> Exemplar | None:
    """The slowest exemplar of the slowest bucket of ``metric`` over the last ``window_s``."""
    end = time.time()
    return slowest(
        fetch_exemplars(
            prometheus.url, f"{metric}_bucket", start=end - window_s, end=end, timeout=10
        )
    )
