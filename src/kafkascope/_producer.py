"""``TracedProducer``: a kafka-python ``KafkaProducer`` whose sends are traced and measured.

:class:`SendOptions` and :class:`SendObserver` are shared with the wrappers of the other clients
(``_producer_confluent``, ``_producer_aiokafka``): a span per send, ended with its metrics when the
broker acknowledges or the send fails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.util.types import AttributeValue

from kafkascope import _internal, _metrics, _settings
from kafkascope import _semconv as sc
from kafkascope._carrier import Headers, inject_headers
from kafkascope._spans import message_key, parse_server, tracer_for


class SendOptions:
    """A traced producer's options, validated once; opens one span per send.

    Shared by the wrappers of every client: they differ only in how a send completes.
    """

    __slots__ = (
        "capture_key",
        "client_id",
        "meter_provider",
        "server_address",
        "server_port",
        "tracer_provider",
    )

    def __init__(
        self,
        *,
        capture_key: bool | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        server_address: str | None = None,
        server_port: int | None = None,
        client_id: str | None = None,
    ) -> None:
        self.client_id = client_id if isinstance(client_id, str) and client_id else None
        self.capture_key = (
            _settings.check_bool(capture_key, "capture_key") if capture_key is not None else None
        )
        _settings.check_providers(tracer_provider, meter_provider)
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.server_address = server_address
        self.server_port = server_port

    def start(
        self, topic: object, key: object, partition: object, links: Sequence[Link] = ()
    ) -> SendObserver | None:
        """Start the ``send {topic}`` span of one message; None if that failed (reported)."""
        try:
            topic_name = topic if isinstance(topic, str) else str(topic)
            attrs: dict[str, AttributeValue] = {
                sc.MESSAGING_SYSTEM: sc.KAFKA,
                sc.MESSAGING_OPERATION_NAME: sc.OPERATION_SEND,
                sc.MESSAGING_OPERATION_TYPE: sc.OPERATION_SEND,
                sc.MESSAGING_DESTINATION_NAME: topic_name,
            }
            if _partition(partition) is not None:
                attrs[sc.MESSAGING_DESTINATION_PARTITION_ID] = str(partition)
            key_text = message_key(key, _settings.current(), self.capture_key)
            if key_text is not None:
                attrs[sc.MESSAGING_KAFKA_MESSAGE_KEY] = key_text
            if self.server_address is not None:
                attrs[sc.SERVER_ADDRESS] = self.server_address
            if self.server_port is not None:
                attrs[sc.SERVER_PORT] = self.server_port
            if self.client_id is not None:
                attrs[sc.MESSAGING_CLIENT_ID] = self.client_id
            span = tracer_for(self.tracer_provider).start_span(
                sc.send_span_name(topic_name),
                kind=SpanKind.PRODUCER,
                attributes=attrs,
                links=links,
                record_exception=False,
                set_status_on_exception=False,
            )
            return SendObserver(span, topic_name, self)
        except Exception as exc:
            _internal.report("send span start", exc)
            return None


def traced_headers(observer: SendObserver | None, headers: Headers) -> Any:
    """``headers`` plus the send span's context; unchanged if there is no span or injection
    failed (then the client rejects bad headers with its own error)."""
    if observer is None:
        return headers
    try:
        return inject_headers(headers, context=trace.set_span_in_context(observer.span))
    except TypeError:
        return headers  # the application's own bad headers: the client reports them
    except Exception as exc:
        _internal.report("header injection", exc)
        return headers


def _partition(value: object) -> int | None:
    """A known partition number (clients use None or -1 for "let the partitioner choose")."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


class SendObserver:
    """Completes one send's span and metrics when the broker acknowledges or fails."""

    __slots__ = ("_done", "_options", "_start", "span", "topic")

    def __init__(self, span: Span, topic: str, options: SendOptions) -> None:
        self.span = span
        self.topic = topic
        self._options = options
        self._start = time.perf_counter()
        self._done = False

    def acknowledged(self, metadata: Any) -> None:
        """Future callback: the broker stored the record (``RecordMetadata``-like)."""
        try:
            self.finish(getattr(metadata, "partition", None), getattr(metadata, "offset", None))
        except Exception as exc:
            _internal.report("send acknowledgement", exc)

    def failed(self, exc: BaseException, error_type: str | None = None) -> None:
        """Future errback: the send failed with ``exc`` (``error_type`` overrides its class)."""
        try:
            self.finish(None, None, exc, error_type)
        except Exception as internal:
            _internal.report("send failure", internal)

    def settled(self, future: Any) -> None:
        """``add_done_callback`` callback of an asyncio or concurrent future."""
        try:
            if future.cancelled():
                self.finish(None, None, asyncio.CancelledError())
                return
            exc = future.exception()
            if exc is not None:
                self.finish(None, None, exc)
            else:
                metadata = future.result()
                self.finish(getattr(metadata, "partition", None), getattr(metadata, "offset", None))
        except Exception as internal:
            _internal.report("send completion", internal)

    def finish(
        self,
        partition: object,
        offset: object,
        exc: BaseException | None = None,
        error_type: str | None = None,
    ) -> None:
        """Record where the message went (when known) and the outcome; end the span, once."""
        if self._done:
            return
        span = self.span
        if span.is_recording():
            known = _partition(partition)
            if known is not None:
                span.set_attribute(sc.MESSAGING_DESTINATION_PARTITION_ID, str(known))
            if exc is None and isinstance(offset, int) and offset >= 0:
                span.set_attribute(sc.MESSAGING_KAFKA_OFFSET, offset)
        self.done(exc, error_type)

    def done(self, exc: BaseException | None, error_type: str | None = None) -> None:
        """End the span and record the send's duration and count, once."""
        if self._done:
            return
        self._done = True
        span = self.span
        if exc is not None:
            if error_type is None:
                error_type = _internal.error_type(exc)
            if span.is_recording():
                span.record_exception(exc)
                span.set_attribute(sc.ERROR_TYPE, error_type)
                span.set_status(Status(StatusCode.ERROR, f"{error_type}: {exc}"))
        span.end()
        options = self._options
        instruments = _metrics.for_provider(options.meter_provider)
        key, attrs = instruments.attributes(
            sc.OPERATION_SEND,
            self.topic,
            None,
            error_type,
            options.server_address,
            options.server_port,
        )
        instruments.operation_duration.record(time.perf_counter() - self._start, attrs)
        instruments.sent_messages.add(1, key, attrs)


class ProducerWrapper:
    """What every traced producer shares: the wrapped client, its validated send options, and
    delegation of everything it does not trace."""

    def __init__(
        self,
        producer: Any,
        *,
        method: str,
        server: tuple[str | None, int | None],
        capture_key: bool | None,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
        client_id: str | None = None,
    ) -> None:
        if not callable(getattr(producer, method, None)):
            raise TypeError(
                f"{type(self).__name__} needs a producer with {method}(), got {producer!r}"
            )
        self._producer = producer
        self._options = SendOptions(
            capture_key=capture_key,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            server_address=server[0],
            server_port=server[1],
            client_id=client_id,
        )

    @property
    def wrapped(self) -> Any:
        """The wrapped producer."""
        return self._producer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._producer, name)


def send_in_span(observer: SendObserver | None, send: Callable[[], Any]) -> Any:
    """Call a kafka-python style ``send`` with the send span current, and complete the span
    from the future it returns (or from the exception it raises)."""
    token = (
        otel_context.attach(trace.set_span_in_context(observer.span))
        if observer is not None
        else None
    )
    try:
        future = send()
    except BaseException as exc:
        if observer is not None:
            observer.failed(exc)
        raise
    finally:
        if token is not None:
            otel_context.detach(token)
    if observer is not None:
        try:
            future.add_callback(observer.acknowledged)
            future.add_errback(observer.failed)
        except Exception as exc:
            _internal.report("send callbacks", exc)
            observer.done(None)
    return future


class TracedProducer(ProducerWrapper):
    """Wraps a ``kafka.KafkaProducer``: same ``send()`` signature and return value.

    Each send gets a ``send {topic}`` PRODUCER span that lasts until the broker acknowledges or
    the send fails, and its context is injected into the record's headers with the global
    propagator, replacing any propagation headers already there. Every other attribute and
    method is the wrapped producer's.

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
        super().__init__(
            producer,
            method="send",
            server=_server_of(producer),
            client_id=_config_of(producer).get("client_id"),
            capture_key=capture_key,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
        )

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
        observer = self._options.start(topic, key, partition)
        # With contrib's kafka-python instrumentation also active, its wrapper of
        # KafkaProducer.send injects (without checking for a traceparent); injecting here too
        # would put two on the record. Our span is current while the inner send runs, so
        # contrib's span and the context it injects are its children: one trace either way.
        out_headers = headers if contrib_kafka_active() else traced_headers(observer, headers)
        return send_in_span(
            observer,
            lambda: self._producer.send(
                topic,
                value=value,
                key=key,
                headers=out_headers,
                partition=partition,
                timestamp_ms=timestamp_ms,
            ),
        )


_contrib: Any = None


def contrib_kafka_active() -> bool:
    """Whether contrib's ``opentelemetry-instrumentation-kafka-python`` is instrumenting."""
    global _contrib
    if _contrib is None:
        try:
            from opentelemetry.instrumentation.kafka import KafkaInstrumentor

            _contrib = KafkaInstrumentor()
        except Exception:  # not installed, or failing to import: it cannot be active
            _contrib = False
    return bool(_contrib and _contrib.is_instrumented_by_opentelemetry)


def _config_of(producer: Any) -> dict[str, Any]:
    config = getattr(producer, "config", None)
    return config if isinstance(config, dict) else {}


def _server_of(producer: Any) -> tuple[str | None, int | None]:
    return server_of_bootstrap(_config_of(producer).get("bootstrap_servers"))


def server_of_bootstrap(servers: object) -> tuple[str | None, int | None]:
    """``server.address``/``.port`` of a client's bootstrap setting (a string or a list)."""
    if isinstance(servers, list | tuple):
        servers = servers[0] if servers else None
    try:
        return parse_server(servers) if isinstance(servers, str) else (None, None)
    except (TypeError, ValueError):
        return None, None
