"""kafkascope: OpenTelemetry tracing, metrics and correlated logs for Kafka services.

Consume side: :func:`traced_handler`, :func:`traced_batch_handler`, :func:`process_span` and
:func:`process_batch_span` (a :class:`ProcessSpan`); records of unknown clients through
:func:`register_record_adapter` and :class:`RecordView`. Produce side: :class:`TracedProducer`
(kafka-python), :class:`TracedConfluentProducer`, :class:`TracedAIOKafkaProducer`, and
:func:`inject_headers` / :func:`extract_context` for anything else. Failures:
:func:`dead_letter`; retries and poison messages are tracked by the handlers
(``kafkascope.messages.poison``, ``kafkascope-attempt`` headers). Rebalances:
:func:`traced_rebalance_listener` (kafka-python, aiokafka), :func:`traced_rebalance_callbacks`
(confluent-kafka). Work handed to threads keeps the message's context: :func:`hand_off`,
:class:`HandOffExecutor`. Consumer lag: :func:`observe_lag` (a :class:`LagObserver`). The
clients' own statistics: :func:`observe_client_statistics` (kafka-python),
:func:`client_statistics_config` (confluent-kafka). Set-up:
:func:`configure` (a :class:`Telemetry`; a bad setting: :class:`ConfigurationError`).
Logs: :class:`MessageLogFilter`, :class:`TextFormatter`, :class:`JsonFormatter`,
:func:`instrument_logging`, :data:`LOG_FIELD_DEFAULTS`. In a terminal: :func:`rows_from_spans`,
:func:`rows_from_jaeger`, :func:`render_waterfall` (:class:`SpanRow`). The pipeline's map
from Jaeger (and Prometheus): :func:`build_topology` (a :class:`Topology`),
:func:`render_topology`, :func:`render_topology_mermaid`. Probes: :func:`observe_health` (a
:class:`ConsumerHealth`). From a Prometheus bucket to its trace: :func:`fetch_exemplars`,
:func:`slowest_exemplar`, :func:`describe_exemplar` (:class:`Exemplar`).

Zero-code: :class:`kafkascope.instrumentor.KafkascopeInstrumentor` (for
``opentelemetry-instrument``). Tests: :mod:`kafkascope.testing` (the ``capotel`` fixture). The
``kafkascope`` command: :mod:`kafkascope.cli`.
"""

from __future__ import annotations

from kafkascope._adapters.records import RecordView, register_record_adapter
from kafkascope._clients.aiokafka import TracedAIOKafkaProducer
from kafkascope._clients.confluent import TracedConfluentProducer
from kafkascope._clients.kafka_python import TracedProducer
from kafkascope._consume.hand_off import HandOffExecutor, hand_off
from kafkascope._consume.handlers import (
    ProcessSpan,
    process_batch_span,
    process_span,
    traced_batch_handler,
    traced_handler,
)
from kafkascope._core.errors import ConfigurationError
from kafkascope._observe.client_statistics import (
    client_statistics_config,
    observe_client_statistics,
)
from kafkascope._observe.health import ConsumerHealth, observe_health
from kafkascope._observe.lag import LagObserver, observe_lag
from kafkascope._observe.rebalance_listeners import (
    traced_rebalance_callbacks,
    traced_rebalance_listener,
)
from kafkascope._produce.dead_letter import dead_letter
from kafkascope._propagation.carrier import extract_context, inject_headers
from kafkascope._reports.slowest import Exemplar, fetch_exemplars
from kafkascope._reports.slowest import describe as describe_exemplar
from kafkascope._reports.slowest import slowest as slowest_exemplar
from kafkascope._reports.topology import Topology
from kafkascope._reports.topology_build import build_topology
from kafkascope._reports.topology_render import render_mermaid as render_topology_mermaid
from kafkascope._reports.topology_render import render_text as render_topology
from kafkascope._reports.waterfall import (
    SpanRow,
    render_waterfall,
    rows_from_jaeger,
    rows_from_spans,
)
from kafkascope._setup.configure import Telemetry, configure
from kafkascope._setup.logs import (
    LOG_FIELD_DEFAULTS,
    JsonFormatter,
    MessageLogFilter,
    TextFormatter,
    instrument_logging,
)
from kafkascope._setup.otlp.exporter import DirectOTLPSpanExporter
from kafkascope._setup.otlp.processor import EncodingSpanProcessor
from kafkascope._version import __version__

__all__ = [
    "LOG_FIELD_DEFAULTS",
    "ConfigurationError",
    "ConsumerHealth",
    "DirectOTLPSpanExporter",
    "EncodingSpanProcessor",
    "Exemplar",
    "HandOffExecutor",
    "JsonFormatter",
    "LagObserver",
    "MessageLogFilter",
    "ProcessSpan",
    "RecordView",
    "SpanRow",
    "Telemetry",
    "TextFormatter",
    "Topology",
    "TracedAIOKafkaProducer",
    "TracedConfluentProducer",
    "TracedProducer",
    "__version__",
    "build_topology",
    "client_statistics_config",
    "configure",
    "dead_letter",
    "describe_exemplar",
    "extract_context",
    "fetch_exemplars",
    "hand_off",
    "inject_headers",
    "instrument_logging",
    "observe_client_statistics",
    "observe_health",
    "observe_lag",
    "process_batch_span",
    "process_span",
    "register_record_adapter",
    "render_topology",
    "render_topology_mermaid",
    "render_waterfall",
    "rows_from_jaeger",
    "rows_from_spans",
    "slowest_exemplar",
    "traced_batch_handler",
    "traced_handler",
    "traced_rebalance_callbacks",
    "traced_rebalance_listener",
]
