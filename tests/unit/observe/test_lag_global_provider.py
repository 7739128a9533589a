"""observe_lag before and after the global MeterProvider is set (needs a fresh process)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from kafkascope import observe_lag


    class Partition:
        def __init__(self, topic, offset):
            self.topic, self.partition, self.offset = topic, 0, offset


    class Consumer:  # confluent-kafka's shape
        def __init__(self, topic, position):
            self.topic, self.at = topic, position

        def assignment(self):
            return [Partition(self.topic, -1)]

        def position(self, partitions):
            return [Partition(self.topic, self.at)]

        def get_watermark_offsets(self, tp, cached=False):
            return 0, 10


    early, late = Consumer("early", 4), Consumer("late", 7)
    observe_lag(early, group="g").beat()  # before configuration: the API's proxy provider
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    observe_lag(late, group="g").beat()  # a plain confluent consumer's loop beats
    data = reader.get_metrics_data()
    print(sorted(
        (dict(p.attributes)["messaging.destination.name"], p.value)
        for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
        for p in m.data.data_points if m.name == "kafkascope.consumer.lag"
    ))
    """
)


def test_consumers_observed_before_and_after_the_provider_is_set_are_all_reported():
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[('early', 6), ('late', 3)]"
