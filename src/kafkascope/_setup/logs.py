"""Log correlation: trace and messaging fields on every record logged inside a handler."""

from __future__ import annotations

import json
import logging
from typing import Any, Final

from opentelemetry import trace
from opentelemetry._logs import LoggerProvider

from kafkascope._core import semconv as sc
from kafkascope._core.message import carry_in_context, message_in_context

TRACE_ID: Final = "trace_id"
SPAN_ID: Final = "span_id"
MESSAGE_FIELDS: Final = (
    sc.MESSAGING_DESTINATION_NAME,
    sc.MESSAGING_DESTINATION_PARTITION_ID,
    sc.MESSAGING_KAFKA_OFFSET,
    sc.MESSAGING_CONSUMER_GROUP_NAME,
)
LOG_FIELD_DEFAULTS: Final[dict[str, Any]] = {
    TRACE_ID: "-",
    SPAN_ID: "-",
    **dict.fromkeys(MESSAGE_FIELDS, "-"),
}
"""Values for ``logging.Formatter(defaults=...)`` so a format naming the fields also works for
records logged outside a handler."""


def add_message_fields(record: logging.LogRecord, *, trace_ids: bool = True) -> bool:
    """Add trace and messaging fields to ``record`` when a handler is running; True if added."""
    fields = message_in_context()
    if fields is None:
        return False
    if trace_ids:
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            setattr(record, TRACE_ID, format(ctx.trace_id, "032x"))
            setattr(record, SPAN_ID, format(ctx.span_id, "016x"))
    if fields.topic is not None:
        setattr(record, sc.MESSAGING_DESTINATION_NAME, fields.topic)
    if fields.partition is not None:
        setattr(record, sc.MESSAGING_DESTINATION_PARTITION_ID, str(fields.partition))
    if fields.offset is not None:
        setattr(record, sc.MESSAGING_KAFKA_OFFSET, fields.offset)
    if fields.group is not None:
        setattr(record, sc.MESSAGING_CONSUMER_GROUP_NAME, fields.group)
    return True


class MessageLogFilter(logging.Filter):
    """Adds ``trace_id``, ``span_id`` and the message's ``messaging.*`` fields to records logged
    inside a traced handler, or in work handed off from one (:func:`~kafkascope.hand_off`, or a
    thread that contrib's threading instrumentation gave the handler's context); records logged
    elsewhere pass unchanged.

    Attach it to a handler (``handler.addFilter(MessageLogFilter())``). The field names are
    record attributes, so ``%(trace_id)s`` and ``%(messaging.destination.name)s`` work in a
    format string (use :data:`LOG_FIELD_DEFAULTS` as the formatter's ``defaults``).

    Args:
        trace_ids: add ``trace_id``/``span_id`` (an OpenTelemetry log handler already carries
            them natively and needs only the messaging fields).
    """

    def __init__(self, *, trace_ids: bool = True) -> None:
        super().__init__()
        self.trace_ids = trace_ids
        carry_in_context()

    def filter(self, record: logging.LogRecord) -> bool:
        add_message_fields(record, trace_ids=self.trace_ids)
        return True


class TextFormatter(logging.Formatter):
    """A plain-text formatter whose default format shows the trace and message fields.

    Outside a handler the fields print as ``-``.

    Args:
        fmt: a ``%``-style format; the fields are ``%(trace_id)s``, ``%(span_id)s``,
            ``%(messaging.destination.name)s``, ... (default: :attr:`DEFAULT_FORMAT`).
        datefmt: the date format, as for :class:`logging.Formatter`.

    Examples:
        ```python
        handler.setFormatter(kafkascope.TextFormatter())
        # 2026-01-01 12:00:00,000 INFO billing [trace_id=4bf9... span_id=00f0... topic=orders
        # partition=0 offset=42] charging A-1
        ```
    """

    DEFAULT_FORMAT: Final = (
        "%(asctime)s %(levelname)s %(name)s [trace_id=%(trace_id)s span_id=%(span_id)s "
        "topic=%(messaging.destination.name)s partition=%(messaging.destination.partition.id)s "
        "offset=%(messaging.kafka.offset)s] %(message)s"
    )

    def __init__(self, fmt: str | None = None, datefmt: str | None = None) -> None:
        super().__init__(fmt or self.DEFAULT_FORMAT, datefmt, defaults=LOG_FIELD_DEFAULTS)

    def format(self, record: logging.LogRecord) -> str:
        add_message_fields(record)
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and, inside a handler, the trace
    and messaging fields (exception text under ``exception``)."""

    def format(self, record: logging.LogRecord) -> str:
        add_message_fields(record)
        out: dict[str, Any] = {
            "timestamp": self.formatTime(record, self.datefmt),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in (TRACE_ID, SPAN_ID, *MESSAGE_FIELDS):
            value = record.__dict__.get(name)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class DiagnosticsToStderr(logging.Filter):
    """On an OpenTelemetry log handler: warnings about telemetry itself (from the SDK, the
    exporters and kafkascope) also go to stderr when no other handler shows them.

    Such a warning says the log pipeline may be broken (a dead backend, a bad setting), so a
    handler that feeds that pipeline must not be its only reader: with ``logs=True`` and no
    console handler, Python's last-resort stderr output no longer applies, and a process
    waiting at exit for a dead backend would wait in silence.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.levelno >= logging.WARNING
            and _is_diagnostic(record.name)
            and logging.lastResort is not None
            and not _shown_elsewhere(record)
        ):
            logging.lastResort.handle(record)
        return True


def _is_diagnostic(name: str) -> bool:
    # kafkascope's own logger, not its children (poison, rebalance): those report on the
    # application's messages and belong in its logs.
    return name == "kafkascope" or name == "opentelemetry" or name.startswith("opentelemetry.")


def _shown_elsewhere(record: logging.LogRecord) -> bool:
    """Whether a handler other than an OpenTelemetry one takes ``record`` (as
    ``Logger.callHandlers`` walks the hierarchy)."""
    otel = _otel_handler_types()
    logger: logging.Logger | None = logging.getLogger(record.name)
    while logger is not None:
        for handler in logger.handlers:
            if not isinstance(handler, otel) and record.levelno >= handler.level:
                return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return False


def _add_filters(handler: logging.Handler) -> bool:
    """Give an OpenTelemetry log handler the messaging fields and the stderr fallback for
    telemetry's own warnings; False when it had them already."""
    added = False
    if not any(isinstance(f, MessageLogFilter) for f in handler.filters):
        handler.addFilter(MessageLogFilter(trace_ids=False))
        added = True
    if not any(isinstance(f, DiagnosticsToStderr) for f in handler.filters):
        handler.addFilter(DiagnosticsToStderr())
        added = True
    return added


def _otel_handler_types() -> tuple[type, ...]:
    types: list[type] = []
    try:
        from opentelemetry.instrumentation.logging.handler import LoggingHandler

        types.append(LoggingHandler)
    except ImportError:  # pragma: no cover - a declared dependency
        pass
    try:
        from opentelemetry.sdk._logs import LoggingHandler as SdkLoggingHandler

        types.append(SdkLoggingHandler)
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


def correlate_otel_log_handlers(logger: logging.Logger | None = None) -> list[logging.Handler]:
    """Give every OpenTelemetry log handler already on ``logger`` (default: root) the
    :class:`MessageLogFilter` (and :class:`DiagnosticsToStderr`), adding no handler. Returns
    the handlers that got them."""
    target = logger if logger is not None else logging.getLogger()
    return [
        handler
        for handler in target.handlers
        if isinstance(handler, _otel_handler_types()) and _add_filters(handler)
    ]


def instrument_logging(
    logger_provider: LoggerProvider | None = None,
    *,
    logger: logging.Logger | None = None,
    level: int = logging.NOTSET,
) -> logging.Handler:
    """Send stdlib log records to OpenTelemetry logs, with the messaging fields added.

    Idempotent: when ``logger`` (default: the root logger) already has an OpenTelemetry log
    handler (ours, or one added by ``opentelemetry-instrumentation-logging``), that handler is
    reused and only gets the :class:`MessageLogFilter`; no second handler is added. Warnings
    about telemetry itself (SDK, exporters, kafkascope) also reach stderr when no other handler
    shows them (:class:`DiagnosticsToStderr`).

    Args:
        logger_provider: where the records go (default: the global one).
        logger: the logger to attach to (default: the root logger).
        level: the handler's level.

    Returns:
        The OpenTelemetry log handler in use.
    """
    from opentelemetry.instrumentation.logging.handler import LoggingHandler

    target = logger if logger is not None else logging.getLogger()
    existing = next((h for h in target.handlers if isinstance(h, _otel_handler_types())), None)
    handler = existing or LoggingHandler(level=level, logger_provider=logger_provider)
    _add_filters(handler)
    if existing is None:
        target.addHandler(handler)
    return handler
