"""The demo: the whole stack, four services, and one message followed across them.

``python -m examples.pipeline`` (or ``bash scripts/demo.sh``) starts Kafka, Jaeger v2, the
OpenTelemetry Collector and Prometheus on free 127.0.0.1 ports, runs the pipeline for a few
seconds, then prints one declined order's trace as Jaeger stores it, the messaging metrics
as Prometheus scraped them from the Collector, each consumer's time lag, the end-to-end latency
per stage, and the slowest exemplar's trace (an order held for review on purpose). Everything
is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import functools
import operator
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from devstack._process import ServerError
from devstack.stack import Stack

from examples.pipeline.launcher import Pipeline, placed_orders
from examples.pipeline.readback import (
    flows,
    render_flows,
    render_stages,
    render_time_lags,
    slowest_exemplar,
    stages,
    time_lags,
    trace_rows,
    trace_tree,
)
from examples.pipeline.service import REVIEW_SECONDS, declined, held_for_review
from kafkascope import build_topology, describe_exemplar, render_topology

SPANS_OF_A_DECLINED_ORDER = 10
"""place order, send; process, lookup customer, send; process, authorize payment, send to the
DLQ (billing); process enriched, process dead letter (audit)."""


def main(argv: list[str] | None = None) -> int:
    """Run the demo; the exit code is 0 when every order came through and was traced."""
    parser = argparse.ArgumentParser(prog="python -m examples.pipeline", description=__doc__)
    parser.add_argument("--seconds", type=float, default=12.0, help="how long orders flow")
    parser.add_argument("--rate", type=float, default=25.0, help="orders per second")
    parser.add_argument("--workdir", type=Path, help="keep logs here (default: a temp dir)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kafkascope-pipeline-") as tmp:
        workdir = args.workdir or Path(tmp)
        try:
            with Stack.up(workdir / "stack") as stack:
                code = run(stack, workdir / "pipeline", seconds=args.seconds, rate=args.rate)
        except ServerError as exc:
            print(f"demo: {exc}", file=sys.stderr)
            return 1
    print(f"\ndone in {time.monotonic() - started:.0f}s; every process stopped by its PID.")
    return code


def run(stack: Stack, workdir: Path, *, seconds: float, rate: float) -> int:
    """Run the pipeline on ``stack`` and print what the telemetry backends hold."""
    ends = stack.endpoints
    began = time.time()
    pipeline = Pipeline(ends, workdir)
    with pipeline:
        pipeline.start()
        pids = ", ".join(f"{n} {p.pid}" for n, p in pipeline.processes.items())
        print(f"\nservices up (pids: {pids}; audit runs under opentelemetry-instrument)")
        orders = pipeline.start_orders(rate=rate)
        print(f"orders flowing at {rate:.0f}/s for {seconds:.0f}s ...")
        time.sleep(seconds)
        # Rates over the last 10 s while orders still flow (scrapes are 1 s apart).
        rows = flows(stack.prometheus, window="10s")
        lags = time_lags(stack.prometheus, window="10s")
        orders.stop()
        placed = placed_orders(orders)
        failing = sum(1 for o in placed if declined(o["n"]))
        seen = pipeline.wait_for_outcomes(
            {"enricher": len(placed), "billing": len(placed), "audit": len(placed) + failing},
            timeout=30,
        )
        print(
            f"placed {len(placed)} orders; enricher handled {seen['enricher']}, billing "
            f"{seen['billing']} ({failing} declined to the dead-letter topic), "
            f"audit {seen['audit']}"
        )
        example = next(o for o in placed if declined(o["n"]))
        trace_id = example["trace_id"]
        rows_of_trace = trace_rows(stack.jaeger, trace_id, min_spans=SPANS_OF_A_DECLINED_ORDER)
        services = sorted({r.service for r in rows_of_trace})
        print(f"\none message: order {example['order_id']} (declined, so it visits every service)")
        print(f"trace id:    {trace_id}")
        print(f"Jaeger:      {ends.jaeger_url}/api/traces/{trace_id}")
        print(f"             ({ends.jaeger_url}/trace/{trace_id} in a Jaeger with its UI)")
        print(f"\n{len(rows_of_trace)} spans from {len(services)} services, as Jaeger has them:\n")
        print(trace_tree(rows_of_trace))
        print(
            "\n(links N): OpenTelemetry links. Each process span links to the send it continues "
            "(billing's also to its batch span,\nwhich has a trace of its own); the DLQ send "
            "links to the failed process span. '!' and ERROR: a failed span."
        )
        print(f"\nPrometheus ({ends.prometheus_url}), scraping the Collector; last 10 s:\n")
        print(render_flows(rows))
        print("\neach consumer's time lag (age of its oldest unprocessed message), while flowing:")
        print(render_time_lags(lags))
        totals = _totals(stack, len(placed), failing)
        print(f"\ntotals, per Prometheus once the last export was scraped: {totals}")
        logs = sorted(
            (r for r in _log_records(stack) if r.get("traceId") == trace_id),
            key=lambda r: int(r.get("timeUnixNano") or 0),
        )
        print(f"log records of this trace in {ends.collector_logs.name}: {len(logs)}")
        for record in logs:
            body = record.get("body", {}).get("stringValue", "")
            print(f"  {record.get('severityText', ''):<7} {body}")
        window = time.time() - began
        topology = build_topology(
            ends.jaeger_url,
            since=window,
            limit=5000,
            timeout=10,
            prometheus_url=ends.prometheus_url,
        )
        print(f"\ntopology of the run, as `kafkascope topology --since {window:.0f}` draws it:\n")
        print(render_topology(topology))
        held = sum(1 for o in placed if held_for_review(o["n"]))
        print(
            "\nend to end latency per stage, from each chain's first send to the handler's start "
            f"({held} orders held {REVIEW_SECONDS:.0f} s for review on purpose):"
        )
        print(render_stages(stages(stack.prometheus, window=f"{seconds + 60:.0f}s")))
        _show_exemplar(stack, placed, window_s=seconds + 60)
    complete = len(services) == 4 and seen["billing"] == len(placed)
    return 0 if complete else 1


def _show_exemplar(stack: Stack, placed: list[dict[str, Any]], *, window_s: float) -> None:
    """The slowest end-to-end exemplar Prometheus holds, and its trace from Jaeger."""
    exemplar = slowest_exemplar(stack.prometheus, window_s=window_s)
    if exemplar is None:
        print("\nno exemplar in Prometheus (is exemplar storage on?)")
        return
    order = next((o for o in placed if o["trace_id"] == exemplar.trace_id), None)
    which = f"order {order['order_id']}" if order else "a message of no order placed here"
    held = " (held for review)" if order and held_for_review(order["n"]) else ""
    print(
        f"\nslowest exemplar of kafkascope.pipeline.latency: {describe_exemplar(exemplar)}\n"
        f"exemplar trace id {exemplar.trace_id}: {which}{held}; as Jaeger has it "
        f"(kafkascope slowest --prometheus {stack.endpoints.prometheus_url} "
        f"--jaeger {stack.endpoints.jaeger_url}):\n"
    )
    print(trace_tree(trace_rows(stack.jaeger, exemplar.trace_id, min_spans=1)))


def _totals(stack: Stack, placed: int, failing: int) -> str:
    """The counters' totals, once Prometheus has scraped each service's last export (≤ 15 s)."""
    expected = {
        ("orders", 'sum(messaging_client_sent_messages_total{job="orders"})'): placed,
        ("enricher", 'sum(messaging_process_duration_seconds_count{job="enricher"})'): placed,
        ("billing", 'sum(messaging_process_duration_seconds_count{job="billing"})'): placed,
        ("audit", 'sum(messaging_process_duration_seconds_count{job="audit"})'): placed + failing,
    }
    got: dict[str, float] = {}
    for (job, promql), n in expected.items():
        value = stack.prometheus.wait_for(promql, functools.partial(operator.eq, n), timeout=15)
        got[job] = value or 0.0
    failed = stack.prometheus.scalar(
        'sum(messaging_process_duration_seconds_count{job="billing",error_type!=""})'
    )
    return (
        f"orders sent {got['orders']:.0f}, enricher processed {got['enricher']:.0f}, "
        f"billing processed {got['billing']:.0f} ({failed or 0:.0f} failed), "
        f"audit processed {got['audit']:.0f}"
    )


def _log_records(stack: Stack) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    records = stack.collector.log_records()
    while not records and time.monotonic() < deadline:
        time.sleep(0.5)
        records = stack.collector.log_records()
    return records


if __name__ == "__main__":
    sys.exit(main())
