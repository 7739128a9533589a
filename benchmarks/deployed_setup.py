"""The deployed-cost benchmark's children share these: each variant's telemetry set-up and final
flush (:class:`Setup`), the clock of a timed part (:class:`Clock`), and the count of spans the
Collector accepted (:func:`accepted_spans`)."""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Callable
from typing import Any

_ACCEPTED = re.compile(r"^otelcol_receiver_accepted_spans(?:_total)?\{[^}]*\}\s+(\S+)$", re.M)


def accepted_spans(metrics_url: str) -> int:
    """Spans the Collector's receivers accepted so far (its own Prometheus metrics)."""
    with urllib.request.urlopen(metrics_url, timeout=10) as answer:
        text = answer.read().decode()
    return int(sum(float(value) for value in _ACCEPTED.findall(text)))


class Setup:
    """The telemetry of one variant: what wraps the handler or producer, and the final flush."""

    def __init__(
        self, variant: str, endpoint: str, service: str, client: str = "kafka-python"
    ) -> None:
        self.variant = variant
        self.flushers: list[Callable[[], Any]] = []
        self.count_hook: Callable[[float], None] | None = None
        self.telemetry: Any = None
        self.contrib_tracer_provider: Any = None
        if variant.startswith("contrib"):
            self._contrib(endpoint, metrics=variant == "contrib+metrics", client=client)
        elif variant != "bare":
            from kafkascope import configure

            self.telemetry = configure(
                service, endpoint=endpoint, protocol="grpc", metrics=variant != "tracing only"
            )
            self.flushers.append(self.telemetry.force_flush)

    def _contrib(self, endpoint: str, *, metrics: bool, client: str) -> None:
        """What a contrib user writes: the SDK's providers at their defaults, OTLP gRPC, and
        the client's instrumentation (confluent-kafka's wraps each producer explicitly:
        ``ConfluentKafkaInstrumentor.instrument_producer`` with ``contrib_tracer_provider``)."""
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        resource = Resource.create({"service.name": "bench-contrib"})
        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True))
        )
        self.contrib_tracer_provider = tracer_provider
        if client == "kafka-python":
            from opentelemetry.instrumentation.kafka import KafkaInstrumentor

            KafkaInstrumentor().instrument(tracer_provider=tracer_provider)
        elif client == "aiokafka":
            from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor

            AIOKafkaInstrumentor().instrument(tracer_provider=tracer_provider)
        self.flushers.append(tracer_provider.force_flush)
        if not metrics:
            return
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=endpoint, insecure=True))
        meter = MeterProvider(resource=resource, metric_readers=[reader]).get_meter("bench")
        counter = meter.create_counter("messages", unit="{message}")
        histogram = meter.create_histogram("duration", unit="s")
        attrs = {"messaging.destination.name": "bench", "messaging.consumer.group.name": "g"}

        def count(seconds: float) -> None:
            counter.add(1, attrs)
            histogram.record(seconds, attrs)

        self.count_hook = count
        self.flushers.append(reader.force_flush)

    def flush(self) -> None:
        """The telemetry's final flush (inside the timed part)."""
        for flush in self.flushers:
            flush()


class Clock:
    """Wall and process CPU from :meth:`start` to :meth:`stop`."""

    def start(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self, messages: int, spans: int, made: int) -> dict[str, float]:
        wall = time.perf_counter() - self.wall
        cpu = time.process_time() - self.cpu
        return {
            "msg_s": messages / wall,
            "cpu_us": cpu / messages * 1e6,
            "spans": spans,
            "made": made,
        }
