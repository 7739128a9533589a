"""The send-span engine every traced producer uses.

:class:`SendOptions` opens a ``send {topic}`` span per message; its :class:`SendObserver` ends the
span with the send's metrics when the broker acknowledges or the send fails.
:class:`ProducerWrapper` is the base of each client's traced producer (``_clients``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Link, Span, TracerProvider
from opentelemetry.util.types import Attributes, AttributeValue

from kafkascope._core import errors as _errors
from kafkascope._core import metrics as _metrics
from kafkascope._core import semconv as sc
from kafkascope._core import settings as _settings
from kafkascope._core import sizes as _sizes
from kafkascope._core import telemetry as _telemetry
from kafkascope._core.header_capture import HeaderCapture, header_attributes
from kafkascope._core.headers import Headers
from kafkascope._core.telemetry import message_key, messaging_attributes, record_error
from kafkascope._produce import deferred_span as _deferred
from kafkascope._produce.transactions import Transactions
from kafkascope._propagation import pipeline as _pipeline_latency
from kafkascope._propagation.carrier import inject_headers
from kafkascope._propagation.inject import inject_span
from kafkascope._propagation.poison import retry_headers

_MAX_CACHED: Final = 4096
"""(topic, partition) pairs whose send-span attributes a producer keeps."""
_SpanBase = tuple[str, dict[str, AttributeValue]]


class SendOptions:
    """A traced producer's options, validated once; opens one span per send.

    Shared by the wrappers of every client: they differ only in how a send completes.
    """

    __slots__ = (
        "_bound",
        "_instruments",
        "_span_bases",
        "_streams",
        "capture_headers",
        "capture_key",
        "client_id",
        "meter_provider",
        "server_address",
        "server_port",
        "tracer_provider",
        "transactions",
    )

    def __init__(
        self,
        *,
        capture_key: bool | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        server_address: str | None = None,
        server_port: int | None = None,
        client_id: object = None,
        transactional_id: object = None,
        capture_headers: object = None,
    ) -> None:
        self.client_id = client_id if isinstance(client_id, str) and client_id else None
        self.capture_key = (
            _settings.check_bool(capture_key, "capture_key") if capture_key is not None else None
        )
        self.capture_headers: HeaderCapture | None = (
            _settings.check_capture_headers(capture_headers)
            if capture_headers is not None
            else None
        )
        _settings.check_providers(tracer_provider, meter_provider)
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.server_address = server_address
        self.server_port = server_port
        self._span_bases: dict[tuple[str, int | None], _SpanBase] = {}
        self._streams: dict[tuple[str, str | None], tuple[_metrics.AttrKey, Attributes]] = {}
        self._bound: dict[str, _metrics.SentBound | None] = {}
        self._instruments: _metrics.MessagingMetrics | None = None
        self.transactions = Transactions(
            transactional_id if isinstance(transactional_id, str) and transactional_id else None,
            tracer_provider,
            meter_provider,
            server_address,
            server_port,
            self.client_id,
        )

    def send_stream(
        self, instruments: _metrics.MessagingMetrics, topic: str, error_type: str | None
    ) -> tuple[_metrics.AttrKey, Attributes]:
        """The metric stream of this producer's sends to ``topic`` with this outcome."""
        if instruments is not self._instruments:
            self._forget(instruments)
        found = self._streams.get((topic, error_type))
        if found is None:
            found = instruments.send_stream(
                topic, self.server_address, self.server_port, error_type
            )
            if len(self._streams) < _MAX_CACHED:
                self._streams[(topic, error_type)] = found
        return found

    def _forget(self, instruments: _metrics.MessagingMetrics) -> None:
        """Drop the streams of another meter provider's instruments."""
        self._streams = {}
        self._bound = {}
        self._instruments = instruments

    def record_sent(
        self,
        instruments: _metrics.MessagingMetrics,
        topic: str,
        error_type: str | None,
        duration: float,
    ) -> None:
        """One send to ``topic`` with this outcome, ``duration`` seconds long: an acknowledged
        send's streams are bound once per topic on ``configure()``'s pipelines."""
        if error_type is None:
            if instruments is not self._instruments:
                self._forget(instruments)
            try:
                bound = self._bound[topic]
            except KeyError:
                bound = instruments.bind_sent(self.send_stream(instruments, topic, None))
                if len(self._bound) < _MAX_CACHED:
                    self._bound[topic] = bound
            if bound is not None:
                # The exemplar is the span current where the completion runs, as the SDK's.
                current = trace.get_current_span().get_span_context()
                instruments.observe_sent_bound(bound, duration, current)
                return
        instruments.observe_sent(
            stream=self.send_stream(instruments, topic, error_type), duration=duration
        )

    def _span_base(self, topic: str, partition: int | None) -> _SpanBase:
        """The name of sends to ``topic`` and their first attributes (sampling-relevant ones,
        by ``partition`` too), built once (shared: not to be modified)."""
        found = self._span_bases.get((topic, partition))
        if found is None:
            attributes = messaging_attributes(
                sc.OPERATION_SEND,
                topic=topic,
                partition=partition,
                server_address=self.server_address,
                server_port=self.server_port,
                client_id=self.client_id,
            )
            found = sc.send_span_name(topic), attributes
            if len(self._span_bases) < _MAX_CACHED:
                self._span_bases[(topic, partition)] = found
        return found

    def start(
        self,
        topic: object,
        key: object,
        partition: object,
        links: Sequence[Link] = (),
        *,
        value: object = None,
        headers: Headers = None,
    ) -> SendObserver | None:
        """Start the ``send {topic}`` span of one message (whose ``value`` and the
        application's ``headers`` are read only when their capture is on); None if that
        failed (reported)."""
        try:
            settings = _settings.current()
            topic_name = topic if type(topic) is str else str(topic)
            name, attributes = self._span_base(topic_name, _partition(partition))
            span = _deferred.send_span(self.tracer_provider, name, attributes, links)
            observer = SendObserver(span, topic_name, self)
            if span.is_recording():
                key_text = message_key(key, settings, self.capture_key)
                capture = self.capture_headers or settings.capture_headers
                conversation = settings.conversation_id_header
                if capture is not None or conversation is not None:
                    # One call for all: each takes the span's lock and cleans its values.
                    attrs: dict[str, AttributeValue] = {}
                    if key_text is not None:
                        attrs[sc.MESSAGING_KAFKA_MESSAGE_KEY] = key_text
                    if value is None:
                        attrs[sc.MESSAGING_KAFKA_MESSAGE_TOMBSTONE] = True
                    span.set_attributes(header_attributes(headers, capture, conversation, attrs))
                else:
                    if key_text is not None:
                        span.set_attribute(sc.MESSAGING_KAFKA_MESSAGE_KEY, key_text)
                    if value is None:
                        span.set_attribute(sc.MESSAGING_KAFKA_MESSAGE_TOMBSTONE, True)
            if settings.capture_sizes:
                observer.sizes = True
                observer.size = _sizes.value_size(value)
            transaction = self.transactions.open
            if transaction is not None:
                transaction.sent(span)
            return observer
        except Exception as exc:
            _errors.report("send span start", exc)
            return None


def traced_headers(observer: SendObserver | None, headers: Headers) -> Any:
    """``headers`` plus the send span's context; unchanged if there is no span or injection
    failed (then the client rejects bad headers with its own error)."""
    if observer is None:
        return headers
    try:
        out = retry_headers(headers)  # a retry's lineage, when sent from a failed attempt
        sent = inject_span(out, observer.span)
        if sent is None:
            sent = inject_headers(out, context=trace.set_span_in_context(observer.span))
        _pipeline_latency.stamp_headers(sent, observer.topic)
        return sent
    except TypeError:
        return headers  # the application's own bad headers: the client reports them
    except Exception as exc:
        _errors.report("header injection", exc)
        return headers


def _partition(value: object) -> int | None:
    """A known partition number (clients use None or -1 for "let the partitioner choose")."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


class SendObserver:
    """Completes one send's span and metrics, once, when the broker acknowledges or fails."""

    __slots__ = ("_done", "_options", "_start", "size", "sizes", "span", "topic")

    def __init__(self, span: Span, topic: str, options: SendOptions) -> None:
        self.span = span
        self.topic = topic
        self._options = options
        self._start = time.perf_counter()
        self._done = False
        self.sizes = False  # whether body sizes are captured (``size`` recorded when known)
        self.size: int | None = None

    def __call__(self, outcome: Any) -> None:
        """Both the callback and the errback of a kafka-python future: the send failed with
        ``outcome`` if it is an exception, else the broker stored the record (``outcome`` is its
        ``RecordMetadata``). The observer itself is registered, so a send allocates no bound
        methods that live until the broker answers."""
        if isinstance(outcome, BaseException):
            self._finish("send failure", None, None, outcome, None)
        else:
            self.acknowledged(outcome)

    def acknowledged(self, metadata: Any) -> None:
        """Future callback: the broker stored the record (``RecordMetadata``-like)."""
        if self.sizes and self.size is None:
            # A value the client's serializer turned into bytes: its size is in the metadata.
            serialized = getattr(metadata, "serialized_value_size", None)
            if isinstance(serialized, int) and not isinstance(serialized, bool):
                self.size = max(serialized, 0)
        self._finish(
            "send acknowledgement",
            getattr(metadata, "partition", None),
            getattr(metadata, "offset", None),
            None,
            None,
        )

    def delivered(self, partition: object, offset: object) -> None:
        """The broker stored the record at ``partition`` and ``offset`` (when known)."""
        self._finish("send acknowledgement", partition, offset, None, None)

    def failed(
        self, exc: BaseException, error_type: str | None = None, *, partition: object = None
    ) -> None:
        """Future errback: the send failed with ``exc`` (``error_type`` overrides its class)."""
        self._finish("send failure", partition, None, exc, error_type)

    def settled(self, future: Any) -> None:
        """``add_done_callback`` callback of an asyncio or concurrent future."""
        try:
            if future.cancelled():
                self.failed(asyncio.CancelledError())
            elif (exc := future.exception()) is not None:
                self.failed(exc)
            else:
                self.acknowledged(future.result())
        except Exception as internal:
            _errors.report("send completion", internal)
            self.abandon()

    def abandon(self) -> None:
        """End the span without an outcome (the client's completion could not be followed)."""
        self._finish("send end", None, None, None, None)

    def _finish(
        self,
        where: str,
        partition: object,
        offset: object,
        exc: BaseException | None,
        error_type: str | None,
    ) -> None:
        if self._done:
            return
        self._done = True
        try:
            span = self.span
            if span.is_recording():
                known = _partition(partition)
                if known is not None:
                    span.set_attribute(sc.MESSAGING_DESTINATION_PARTITION_ID, str(known))
                if exc is None and isinstance(offset, int) and offset >= 0:
                    span.set_attribute(sc.MESSAGING_KAFKA_OFFSET, offset)
                if self.size is not None:
                    span.set_attribute(sc.MESSAGING_MESSAGE_BODY_SIZE, self.size)
            if exc is not None:
                if error_type is None:
                    error_type = _telemetry.error_type(exc)
                record_error(span, exc, error_type)
        except Exception as internal:
            _errors.report(where, internal)
        try:
            span.end()
            options = self._options
            instruments = _metrics.for_provider(options.meter_provider)
            if not instruments.noop:
                options.record_sent(
                    instruments, self.topic, error_type, time.perf_counter() - self._start
                )
            if self.size is not None and exc is None:
                sizes = _sizes.for_provider(options.meter_provider)
                if not sizes.noop:
                    sizes.record(self.size, sc.OPERATION_SEND, self.topic)
        except Exception as internal:
            _errors.report(where, internal)


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
        client_id: object = None,
        transactional_id: object = None,
        capture_headers: object = None,
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
            transactional_id=transactional_id,
            capture_headers=capture_headers,
        )

    @property
    def wrapped(self) -> Any:
        """The wrapped producer."""
        return self._producer

    @property
    def transactions(self) -> Transactions:
        """This producer's transactions (the open one, if any)."""
        return self._options.transactions

    def __getattr__(self, name: str) -> Any:
        return getattr(self._producer, name)
