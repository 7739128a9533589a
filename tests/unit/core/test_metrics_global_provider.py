"""Counters recorded before a global MeterProvider exists keep counting after it is set."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from kafkascope import traced_handler
    from kafkascope.testing import make_record

    @traced_handler
    def handle(record):
        return None

    handle(make_record("orders"))  # before any provider: the API's proxy
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    for _ in range(3):
        handle(make_record("orders"))
    data = reader.get_metrics_data()
    counts = {
        m.name: sum(p.value if hasattr(p, "value") else p.count for p in m.data.data_points)
        for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }
    print(counts["messaging.client.consumed.messages"], counts["messaging.process.duration"])
    """
)


def test_counts_after_the_global_provider_is_set_are_all_reported():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    # The consumed counter is tallied in process, so it also keeps the message handled before
    # the provider existed; the histogram's proxy had nowhere to record that one.
    assert done.stdout.split() == ["4", "3"]
