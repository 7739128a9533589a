"""Spans to ``ExportTraceServiceRequest`` bytes, byte-identical to the SDK's
``encode_spans(spans).SerializeToString()`` at a fraction of its cost.

Where the SDK builds a protobuf object per attribute and hashes the resource with ``json.dumps``
for every span, :class:`SpanEncoder` writes each span's bytes directly, encodes each resource and
scope once (cached by identity, holding the object so its id stays its own), and groups spans
the way the SDK does: resources by equality, scopes by name, version and schema URL, in order of
first appearance.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, StatusCode

from kafkascope._setup.otlp.wire import field, key_value, pack_fixed32, pack_fixed64
from kafkascope._setup.otlp.wire import varint as _varint

_logger = logging.getLogger(__name__)

_KIND: Final = {
    SpanKind.INTERNAL: b"\x30\x01",
    SpanKind.SERVER: b"\x30\x02",
    SpanKind.CLIENT: b"\x30\x03",
    SpanKind.PRODUCER: b"\x30\x04",
    SpanKind.CONSUMER: b"\x30\x05",
}
# SpanFlags: CONTEXT_HAS_IS_REMOTE (0x100), plus CONTEXT_IS_REMOTE (0x200) for a remote parent.
_LOCAL_FLAGS: Final = b"\x85\x01" + pack_fixed32(0x100)
_REMOTE_FLAGS: Final = b"\x85\x01" + pack_fixed32(0x300)
_LINK_LOCAL_FLAGS: Final = b"\x35" + pack_fixed32(0x100)
_LINK_REMOTE_FLAGS: Final = b"\x35" + pack_fixed32(0x300)
_UNSET_STATUS: Final = b"\x7a\x00"
"""An empty ``Status`` field: code UNSET (0, omitted), no description."""
_UNSET_LOCAL: Final = _UNSET_STATUS + _LOCAL_FLAGS
_CACHE_LIMIT: Final = 256
_REPORTED_LIMIT: Final = 100
_ATTRIBUTE_CACHE_LIMIT: Final = 4096
_CACHED_STR_LIMIT: Final = 128
_VALUES_PER_KEY: Final = 256

_NO_SPAN: Final = object()
"""Neither a resource nor a scope (None is a span's scope when it has none)."""

_names: dict[str, tuple[SpanKind, bytes]] = {}
"""Encoded name and kind fields of spans (``send orders``): a service's spans have few names."""
_reported: set[str] = set()
_reported_lock = threading.Lock()


def _report(key: str, error: Exception) -> None:
    """Log a failed attribute once per key (the SDK logs it for every span)."""
    with _reported_lock:
        if key in _reported or len(_reported) >= _REPORTED_LIMIT:
            return
        _reported.add(key)
    _logger.warning("kafkascope: attribute %r cannot be encoded to OTLP, dropped: %s", key, error)


_encoded: dict[bytes, dict[str, dict[object, tuple[type, bytes]]]] = {}
"""Encoded ``KeyValue`` fields of str, int and bool attributes, by tag, key and value (with the
value's type, as ``True == 1``): most attributes repeat (system, operation, topic, partition),
so most are two lookups. A key keeps at most :data:`_VALUES_PER_KEY` values, so one whose every
value is new (a message key, an offset) soon costs no insertion and evicts nothing; the whole
cache holds at most :data:`_ATTRIBUTE_CACHE_LIMIT` fields and starts over when full."""
_key_fields: dict[str, bytes] = {}
"""Each attribute key's encoded ``KeyValue.key`` field, once it had a str or int value."""
_INT64_END: Final = 1 << 63
_cached = 0
"""Fields in :data:`_encoded` (approximate across threads: it only bounds the cache)."""


def _remember(tag: bytes, key: str, value: object, kind: type, encoded: bytes) -> None:
    global _cached
    if _cached >= _ATTRIBUTE_CACHE_LIMIT:
        _encoded.clear()
        _cached = 0
    by_key = _encoded.get(tag)
    if by_key is None:
        by_key = _encoded.setdefault(tag, {})
    known = by_key.get(key)
    if known is None:
        known = by_key.setdefault(key, {})
    if len(known) < _VALUES_PER_KEY:
        entry = (kind, encoded)
        if known.setdefault(value, entry) is entry:
            _cached += 1


def attributes(tag: bytes, values: Mapping[str, object] | None) -> list[bytes]:
    """Each attribute as a ``KeyValue`` field with ``tag``; one that fails is left out (as the
    SDK's encoder does)."""
    if values is None:
        return []
    out = []
    by_key = _encoded.get(tag, {})
    # A span's attributes are a MappingProxy over the SDK's BoundedAttributes, which walks
    # its keys under its lock and returns each value from a Python-level __getitem__; its
    # public copy() is one C-level copy of the dict underneath.
    try:
        plain = values.copy()  # type: ignore[attr-defined]
    except AttributeError:  # a mapping without copy(), or a proxy over one
        plain = None
    for key, value in (plain if isinstance(plain, dict) else values).items():
        kind = type(value)
        known = by_key.get(key)
        if known is not None and (kind is str or kind is int or kind is bool):
            hit = known.get(value)
            if hit is not None and hit[0] is kind:
                out.append(hit[1])
                continue
        cacheable = (
            len(value) <= _CACHED_STR_LIMIT  # type: ignore[arg-type]  # kind is str
            if kind is str
            else kind is int or kind is bool
        ) and (known is None or len(known) < _VALUES_PER_KEY)  # else _remember would skip
        str_or_int = kind is str or kind is int
        prefix = _key_fields.get(key) if str_or_int and type(key) is str else None
        try:
            if prefix is not None and (kind is str or 0 <= value < _INT64_END):  # type: ignore[operator]
                # A value of its own (a message key, an offset): the key's field kept encoded.
                any_value = (
                    field(b"\x0a", value.encode())  # type: ignore[union-attr]  # a str
                    if kind is str
                    else b"\x18" + _varint(value)  # type: ignore[arg-type]  # an int
                )
                encoded = field(tag, prefix + field(b"\x12", any_value))
            else:
                encoded = field(tag, key_value(key, value))
                if str_or_int and type(key) is str:
                    if len(_key_fields) >= _ATTRIBUTE_CACHE_LIMIT:
                        _key_fields.clear()
                    _key_fields[key] = field(b"\x0a", key.encode()) if key else b""
        except Exception as error:  # the SDK's encoder skips such an attribute too
            _report(str(key), error)
            continue
        if cacheable:
            _remember(tag, key, value, kind, encoded)
        out.append(encoded)
    return out


def _uint(tag: bytes, value: int | None) -> bytes:
    return tag + _varint(value) if value else b""


def _span_id(tag: bytes, span_id: int) -> bytes:
    return tag + span_id.to_bytes(8, "big")


def _status(span: ReadableSpan) -> bytes:
    status = span.status
    if status is None:
        return b""
    if status.status_code is StatusCode.UNSET and not status.description:
        return _UNSET_STATUS  # most spans: without the enum's slow value
    body = b""
    if status.description:
        body = field(b"\x12", status.description.encode())
    code = status.status_code.value
    if code:
        body += b"\x18" + _varint(code)
    return field(b"\x7a", body)


def _events(span: ReadableSpan) -> list[bytes]:
    out = []
    for event in span.events:
        parts = [b"\x09" + pack_fixed64(event.timestamp)] if event.timestamp else []
        if event.name:
            parts.append(field(b"\x12", event.name.encode()))
        parts.extend(attributes(b"\x1a", event.attributes))
        parts.append(_uint(b"\x20", event.dropped_attributes))
        out.append(field(b"\x5a", b"".join(parts)))
    return out


def _links(span: ReadableSpan) -> list[bytes]:
    out = []
    for link in span.links:
        context = link.context
        parts = [
            b"\x0a\x10" + context.trace_id.to_bytes(16, "big"),
            _span_id(b"\x12\x08", context.span_id),
        ]
        parts.extend(attributes(b"\x22", link.attributes))
        parts.append(_uint(b"\x28", link.dropped_attributes))
        parts.append(_LINK_REMOTE_FLAGS if context.is_remote else _LINK_LOCAL_FLAGS)
        out.append(field(b"\x6a", b"".join(parts)))
    return out


def span_field(span: ReadableSpan, context: SpanContext | None = None) -> bytes:
    """One span (whose context is ``context``, when the caller has it) as a field of its
    ``ScopeSpans``: what :meth:`SpanEncoder.encode_runs` joins."""
    if context is None:
        context = span.get_span_context()
        assert context is not None  # a ReadableSpan always has one
    parts = [
        b"\x0a\x10"
        + context.trace_id.to_bytes(16, "big")
        + b"\x12\x08"
        + context.span_id.to_bytes(8, "big")
    ]
    trace_state = context.trace_state
    if trace_state:
        parts.append(
            field(b"\x1a", ",".join([f"{k}={v}" for k, v in trace_state.items()]).encode())
        )
    parent: SpanContext | None = span.parent
    if parent:
        parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
    # The name and kind fields, kept per name (SpanKind's hash is a Python-level call).
    name, kind = span.name, span.kind
    named = _names.get(name)
    if named is None or named[0] is not kind:
        named = (kind, (field(b"\x2a", name.encode()) if name else b"") + _KIND[kind])
        if len(_names) < _CACHE_LIMIT:
            _names[name] = named
    parts.append(named[1])
    if start := span.start_time:
        parts.append(b"\x39" + pack_fixed64(start))
    if end := span.end_time:
        parts.append(b"\x41" + pack_fixed64(end))
    parts.extend(attributes(b"\x4a", span.attributes))
    if dropped := span.dropped_attributes:
        parts.append(b"\x50" + _varint(dropped))
    if span.events:
        parts.extend(_events(span))
    if dropped := span.dropped_events:
        parts.append(b"\x60" + _varint(dropped))
    if span.links:
        parts.extend(_links(span))
    if dropped := span.dropped_links:
        parts.append(b"\x70" + _varint(dropped))
    status = _status(span)
    if parent is not None and parent.is_remote:
        parts.append(status + _REMOTE_FLAGS)
    else:
        parts.append(_UNSET_LOCAL if status is _UNSET_STATUS else status + _LOCAL_FLAGS)
    body = b"".join(parts)
    return b"\x12" + _varint(len(body)) + body


Run = tuple[Resource, InstrumentationScope | None, Sequence[bytes]]
"""Spans of one resource and scope, each encoded by :func:`span_field`."""


def encode_resource(resource: Resource) -> bytes:
    """The body of an OTLP ``Resource``."""
    return b"".join(attributes(b"\x0a", resource.attributes))


def encode_scope(scope: InstrumentationScope | None) -> bytes:
    """The body of an OTLP ``InstrumentationScope`` (empty for no scope)."""
    if scope is None:
        return b""
    parts = []
    if scope.name:
        parts.append(field(b"\x0a", scope.name.encode()))
    if scope.version:
        parts.append(field(b"\x12", scope.version.encode()))
    parts.extend(attributes(b"\x1a", scope.attributes))
    return b"".join(parts)


class _Cache:
    """Encoded bodies by object identity; holds each object so its id is not reused."""

    def __init__(self) -> None:
        self._items: dict[int, tuple[object, bytes]] = {}
        self._lock = threading.Lock()

    def get(self, obj: object) -> bytes | None:
        hit = self._items.get(id(obj))
        return hit[1] if hit is not None and hit[0] is obj else None

    def put(self, obj: object, body: bytes) -> None:
        with self._lock:
            if len(self._items) >= _CACHE_LIMIT:
                self._items.clear()
            self._items[id(obj)] = (obj, body)


class SpanEncoder:
    """Encodes batches of spans to ``ExportTraceServiceRequest`` bytes; safe across threads."""

    def __init__(self) -> None:
        self._resources = _Cache()
        self._scopes = _Cache()

    def _resource(self, resource: Resource) -> bytes:
        body = self._resources.get(resource)
        if body is None:
            body = encode_resource(resource)
            self._resources.put(resource, body)
        return body

    def _scope(self, scope: InstrumentationScope | None) -> bytes:
        body = self._scopes.get(scope)
        if body is None:
            body = encode_scope(scope)
            self._scopes.put(scope, body)
        return body

    def encode(self, spans: Iterable[ReadableSpan]) -> bytes:
        """The ``ExportTraceServiceRequest`` carrying ``spans``, serialized."""
        runs: list[Run] = []
        # Spans of one provider and tracer come in runs: the previous span's run, while the
        # resource and scope are the same objects.
        last_resource: object = _NO_SPAN
        last_scope: object = _NO_SPAN
        last: list[bytes] = []
        for span in spans:
            resource = span.resource
            scope = span.instrumentation_scope
            if resource is not last_resource or scope is not last_scope:
                last = []
                runs.append((resource, scope, last))
                last_resource, last_scope = resource, scope
            last.append(span_field(span))
        return self.encode_runs(runs)

    def encode_runs(self, runs: Iterable[Run]) -> bytes:
        """The ``ExportTraceServiceRequest`` carrying runs of spans already encoded by
        :func:`span_field`, each run of one resource and scope, serialized: the same bytes as
        :meth:`encode` of those spans in that order."""
        # resource id -> (resource, scope id -> (scope, encoded span fields))
        groups: dict[
            int, tuple[Resource, dict[int, tuple[InstrumentationScope | None, list[bytes]]]]
        ] = {}
        # Each distinct object to the first equal one of the batch (the SDK's grouping).
        same_resource: dict[int, Resource] = {}
        equal_resource: dict[Resource, Resource] = {}
        same_scope: dict[int, InstrumentationScope | None] = {}
        equal_scope: dict[InstrumentationScope, InstrumentationScope] = {}
        for resource, scope, fields in runs:
            canonical = same_resource.get(id(resource))
            if canonical is None:
                canonical = equal_resource.setdefault(resource, resource)
                same_resource[id(resource)] = canonical
            scope_key = id(scope)
            if scope_key in same_scope:
                canonical_scope = same_scope[scope_key]
            else:
                canonical_scope = None if scope is None else equal_scope.setdefault(scope, scope)
                same_scope[scope_key] = canonical_scope
            group = groups.get(id(canonical))
            if group is None:
                group = groups[id(canonical)] = (canonical, {})
            scoped = group[1].get(id(canonical_scope))
            if scoped is None:
                scoped = group[1][id(canonical_scope)] = (canonical_scope, [])
            scoped[1].extend(fields)
        return b"".join([self._resource_spans(*group) for group in groups.values()])

    def _resource_spans(
        self,
        resource: Resource,
        scopes: dict[int, tuple[InstrumentationScope | None, list[bytes]]],
    ) -> bytes:
        parts = [field(b"\x0a", self._resource(resource))]
        for scope, spans in scopes.values():
            scope_parts = [field(b"\x0a", self._scope(scope)), *spans]
            if scope is not None and scope.schema_url:
                scope_parts.append(field(b"\x1a", scope.schema_url.encode()))
            parts.append(field(b"\x12", b"".join(scope_parts)))
        if resource.schema_url:
            parts.append(field(b"\x1a", resource.schema_url.encode()))
        return field(b"\x0a", b"".join(parts))


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """The serialized ``ExportTraceServiceRequest`` of ``spans`` (no caching across calls)."""
    return SpanEncoder().encode(spans)
