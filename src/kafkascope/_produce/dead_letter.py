"""``dead_letter``: send a record whose processing failed to a dead-letter topic, traced."""

from __future__ import annotations

from typing import Any, Final

from opentelemetry import propagate, trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Link, TracerProvider

from kafkascope._adapters.kafka_python import bootstrap_of, client_id_of, cluster_id_of
from kafkascope._adapters.records import RecordView, view
from kafkascope._core import errors as _errors
from kafkascope._core import metrics as _metrics
from kafkascope._core import semconv as sc
from kafkascope._core.headers import DEAD_LETTER_PREFIX
from kafkascope._core.telemetry import error_type as error_type_of
from kafkascope._core.telemetry import server_of_bootstrap
from kafkascope._produce.send import ProducerWrapper, SendOptions, traced_headers
from kafkascope._produce.send_calls import send_in_span
from kafkascope._propagation.carrier import normalise_headers

HEADER_PREFIX: Final = DEAD_LETTER_PREFIX
"""Prefix of the headers :func:`dead_letter` adds: ``error.type``, ``error.message``,
``original.topic``, ``original.partition``, ``original.offset``."""
MAX_ERROR_MESSAGE: Final = 1024
"""Characters of the error message copied into the ``kafkascope.dlq.error.message`` header."""


def _value_of(record: Any) -> Any:
    value = getattr(record, "value", None)
    return value() if callable(value) else value


def _headers(
    original: RecordView | None, error: BaseException, error_type: str
) -> list[tuple[str, Any]]:
    fields = {name.lower() for name in propagate.get_global_textmap().fields}
    kept: list[tuple[str, Any]] = []
    if original is not None:
        try:
            kept = [
                (k, v) for k, v in normalise_headers(original.headers) if k.lower() not in fields
            ]
        except TypeError:
            kept = []
    topic = original.topic if original is not None else None
    partition = original.partition if original is not None else None
    offset = original.offset if original is not None else None
    kept += [
        (f"{HEADER_PREFIX}error.type", error_type.encode()),
        (
            f"{HEADER_PREFIX}error.message",
            str(error)[:MAX_ERROR_MESSAGE].encode("utf-8", "replace"),
        ),
        (f"{HEADER_PREFIX}original.topic", str(topic).encode("utf-8", "replace")),
        (f"{HEADER_PREFIX}original.partition", str(partition).encode()),
        (f"{HEADER_PREFIX}original.offset", str(offset).encode()),
    ]
    return kept


def dead_letter(
    producer: Any,
    record: Any,
    error: BaseException,
    *,
    topic: str | None = None,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> Any:
    """Send ``record``, whose processing failed with ``error``, to a dead-letter topic.

    Call it inside the failed message's process span (in the handler's ``except`` block, or
    inside ``process_span``). The ``send {topic}`` span is a child of that span and links to
    it, with ``error.type`` on the link, so the dead-lettered message continues the message's
    trace. The record's value and key are sent unchanged; its headers are kept except the
    propagation fields, and ``kafkascope.dlq.*`` headers carry the error and the original
    topic, partition and offset. ``kafkascope.messages.dead_lettered`` counts it.

    Args:
        producer: a kafka-python ``KafkaProducer`` or :class:`TracedProducer` (not traced twice).
        record: the consumed record that failed.
        error: the exception it failed with.
        topic: the dead-letter topic (default ``<original topic>.dlq``).
        tracer_provider: default, the global one.
        meter_provider: default, the global one.

    Returns:
        The producer's future for the dead-letter send.

    Raises:
        ValueError: there is no topic to send to.
    """
    raw = producer.wrapped if isinstance(producer, ProducerWrapper) else producer
    original = view(record)
    target = topic or (f"{original.topic}.dlq" if original and original.topic else None)
    if not target:
        raise ValueError("dead_letter needs topic= when the record has no topic")
    error_type = error_type_of(error)
    failed = trace.get_current_span().get_span_context()
    observer = None
    try:
        address, port = server_of_bootstrap(bootstrap_of(raw))
        options = SendOptions(
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            server_address=address,
            server_port=port,
            client_id=client_id_of(raw),
        )
        if isinstance(producer, ProducerWrapper):
            options.transactions = producer.transactions  # a dead letter inside its transaction
        links = [Link(failed, {sc.ERROR_TYPE: error_type})] if failed.is_valid else []
        outgoing = _headers(original, error, error_type)
        observer = options.start(
            target,
            original.key if original else None,
            None,
            links,
            value=_value_of(record),
            headers=outgoing,
        )
        cluster = cluster_id_of(raw)
        if observer is not None and cluster is not None and observer.span.is_recording():
            observer.span.set_attribute(sc.MESSAGING_KAFKA_CLUSTER_ID, cluster)
        _metrics.for_provider(meter_provider).observe_dead_letter(
            topic=target, source=original.topic if original else None, error_type=error_type
        )
        headers: Any = traced_headers(observer, outgoing)
    except Exception as exc:
        _errors.report("dead letter", exc)
        headers = None
    return send_in_span(
        observer,
        lambda: raw.send(
            target,
            value=_value_of(record),
            key=original.key if original else None,
            headers=headers,
        ),
    )
