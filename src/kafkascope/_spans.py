"""Process spans: one per message or batch, current while the handler runs.

:class:`ProcessOptions` holds a handler's validated options; :meth:`ProcessOptions.begin` opens a
:class:`ProcessScope`, whose :meth:`~ProcessScope.finish` records the outcome. Neither raises
into user code: instrumentation failures are reported once and the handler runs regardless.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Collection, Iterable, Mapping, Sequence
from contextvars import Token
from typing import Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.util.types import AttributeValue

from kafkascope import _internal, _metrics, _settings
from kafkascope import _semconv as sc
from kafkascope._carrier import extract_context
from kafkascope._message import MessageFields, current_message
from kafkascope._records import RecordView, view
from kafkascope._settings import ParentPolicy, Settings
from kafkascope._version import __version__

_INVALID_CONTEXT: Final = trace.set_span_in_context(trace.INVALID_SPAN, Context())
_tracers: weakref.WeakKeyDictionary[TracerProvider, trace.Tracer] = weakref.WeakKeyDictionary()


_last_tracer: tuple[TracerProvider, trace.Tracer] | None = None


def tracer_for(tracer_provider: TracerProvider | None) -> trace.Tracer:
    """kafkascope's tracer on ``tracer_provider`` (default: the global one), cached."""
    global _last_tracer
    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    last = _last_tracer
    if last is not None and last[0] is provider:
        return last[1]
    found = _tracers.get(provider)
    if found is None:
        found = _tracers[provider] = provider.get_tracer(
            "kafkascope", __version__, schema_url=sc.SCHEMA_URL
        )
    _last_tracer = (provider, found)
    return found


def parse_server(server: object, setting: str = "server") -> tuple[str | None, int | None]:
    """Split ``"host:port"`` (the first of a bootstrap list) into address and port."""
    if server is None:
        return None, None
    if not isinstance(server, str) or not server.strip():
        raise TypeError(f"{setting} must be a 'host:port' string or None, got {server!r}")
    first = server.split(",")[0].strip()
    host, sep, port = first.rpartition(":")
    if not sep:
        return first, None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{setting}={server!r} has an invalid port {port!r}")
    return host.strip("[]") or None, int(port)


def message_key(key: object, settings: Settings, capture: bool | None) -> str | None:
    """The key to record: UTF-8 text only, through the redaction hook, unless capture is off."""
    if not (settings.capture_key if capture is None else capture) or key is None:
        return None
    if isinstance(key, bytes):
        try:
            text = key.decode("utf-8")
        except UnicodeDecodeError:
            return None
    elif isinstance(key, str):
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            return None  # lone surrogates: not exportable
        text = key
    else:
        return None
    hook = settings.key_hook
    if hook is None:
        return text
    try:
        redacted = hook(text)
    except Exception as exc:
        _internal.report("key_hook", exc)
        return None
    return redacted if isinstance(redacted, str) else None


def _time_in_queue(record: RecordView, now_ms: float) -> float | None:
    if record.timestamp_ms is None:
        return None
    return max(0.0, now_ms - record.timestamp_ms) / 1000.0


def _timestamp_type(record: RecordView) -> str:
    return "log_append_time" if record.log_append_time else "create_time"


class ProcessOptions:
    """A handler's options, validated once when the handler is decorated."""

    __slots__ = (
        "capture_key",
        "client_id",
        "group",
        "meter_provider",
        "parent",
        "server_address",
        "server_port",
        "tracer_provider",
    )

    def __init__(
        self,
        *,
        group: str | None = None,
        parent: ParentPolicy | None = None,
        server: str | None = None,
        capture_key: bool | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        client_id: str | None = None,
    ) -> None:
        self.client_id = client_id if isinstance(client_id, str) and client_id else None
        self.group = _settings.check_group(group)
        self.parent = _settings.check_parent(parent) if parent is not None else None
        self.server_address, self.server_port = parse_server(server)
        self.capture_key = (
            _settings.check_bool(capture_key, "capture_key") if capture_key is not None else None
        )
        _settings.check_providers(tracer_provider, meter_provider)
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider

    def begin(self, record: object) -> ProcessScope | None:
        """Open the process span for one record; None when ``record`` is not a record."""
        try:
            record_view = view(record)
            if record_view is None:
                return None
            scope = ProcessScope(self, (record_view,), batch=False)
            scope.enter()
            return scope
        except Exception as exc:
            _internal.report("process span start", exc)
            return None

    def begin_batch(self, records: Iterable[object]) -> ProcessScope | None:
        """Open one process span for a batch of records, linked to each producer."""
        try:
            if not isinstance(records, Collection | Mapping):
                # An iterator would be used up here and reach the handler empty: span without
                # per-message links and counts rather than change what the handler gets.
                records = ()
            views = [v for v in map(view, _flatten(records)) if v is not None]
            scope = ProcessScope(self, views, batch=True)
            scope.enter()
            return scope
        except Exception as exc:
            _internal.report("batch span start", exc)
            return None


def _flatten(records: Iterable[object]) -> Iterable[object]:
    """A batch may be a list of records or ``poll()``'s mapping of partition to records."""
    if isinstance(records, Mapping):
        for chunk in records.values():
            yield from chunk
    else:
        yield from records


class ProcessScope:
    """One open process span: current in the context until :meth:`finish`."""

    __slots__ = (
        "_message_token",
        "_options",
        "_records",
        "_start",
        "_start_ms",
        "_token",
        "_topic",
        "_waited",
        "batch",
        "span",
    )

    def __init__(
        self, options: ProcessOptions, records: Sequence[RecordView], *, batch: bool
    ) -> None:
        self._options = options
        self._records = records
        self.batch = batch
        self.span: Span = trace.INVALID_SPAN
        self._token: Token[Context] | None = None
        self._message_token: Token[MessageFields | None] | None = None
        self._start = 0.0
        self._topic: str | None = None
        self._start_ms = 0.0
        self._waited: float | None = None

    def enter(self) -> Span:
        """Start the span and make it current."""
        options = self._options
        settings = _settings.current()
        records = self._records
        self._start = time.perf_counter()
        self._start_ms = time.time() * 1000.0
        ambient = otel_context.get_current()
        ambient_sc = trace.get_current_span(ambient).get_span_context()
        links: list[Link] = []
        attrs: dict[str, AttributeValue] = {
            sc.MESSAGING_SYSTEM: sc.KAFKA,
            sc.MESSAGING_OPERATION_NAME: sc.OPERATION_PROCESS,
            sc.MESSAGING_OPERATION_TYPE: sc.OPERATION_PROCESS,
        }
        if self.batch:
            parent = ambient
            topics = {r.topic for r in records}
            self._topic = topics.pop() if len(topics) == 1 else None
            for record in records:
                producer = trace.get_current_span(
                    extract_context(record.headers, trust_baggage=settings.trust_baggage)
                ).get_span_context()
                if producer.is_valid:
                    links.append(Link(producer, _link_attributes(record)))
            attrs[sc.MESSAGING_BATCH_MESSAGE_COUNT] = len(records)
        else:
            record = records[0]
            self._topic = record.topic
            policy = options.parent or settings.parent
            producer_ctx = extract_context(record.headers, trust_baggage=settings.trust_baggage)
            producer = trace.get_current_span(producer_ctx).get_span_context()
            if producer.is_valid:
                links.append(Link(producer))
            if policy == "producer":
                if producer.is_valid:
                    parent = producer_ctx
                    if ambient_sc.is_valid:
                        links.append(Link(ambient_sc))
                else:
                    parent = ambient
            elif policy == "links":
                parent = trace.set_span_in_context(trace.INVALID_SPAN, producer_ctx)
            else:
                parent = ambient
            if record.partition is not None:
                attrs[sc.MESSAGING_DESTINATION_PARTITION_ID] = str(record.partition)
            if record.offset is not None:
                attrs[sc.MESSAGING_KAFKA_OFFSET] = record.offset
            key = message_key(record.key, settings, options.capture_key)
            if key is not None:
                attrs[sc.MESSAGING_KAFKA_MESSAGE_KEY] = key
            if record.tombstone:
                attrs[sc.MESSAGING_KAFKA_MESSAGE_TOMBSTONE] = True
            waited = self._waited = _time_in_queue(record, self._start_ms)
            if waited is not None:
                attrs[sc.TIME_IN_QUEUE] = waited
                attrs[sc.TIMESTAMP_TYPE] = _timestamp_type(record)
        if self._topic is not None:
            attrs[sc.MESSAGING_DESTINATION_NAME] = self._topic
        if options.group is not None:
            attrs[sc.MESSAGING_CONSUMER_GROUP_NAME] = options.group
        if options.server_address is not None:
            attrs[sc.SERVER_ADDRESS] = options.server_address
        if options.server_port is not None:
            attrs[sc.SERVER_PORT] = options.server_port
        if options.client_id is not None:
            attrs[sc.MESSAGING_CLIENT_ID] = options.client_id
        span = tracer_for(options.tracer_provider).start_span(
            sc.process_span_name(self._topic),
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=attrs,
            links=links,
            record_exception=False,
            set_status_on_exception=False,
        )
        self.span = span
        self._token = otel_context.attach(trace.set_span_in_context(span, parent))
        first = records[0] if len(records) == 1 else None
        self._message_token = current_message.set(
            MessageFields(
                self._topic,
                first.partition if first is not None else None,
                first.offset if first is not None else None,
                options.group,
            )
        )
        return span

    def finish(self, exc: BaseException | None) -> None:
        """Record the handler's outcome, end the span, restore the context. Never raises."""
        span = self.span
        error_type: str | None = None
        try:
            if exc is not None:
                error_type = _internal.error_type(exc)
                if span.is_recording():
                    span.record_exception(exc)
                    span.set_attribute(sc.ERROR_TYPE, error_type)
                    span.set_status(Status(StatusCode.ERROR, f"{error_type}: {exc}"))
        except Exception as internal:
            _internal.report("process span error", internal)
        finally:
            self._restore_context()
        try:
            span.end()
            self._observe(error_type)
        except Exception as internal:
            _internal.report("process span end", internal)

    def _restore_context(self) -> None:
        try:
            if self._message_token is not None:
                current_message.reset(self._message_token)
        except ValueError:
            current_message.set(None)  # reset from another context (async generators)
        if self._token is not None:
            otel_context.detach(self._token)

    def _observe(self, error_type: str | None) -> None:
        options = self._options
        instruments = _metrics.for_provider(options.meter_provider)
        if instruments.noop:
            return
        key, attrs = instruments.attributes(
            sc.OPERATION_PROCESS,
            self._topic,
            options.group,
            error_type,
            options.server_address,
            options.server_port,
        )
        instruments.process_duration.record(time.perf_counter() - self._start, attrs)
        instruments.consumed_messages.add(len(self._records), key, attrs)
        for record in self._records:
            # A single record's wait was computed for its span attribute already.
            waited = _time_in_queue(record, self._start_ms) if self.batch else self._waited
            if waited is not None:
                _, tiq_attrs = instruments.attributes(
                    sc.OPERATION_PROCESS,
                    record.topic,
                    options.group,
                    None,
                    options.server_address,
                    options.server_port,
                    _timestamp_type(record),
                )
                instruments.time_in_queue.record(waited, tiq_attrs)


def _link_attributes(record: RecordView) -> dict[str, AttributeValue]:
    attrs: dict[str, AttributeValue] = {}
    if record.topic is not None:
        attrs[sc.MESSAGING_DESTINATION_NAME] = record.topic
    if record.partition is not None:
        attrs[sc.MESSAGING_DESTINATION_PARTITION_ID] = str(record.partition)
    if record.offset is not None:
        attrs[sc.MESSAGING_KAFKA_OFFSET] = record.offset
    return attrs
