from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading

from opentelemetry import context as otel_context
from opentelemetry.sdk._logs import LoggerProvider

from kafkascope import (
    LOG_FIELD_DEFAULTS,
    JsonFormatter,
    MessageLogFilter,
    TextFormatter,
    instrument_logging,
    traced_handler,
)
from kafkascope._core import message as _message
from kafkascope._core import semconv as sc
from kafkascope.testing import make_record

log = logging.getLogger("tests.app")


def _stream_logger(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"tests.stream.{id(stream)}")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_log_inside_handler_carries_trace_and_message_fields(capotel):
    @traced_handler(group="billing")
    def handle(rec):
        log.info("charging %s", "order-1")

    handle(make_record("orders", partition=2, offset=9))
    process = capotel.span("process orders")
    record = capotel.log("charging order-1").log_record
    assert record.trace_id == process.context.trace_id
    assert record.span_id == process.context.span_id
    assert record.attributes[sc.MESSAGING_DESTINATION_NAME] == "orders"
    assert record.attributes[sc.MESSAGING_DESTINATION_PARTITION_ID] == "2"
    assert record.attributes[sc.MESSAGING_KAFKA_OFFSET] == 9
    assert record.attributes[sc.MESSAGING_CONSUMER_GROUP_NAME] == "billing"


def _in_a_thread_given_the_otel_context(fn):
    """Run ``fn`` in a new thread handed only the OpenTelemetry context (as contrib's threading
    instrumentation, or code attaching ``context.get_current()`` by hand, does)."""
    carried = otel_context.get_current()

    def run() -> None:
        token = otel_context.attach(carried)
        try:
            fn()
        finally:
            otel_context.detach(token)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()


def test_log_in_a_thread_handed_the_otel_context_carries_the_message_fields(capotel):
    @traced_handler(group="billing")
    def handle(rec):
        _in_a_thread_given_the_otel_context(lambda: log.info("charging in a thread"))

    handle(make_record("orders", partition=2, offset=9))
    record = capotel.log("charging in a thread").log_record
    assert record.trace_id == capotel.span("process orders").context.trace_id
    assert record.attributes[sc.MESSAGING_KAFKA_OFFSET] == 9
    assert record.attributes[sc.MESSAGING_CONSUMER_GROUP_NAME] == "billing"


def test_the_message_rides_in_the_otel_context_only_once_a_log_filter_exists(capotel, monkeypatch):
    monkeypatch.setattr(_message, "carried", False)
    seen: list[object] = []

    @traced_handler(group="billing")
    def handle(rec):
        seen.append(otel_context.get_value(_message.CONTEXT_KEY))

    handle(make_record("orders", offset=1))
    MessageLogFilter()
    handle(make_record("orders", offset=2))
    assert seen[0] is None
    assert isinstance(seen[1], _message.Processing)
    assert seen[1].offset == 2


def test_log_outside_a_handler_is_unchanged(capotel):
    log.info("idle")
    record = capotel.log("idle").log_record
    assert sc.MESSAGING_DESTINATION_NAME not in (record.attributes or {})
    assert record.trace_id == 0


def test_text_formatter_shows_ids_inside_and_dashes_outside(capotel):
    logger, stream = _stream_logger(
        TextFormatter("%(trace_id)s %(span_id)s %(messaging.destination.name)s %(message)s")
    )

    @traced_handler
    def handle(rec):
        logger.info("inside")

    handle(make_record("orders"))
    logger.info("outside")
    inside, outside = stream.getvalue().splitlines()
    ctx = capotel.span("process orders").context
    assert inside == f"{ctx.trace_id:032x} {ctx.span_id:016x} orders inside"
    assert outside == "- - - outside"


def test_json_formatter_adds_fields_only_inside_a_handler(capotel):
    logger, stream = _stream_logger(JsonFormatter())

    @traced_handler
    def handle(rec):
        try:
            raise ValueError("bad payload")
        except ValueError:
            logger.exception("failed")

    handle(make_record("orders", offset=5))
    logger.warning("outside")
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["trace_id"] == f"{capotel.span('process orders').context.trace_id:032x}"
    assert inside[sc.MESSAGING_KAFKA_OFFSET] == 5
    assert "ValueError: bad payload" in inside["exception"]
    assert set(outside) == {"timestamp", "level", "logger", "message"}


def test_filter_with_a_standard_formatter_and_defaults(capotel):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MessageLogFilter())
    handler.setFormatter(
        logging.Formatter("%(messaging.kafka.offset)s|%(message)s", defaults=LOG_FIELD_DEFAULTS)
    )
    logger = logging.getLogger("tests.filter")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)

    @traced_handler
    def handle(rec):
        logger.info("in")

    handle(make_record("orders", offset=77))
    logger.info("out")
    assert stream.getvalue().splitlines() == ["77|in", "-|out"]


def test_instrument_logging_is_idempotent():
    logger = logging.getLogger("tests.idempotent")
    provider = LoggerProvider()
    first = instrument_logging(provider, logger=logger)
    second = instrument_logging(provider, logger=logger)
    try:
        assert first is second
        assert logger.handlers.count(first) == 1
        assert sum(isinstance(f, MessageLogFilter) for f in first.filters) == 1
    finally:
        logger.removeHandler(first)


def test_instrument_logging_reuses_the_logging_instrumentations_handler():
    from opentelemetry.instrumentation.logging.handler import LoggingHandler

    logger = logging.getLogger("tests.contrib")
    existing = LoggingHandler(logger_provider=LoggerProvider())
    logger.addHandler(existing)
    try:
        assert instrument_logging(LoggerProvider(), logger=logger) is existing
        assert logger.handlers == [existing]
    finally:
        logger.removeHandler(existing)


DIAGNOSTICS_SCRIPT = textwrap.dedent(
    """
    import logging
    import sys
    import kafkascope

    if sys.argv[1] == "console":
        logging.basicConfig(format="console: %(message)s")
    kafkascope.configure("svc", logs=True, traces=False, metrics=False)
    logging.getLogger("opentelemetry.exporter.otlp.proto.grpc.exporter").warning("export failed")
    logging.getLogger("kafkascope").warning("kafkascope: shutdown is waiting")
    logging.getLogger("kafkascope.poison").warning("a poison message")
    logging.getLogger("app").warning("the application's own")
    """
)


def _diagnostics_stderr(console: bool) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_LOGS_EXPORTER"] = "none"
    done = subprocess.run(
        [sys.executable, "-c", DIAGNOSTICS_SCRIPT, "console" if console else "otel-only"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_telemetry_warnings_reach_stderr_when_only_an_otel_log_handler_takes_them():
    assert _diagnostics_stderr(console=False).splitlines() == [
        "export failed",
        "kafkascope: shutdown is waiting",
    ]


def test_telemetry_warnings_are_not_doubled_beside_a_console_handler():
    assert _diagnostics_stderr(console=True).splitlines() == [
        "console: export failed",
        "console: kafkascope: shutdown is waiting",
        "console: a poison message",
        "console: the application's own",
    ]


LOGGING_SCRIPT = textwrap.dedent(
    """
    import logging
    from opentelemetry.instrumentation.logging import LoggingInstrumentor
    from opentelemetry.instrumentation.logging.handler import LoggingHandler
    import kafkascope

    LoggingInstrumentor().instrument()
    (theirs,) = logging.getLogger().handlers
    kafkascope.configure("svc", logs=True)
    kafkascope.configure("svc", logs=True)
    root = logging.getLogger()
    handlers = [h for h in root.handlers if isinstance(h, LoggingHandler)]
    filters = [f for h in handlers for f in h.filters if isinstance(f, kafkascope.MessageLogFilter)]
    print(len(handlers), len(filters), handlers[0] is theirs)
    """
)


def test_no_duplicate_log_handlers_beside_the_logging_instrumentation():
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    done = subprocess.run(
        [sys.executable, "-c", LOGGING_SCRIPT], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "1", "True"]
