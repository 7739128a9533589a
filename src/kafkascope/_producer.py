"""``TracedProducer``: a kafka-python ``KafkaProducer`` whose sends are traced and measured."""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.util.types import AttributeValue

from kafkascope import _internal, _metrics, _settings
from kafkascope import _semconv as sc
from kafkascope._carrier import Headers, inject_headers
from kafkascope._spans import message_key, parse_server, tracer_for


class SendObserver:
    """Completes one send's span and metrics when the broker acknowledges or fails."""

    __slots__ = ("_attrs_done", "_instruments", "_producer", "_start", "span", "topic")

    def __init__(self, producer: TracedProducer, span: Span, topic: str) -> None:
        self._producer = producer
        self.span = span
        self.topic = topic
        self._start = time.perf_counter()
        self._attrs_done = False

    def acknowledged(self, metadata: Any) -> None:
        """Future callback: the broker stored the record."""
        try:
            span = self.span
            if span.is_recording():
                partition = getattr(metadata, "partition", None)
                offset = getattr(metadata, "offset", None)
                if isinstance(partition, int):
                    span.set_attribute(sc.MESSAGING_DESTINATION_PARTITION_ID, str(partition))
                if isinstance(offset, int) and offset >= 0:
                    span.set_attribute(sc.MESSAGING_KAFKA_OFFSET, offset)
            self.done(None)
        except Exception as exc:
            _internal.report("send acknowledgement", exc)

    def failed(self, exc: BaseException) -> None:
        """Future errback: the send failed."""
        try:
            self.done(exc)
        except Exception as internal:
            _internal.report("send failure", internal)

    def done(self, exc: BaseException | None) -> None:
        """End the span and record the send's duration and count, once."""
        if self._attrs_done:
            return
        self._attrs_done = True
        error_type = None
        span = self.span
        if exc is not None:
            error_type = _internal.error_type(exc)
            if span.is_recording():
                span.record_exception(exc)
                span.set_attribute(sc.ERROR_TYPE, error_type)
                span.set_status(Status(StatusCode.ERROR, f"{error_type}: {exc}"))
        span.end()
        producer = self._producer
        instruments = _metrics.for_provider(producer._meter_provider)
        key, attrs = instruments.attributes(
            sc.OPERATION_SEND,
            self.topic,
            None,
            error_type,
            producer._server_address,
            producer._server_port,
        )
        instruments.operation_duration.record(time.perf_counter() - self._start, attrs)
        instruments.sent_messages.add(1, key, attrs)


class TracedProducer:
    """Wraps a ``kafka.KafkaProducer``: same ``send()`` signature and return value.

    Each send gets a ``send {topic}`` PRODUCER span that lasts until the broker acknowledges or
    the send fails, and its context is injected into the record's headers with the global
    propagator (unless the headers already carry one). Every other attribute and method is the
    wrapped producer's.

    Args:
        producer: the ``KafkaProducer`` to wrap.
        capture_key: record the UTF-8 message key (default: the configured setting).
        tracer_provider: default, the global one.
        meter_provider: default, the global one.
    """

    def __init__(
        self,
        producer: Any,
        *,
        capture_key: bool | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        if not callable(getattr(producer, "send", None)):
            raise TypeError(f"TracedProducer needs a producer with send(), got {producer!r}")
        self._producer = producer
        self._capture_key = (
            _settings.check_bool(capture_key, "capture_key") if capture_key is not None else None
        )
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._server_address, self._server_port = _server_of(producer)

    @property
    def wrapped(self) -> Any:
        """The wrapped producer."""
        return self._producer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._producer, name)

    def send(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        headers: Headers = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> Any:
        """Send like ``KafkaProducer.send`` and return its future, traced."""
        observer = self._start_send(topic, key, partition)
        out_headers: Any = headers
        if observer is not None:
            try:
                out_headers = inject_headers(
                    headers, context=trace.set_span_in_context(observer.span)
                )
            except Exception as exc:
                _internal.report("header injection", exc)
        try:
            future = self._producer.send(
                topic,
                value=value,
                key=key,
                headers=out_headers,
                partition=partition,
                timestamp_ms=timestamp_ms,
            )
        except BaseException as exc:
            if observer is not None:
                observer.failed(exc)
            raise
        if observer is not None:
            try:
                future.add_callback(observer.acknowledged)
                future.add_errback(observer.failed)
            except Exception as exc:
                _internal.report("send callbacks", exc)
                observer.done(None)
        return future

    def _start_send(self, topic: Any, key: Any, partition: int | None) -> SendObserver | None:
        try:
            topic_name = topic if isinstance(topic, str) else str(topic)
            attrs: dict[str, AttributeValue] = {
                sc.MESSAGING_SYSTEM: sc.KAFKA,
                sc.MESSAGING_OPERATION_NAME: sc.OPERATION_SEND,
                sc.MESSAGING_OPERATION_TYPE: sc.OPERATION_SEND,
                sc.MESSAGING_DESTINATION_NAME: topic_name,
            }
            if isinstance(partition, int):
                attrs[sc.MESSAGING_DESTINATION_PARTITION_ID] = str(partition)
            key_text = message_key(key, _settings.current(), self._capture_key)
            if key_text is not None:
                attrs[sc.MESSAGING_KAFKA_MESSAGE_KEY] = key_text
            if self._server_address is not None:
                attrs[sc.SERVER_ADDRESS] = self._server_address
            if self._server_port is not None:
                attrs[sc.SERVER_PORT] = self._server_port
            span = tracer_for(self._tracer_provider).start_span(
                sc.send_span_name(topic_name),
                kind=SpanKind.PRODUCER,
                attributes=attrs,
                record_exception=False,
                set_status_on_exception=False,
            )
            return SendObserver(self, span, topic_name)
        except Exception as exc:
            _internal.report("send span start", exc)
            return None


def _server_of(producer: Any) -> tuple[str | None, int | None]:
    config = getattr(producer, "config", None)
    servers = config.get("bootstrap_servers") if isinstance(config, dict) else None
    if isinstance(servers, list | tuple):
        servers = servers[0] if servers else None
    try:
        return parse_server(servers) if isinstance(servers, str) else (None, None)
    except (TypeError, ValueError):
        return None, None
