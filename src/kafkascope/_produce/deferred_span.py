"""A send span the SDK makes when its send completes.

A send span lives until the broker answers, and an SDK span holds a dozen objects the garbage
collector walks at every collection until then: with a broker slow to answer, thousands of
them. On the tracer providers ``configure()`` builds, whose sampler decides by the parent and
the trace id alone, the send span's context is decided at the send
(:meth:`~kafkascope._core.presampling.Presampler.span_context`: the ``traceparent`` the record
carries); a :class:`DeferredSpan` stands for the span until then, keeping what is set on it,
and the SDK makes the span when it ends, with the decided ids
(:class:`~kafkascope._core.presampling.DecidingIdGenerator`), the send's start time, the
attributes in the order they were set, and the events and status replayed: the span exported
is the one the SDK would have made at the send.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util import types

from kafkascope._core import presampling as _presampling
from kafkascope._core.presampling import DecidingIdGenerator
from kafkascope._core.span_in_context import with_span
from kafkascope._core.telemetry import tracer_for


def send_span(
    tracer_provider: trace.TracerProvider | None,
    name: str,
    attributes: Mapping[str, types.AttributeValue],
    links: Sequence[Link],
) -> Span:
    """The send span ``name`` under the current context, on ``tracer_provider`` (default: the
    global one): a :class:`DeferredSpan` when the provider lets its context be decided now and
    it is sampled, the non-recording span the SDK would make when it is not, else the SDK's
    span made now."""
    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    last = _presampling.sends_last_found  # for_sends(), its last answer read here for the call
    if last is not None and last[0] is provider:
        presampler = last[1]
    else:
        presampler = _presampling.for_sends(provider)
    if presampler is not None and (deciding := presampler.deciding) is not None:
        parent = otel_context.get_current()  # as the SDK's start_span reads it
        current = trace.get_current_span(parent) if parent else None  # None: nothing current
        parent_span = trace.INVALID_SPAN_CONTEXT if current is None else current.get_span_context()
        decided = presampler.span_context(parent_span)
        if decided is not None:
            span_context, root = decided
            if not span_context.trace_flags & trace.TraceFlags.SAMPLED:
                return trace.NonRecordingSpan(span_context)
            if current is not None and current.is_recording():
                # The parent (a process span) is not kept alive until the send completes: its
                # span context stands for it, which is all the SDK reads of it.
                parent = with_span(trace.NonRecordingSpan(parent_span), parent)
            tracer = tracer_for(provider)
            return DeferredSpan(
                span_context, root, tracer, deciding, name, parent, attributes, links
            )
    return tracer_for(provider).start_span(
        name,
        kind=SpanKind.PRODUCER,
        attributes=attributes,
        links=links,
        record_exception=False,
        set_status_on_exception=False,
    )


class DeferredSpan(trace.NonRecordingSpan):
    """A sampled send span before the SDK makes it (:meth:`made`, at :meth:`end`): its
    context decided, what is set on it kept; after that, the SDK's span."""

    def __init__(
        self,
        context: SpanContext,
        root: bool,
        tracer: Tracer,
        deciding: DecidingIdGenerator,
        name: str,
        parent: Context,
        attributes: Mapping[str, types.AttributeValue],
        links: Sequence[Link],
    ) -> None:
        """``attributes`` are shared (a producer's per-topic base): copied when first set."""
        super().__init__(context)
        self._start = time.time_ns()
        self._root = root
        self._tracer = tracer
        self._deciding = deciding
        self._name = name
        self._parent = parent
        self._base = attributes
        self._attributes: dict[str, types.AttributeValue] | None = None  # once one is set
        self._links = links
        self._calls: list[tuple[str, tuple[Any, ...]]] | None = None  # once one is kept
        self._span: Span | None = None

    def made(self) -> Span:
        """The SDK's span, made on the first call with the decided ids and the start time."""
        span = self._span
        if span is None:
            context = super().get_span_context()
            try:
                self._deciding.decide_span(
                    context.span_id, context.trace_id if self._root else None
                )
                span = self._tracer.start_span(
                    self._name,
                    context=self._parent,
                    kind=SpanKind.PRODUCER,
                    attributes=self._base if self._attributes is None else self._attributes,
                    links=self._links,
                    start_time=self._start,
                    record_exception=False,
                    set_status_on_exception=False,
                )
            finally:
                self._deciding.forget()  # ids a disabled tracer left untaken
            self._span = span
            if self._calls is not None:
                for method, args in self._calls:
                    getattr(span, method)(*args)
                self._calls = None
        return span

    def get_span_context(self) -> SpanContext:
        span = self._span
        return super().get_span_context() if span is None else span.get_span_context()

    def is_recording(self) -> bool:
        return True if self._span is None else self._span.is_recording()

    def set_attribute(self, key: str, value: types.AttributeValue) -> None:
        if self._span is not None:
            self._span.set_attribute(key, value)
            return
        attributes = self._attributes
        if attributes is None:
            attributes = self._attributes = dict(self._base)
        # As the SDK's span keeps them: a key set again moves to the end.
        attributes.pop(key, None)
        attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, types.AttributeValue]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(
        self, name: str, attributes: types.Attributes = None, timestamp: int | None = None
    ) -> None:
        self._later(
            "add_event", name, attributes, time.time_ns() if timestamp is None else timestamp
        )

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        self._later("add_link", context, attributes)

    def update_name(self, name: str) -> None:
        if self._span is not None:
            self._span.update_name(name)
        else:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        self._later("set_status", status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        when = time.time_ns() if timestamp is None else timestamp
        self._later("record_exception", exception, attributes, when, escaped)

    def end(self, end_time: int | None = None) -> None:
        if end_time is None:
            end_time = time.time_ns()  # before the span is made, as the SDK's end reads it
        self.made().end(end_time)

    def _later(self, method: str, *args: Any) -> None:
        if self._span is not None:
            getattr(self._span, method)(*args)
        elif self._calls is None:
            self._calls = [(method, args)]
        else:
            self._calls.append((method, args))
