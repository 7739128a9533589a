"""Asking the sampler before the SDK does, on the tracer providers ``configure()`` builds.

A span the sampler drops costs the SDK's ``start_span`` about as much as the rest of an
unsampled message's work. When the sampler may drop a span, :meth:`Presampler.start` asks it
first, through the public ``Sampler.should_sample``, with exactly what ``start_span`` would pass,
and makes the same non-recording span ``start_span`` would make (same trace id, a new span id,
the same trace flags and trace state). When the sampler keeps the span, the SDK makes it: for a
root span, the trace id the sampler was shown is handed to the SDK by
:class:`DecidingIdGenerator`, so the SDK's own call of the sampler sees the same trace id and
decides the same.

Only for providers whose sampler is one of the SDK's built-in ones (their decision depends on
the parent and the trace id alone, so asking twice changes nothing) and whose id generator is a
:class:`DecidingIdGenerator`: ``configure()`` registers those. Not when the SDK's own span
metrics are on (``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED``): they count dropped spans too.
"""

from __future__ import annotations

import random
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Decision, Sampler, TraceIdRatioBased
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, TraceFlags, TracerProvider
from opentelemetry.util.types import Attributes

from kafkascope._core.telemetry import tracer_for

_SAMPLED_BIT = TraceFlags.SAMPLED
_RANDOM_BIT = TraceFlags.RANDOM_TRACE_ID
_DROPPED = TraceFlags(TraceFlags.DEFAULT)
_DROPPED_RANDOM = TraceFlags(TraceFlags.DEFAULT | TraceFlags.RANDOM_TRACE_ID)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_SAMPLED_RANDOM = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
_LOW_BITS = TraceIdRatioBased.TRACE_ID_LIMIT
_NO_PARENT = Context()  # not None: the SDK would read the current context for the parent
_PROBE_STATE = trace.TraceState([("probe", "1")])
_PROBE_PARENT = trace.set_span_in_context(
    trace.NonRecordingSpan(
        trace.SpanContext(1, 1, True, TraceFlags(TraceFlags.SAMPLED), _PROBE_STATE)
    )
)


def ratio_bound(sampler: Sampler | None) -> int | None:
    """The public ``bound`` of the SDK's own ``TraceIdRatioBased`` (not a subclass), when its
    decisions are "sampled if the trace id's low 64 bits are below ``bound``, with the parent's
    trace state": checked against its ``should_sample`` on ids either side of the bound, so an
    SDK that decides otherwise is asked every time instead. None for any other sampler."""
    if type(sampler) is not TraceIdRatioBased:
        return None
    bound: int = sampler.bound
    probes = {0, 1, _LOW_BITS, bound - 1, bound, bound + 1, (7 << 64) | bound, (7 << 64) | 5}
    for trace_id in (p for p in probes if 0 <= p < 1 << 128):
        rule = (trace_id & _LOW_BITS) < bound
        for parent, state in ((_NO_PARENT, None), (_PROBE_PARENT, _PROBE_STATE)):
            result = sampler.should_sample(parent, trace_id, "probe")
            if (result.decision is not Decision.DROP) != rule or result.trace_state is not state:
                return None
    return bound


def _decision_of(sampler: Sampler | None) -> tuple[Sampler | None, int | None]:
    """A decider with the bound that decides for it, when one does: 0 for ``ALWAYS_OFF`` (it
    drops everything, with the parent's trace state), a ratio sampler's :func:`ratio_bound`."""
    return sampler, 0 if sampler is ALWAYS_OFF else ratio_bound(sampler)


class _Decided(threading.local):
    # Class defaults: reading them unset raises nothing.
    trace_id: int | None = None
    span_id: int | None = None


class DecidingIdGenerator(IdGenerator):
    """``inner``'s ids, except that the next trace id and span id of a thread can be decided
    beforehand (:meth:`decide`, :meth:`decide_span`): the trace id a presampled root span was
    sampled with, the ids a send span's ``traceparent`` carried before the SDK made the span."""

    def __init__(self, inner: IdGenerator) -> None:
        self.inner = inner
        self._decided = _Decided()
        # The SDK's own generator draws from the random module: drawn here the same way (the
        # same calls, so the same ids for the same seed), without its method call.
        self._drawn = type(inner) is RandomIdGenerator

    def decide(self, trace_id: int) -> None:
        """Make ``trace_id`` this thread's next trace id."""
        self._decided.trace_id = trace_id

    def decide_span(self, span_id: int, trace_id: int | None = None) -> None:
        """Make ``span_id`` this thread's next span id (and ``trace_id``, when given, its next
        trace id)."""
        decided = self._decided
        decided.span_id = span_id
        if trace_id is not None:
            decided.trace_id = trace_id

    def forget(self) -> None:
        """Drop this thread's decided ids that no span took."""
        self._decided.trace_id = None
        self._decided.span_id = None

    def generate_trace_id(self) -> int:
        """The decided trace id if there is one (once), else a new one from ``inner``."""
        decided = self._decided.trace_id
        if decided is not None:
            self._decided.trace_id = None
            return decided
        if self._drawn:
            trace_id = random.getrandbits(128)
            while not trace_id:  # the invalid id
                trace_id = random.getrandbits(128)
            return trace_id
        return self.inner.generate_trace_id()

    def generate_span_id(self) -> int:
        """The decided span id if there is one (once), else a new one from ``inner``."""
        decided = self._decided.span_id
        if decided is not None:
            self._decided.span_id = None
            return decided
        if self._drawn:
            span_id = random.getrandbits(64)
            while not span_id:  # the invalid id
                span_id = random.getrandbits(64)
            return span_id
        return self.inner.generate_span_id()

    def is_trace_id_random(self) -> bool:
        """Whether ``inner``'s trace ids are random (so are the decided ones: they are its)."""
        return True if self._drawn else self.inner.is_trace_id_random()


@dataclass(frozen=True)
class Deciders:
    """The sampler that decides each kind of span where the provider's sampler may drop it,
    None where it keeps every such span: for a parent-based sampler, its delegates (the root
    sampler; ``ALWAYS_OFF`` under an unsampled parent), which decide exactly as it does."""

    roots: Sampler | None
    under_sampled_parent: Sampler | None
    under_unsampled_parent: Sampler | None

    @property
    def drop_nothing(self) -> bool:
        """The sampler keeps every span: nothing to presample."""
        return (self.roots, self.under_sampled_parent, self.under_unsampled_parent) == (
            None,
            None,
            None,
        )


class Presampler:
    """The sampler of one tracer provider, asked first."""

    __slots__ = (
        "_deciding",
        "_drawn",
        "_ids",
        "_random_roots",
        "_roots",
        "_sampled",
        "_unsampled",
    )

    def __init__(self, deciders: Deciders, id_generator: IdGenerator) -> None:
        """``id_generator`` is the provider's: a :class:`DecidingIdGenerator` when root spans
        may be dropped."""
        deciding = id_generator if isinstance(id_generator, DecidingIdGenerator) else None
        if deciders.roots is not None and deciding is None:
            raise ValueError("presampling root spans needs the provider's DecidingIdGenerator")
        # The generator behind the provider's (a decided trace id is only for the SDK).
        self._ids = deciding.inner if deciding is not None else id_generator
        # The SDK's own generator draws from the random module: drawn here the same way (the
        # same calls, so the same ids for the same seed), without its two method calls.
        self._drawn = type(self._ids) is RandomIdGenerator
        self._deciding = deciding
        self._random_roots = self._ids.is_trace_id_random()
        self._roots = _decision_of(deciders.roots)
        self._sampled = _decision_of(deciders.under_sampled_parent)
        self._unsampled = _decision_of(deciders.under_unsampled_parent)

    def start(
        self,
        name: str,
        context: Context,
        kind: SpanKind,
        attributes: Attributes,
        links: Sequence[Link],
        parent_span: SpanContext | None = None,
    ) -> Span | None:
        """The non-recording span ``start_span(name, context, kind, attributes, links)`` would
        return, when the sampler drops it; None when the SDK is to make the span.
        ``parent_span``: the parent's span context, when the caller knows it is a valid one:
        ``context`` is then not read for it and may lack it (the SDK puts a parsed
        ``traceparent`` there; kafkascope's scan leaves that to those who need it)."""
        if parent_span is not None:
            parent = parent_span
            root = False
        else:
            # An empty context (a message without trace headers, nothing current) holds no
            # span, and a context with no span gives INVALID_SPAN: a root either way, known
            # without reading its context's is_valid property.
            current = trace.get_current_span(context) if context else trace.INVALID_SPAN
            parent = trace.INVALID_SPAN_CONTEXT
            root = current is trace.INVALID_SPAN
            if not root:
                parent = current.get_span_context()
                root = not parent.is_valid
        if root:
            decider, bound = self._roots
            if decider is None:
                return None
            trace_id = random.getrandbits(128) if self._drawn else 0
            if not trace_id:  # not drawn here, or the invalid id, which the generator redraws
                trace_id = self._ids.generate_trace_id()
            random_id = self._random_roots
        else:
            # The flags' bits read directly: their properties are a call each.
            flags = parent.trace_flags
            decider, bound = self._sampled if flags & _SAMPLED_BIT else self._unsampled
            if decider is None:
                return None
            trace_id = parent.trace_id
            random_id = bool(flags & _RANDOM_BIT)
        if bound is not None:
            if (trace_id & _LOW_BITS) < bound:  # recorded: the SDK makes the span
                if root and self._deciding is not None:
                    self._deciding.decide(trace_id)
                return None
            # What the sampler returns, without building it: drop, with the parent's state.
            trace_state = None if root else parent.trace_state
        else:
            if parent_span is not None:  # the sampler may read the parent's trace state there
                context = trace.set_span_in_context(trace.NonRecordingSpan(parent_span), context)
            result = decider.should_sample(context, trace_id, name, kind, attributes, links)
            if result.decision is not Decision.DROP:  # recorded: the SDK makes the span
                if root and self._deciding is not None:
                    self._deciding.decide(trace_id)
                return None
            trace_state = result.trace_state
        span_id = random.getrandbits(64) if self._drawn else 0
        if not span_id:
            span_id = self._ids.generate_span_id()
        return trace.NonRecordingSpan(
            trace.SpanContext(
                trace_id, span_id, False, _DROPPED_RANDOM if random_id else _DROPPED, trace_state
            )
        )

    @property
    def deciding(self) -> DecidingIdGenerator | None:
        """The provider's id generator, when it takes decided ids."""
        return self._deciding

    def span_context(self, parent: SpanContext) -> tuple[SpanContext, bool] | None:
        """The span context ``start_span`` would give a new span under a parent of span
        context ``parent`` (invalid: none; a new trace id for a root, a new span id, the
        sampler's decision in its flags, the parent's trace state), and whether it is a root.
        None when the sampler must be asked for the decision or the provider's ids cannot be
        decided beforehand."""
        if self._deciding is None:
            return None
        root = not parent.is_valid
        if root:
            decider, bound = self._roots
            trace_id = random.getrandbits(128) if self._drawn else 0
            if not trace_id:
                trace_id = self._ids.generate_trace_id()
            random_id = self._random_roots
            trace_state = None
        else:
            flags = parent.trace_flags
            decider, bound = self._sampled if flags & _SAMPLED_BIT else self._unsampled
            trace_id = parent.trace_id
            random_id = bool(flags & _RANDOM_BIT)
            trace_state = parent.trace_state
        if decider is None:  # the sampler keeps every such span
            sampled = True
        elif bound is not None:
            sampled = (trace_id & _LOW_BITS) < bound
        else:
            return None
        span_id = random.getrandbits(64) if self._drawn else 0
        if not span_id:
            span_id = self._ids.generate_span_id()
        if sampled:
            decided = _SAMPLED_RANDOM if random_id else _SAMPLED
        else:
            decided = _DROPPED_RANDOM if random_id else _DROPPED
        return trace.SpanContext(trace_id, span_id, False, decided, trace_state), root


_registry: weakref.WeakKeyDictionary[TracerProvider, Presampler] = weakref.WeakKeyDictionary()
_for_sends: weakref.WeakKeyDictionary[TracerProvider, Presampler] = weakref.WeakKeyDictionary()
last_found: tuple[TracerProvider, Presampler | None] | None = None
"""The provider :func:`for_provider` was last asked about, and its answer: the per-message
paths read it first, for the call."""


def register(tracer_provider: TracerProvider, presampler: Presampler) -> None:
    """Presample the spans kafkascope starts on ``tracer_provider``."""
    global last_found
    _registry[tracer_provider] = presampler
    last_found = None


sends_last_found: tuple[TracerProvider, Presampler | None] | None = None
"""The provider :func:`for_sends` was last asked about, and its answer: the send path reads it
first, for the call."""


def register_sends(tracer_provider: TracerProvider, presampler: Presampler) -> None:
    """Decide the span context of the send spans kafkascope starts on ``tracer_provider`` at
    the send, the SDK's span made when the send completes (``_produce.deferred_span``)."""
    global sends_last_found
    _for_sends[tracer_provider] = presampler
    sends_last_found = None


def for_sends(tracer_provider: TracerProvider) -> Presampler | None:
    """What decides ``tracer_provider``'s send spans at the send (:func:`register_sends`)."""
    global sends_last_found
    found = _for_sends.get(tracer_provider)
    sends_last_found = (tracer_provider, found)
    return found


def for_provider(tracer_provider: TracerProvider | None) -> Presampler | None:
    """The presampler of ``tracer_provider`` (default: the global one), if it has one."""
    global last_found
    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    last = last_found
    if last is not None and last[0] is provider:
        return last[1]
    found = _registry.get(provider)
    last_found = (provider, found)
    return found


def start_span(
    tracer_provider: TracerProvider | None,
    name: str,
    context: Context,
    kind: SpanKind,
    attributes: Attributes,
    links: Sequence[Link],
) -> Span:
    """kafkascope's span ``name`` on ``tracer_provider`` (default: the global one): the
    presampler's non-recording span when the provider has one and the sampler drops the span
    (:meth:`Presampler.start`), else the SDK's (:func:`sdk_span`)."""
    presampler = for_provider(tracer_provider)
    if presampler is not None:
        span = presampler.start(name, context, kind, attributes, links)
        if span is not None:
            return span
    return sdk_span(tracer_provider, name, context, kind, attributes, links)


def sdk_span(
    tracer_provider: TracerProvider | None,
    name: str,
    context: Context,
    kind: SpanKind,
    attributes: Attributes,
    links: Sequence[Link],
) -> Span:
    """The SDK's span ``name`` on ``tracer_provider`` (default: the global one), which records
    no exception by itself: kafkascope records errors."""
    return tracer_for(tracer_provider).start_span(
        name,
        context=context,
        kind=kind,
        attributes=attributes,
        links=links,
        record_exception=False,
        set_status_on_exception=False,
    )
