"""kafkascope: OpenTelemetry tracing, metrics and correlated logs for Kafka services.

Consume side: :func:`traced_handler`, :func:`traced_batch_handler`, :func:`process_span`,
:func:`process_batch_span`. Produce side: :class:`TracedProducer`, :func:`inject_headers`,
:func:`extract_context`. Set-up: :func:`configure`. Logs: :class:`MessageLogFilter`,
:class:`TextFormatter`, :class:`JsonFormatter`, :func:`instrument_logging`. Tests:
:mod:`kafkascope.testing` (the ``capotel`` fixture).
"""

from __future__ import annotations

from kafkascope._carrier import extract_context, inject_headers
from kafkascope._config import Telemetry, configure
from kafkascope._dead_letter import dead_letter
from kafkascope._handlers import (
    ProcessSpan,
    process_batch_span,
    process_span,
    traced_batch_handler,
    traced_handler,
)
from kafkascope._health import ConsumerHealth, observe_health
from kafkascope._lag import LagObserver, observe_lag
from kafkascope._logs import (
    LOG_FIELD_DEFAULTS,
    JsonFormatter,
    MessageLogFilter,
    TextFormatter,
    instrument_logging,
)
from kafkascope._producer import TracedProducer
from kafkascope._producer_aiokafka import TracedAIOKafkaProducer
from kafkascope._producer_confluent import TracedConfluentProducer
from kafkascope._records import RecordView, register_record_adapter
from kafkascope._version import __version__

__all__ = [
    "LOG_FIELD_DEFAULTS",
    "ConsumerHealth",
    "JsonFormatter",
    "LagObserver",
    "MessageLogFilter",
    "ProcessSpan",
    "RecordView",
    "Telemetry",
    "TextFormatter",
    "TracedAIOKafkaProducer",
    "TracedConfluentProducer",
    "TracedProducer",
    "__version__",
    "configure",
    "dead_letter",
    "extract_context",
    "inject_headers",
    "instrument_logging",
    "observe_health",
    "observe_lag",
    "process_batch_span",
    "process_span",
    "register_record_adapter",
    "traced_batch_handler",
    "traced_handler",
]
