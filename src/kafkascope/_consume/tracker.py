"""Process spans around the application's own consumer loop, for zero-code instrumentation.

A span opened when the client hands out a record (or a batch) stays current while the loop body
runs and ends at the consumer's next call (the next record, poll, commit or close). One
:class:`ConsumerTracker` serves kafka-python, aiokafka and confluent-kafka consumers.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from kafkascope._adapters.kafka_python import cluster_id_of
from kafkascope._adapters.offsets import Committed
from kafkascope._consume.batch import begin_batch
from kafkascope._consume.commit import CommitScope, Unsettled
from kafkascope._consume.options import ProcessOptions
from kafkascope._consume.scope import ProcessScope
from kafkascope._consume.single import begin
from kafkascope._core import errors as _errors
from kafkascope._core import semconv as sc
from kafkascope._core import settings as _settings
from kafkascope._observe.lag import observe_lag

Described = tuple[str | None, str | None, str | None]
"""A consumer's group, bootstrap servers and client id, each None where unknown."""
Describe = Callable[[Any], Described]
"""``consumer -> (group, "host:port", client id)`` for one client."""


def description(group: object, servers: object, client_id: object = None) -> Described:
    """``(group, "host:port,...", client id)`` from a client's raw settings, dropping what is
    not text."""
    if isinstance(servers, list | tuple):
        servers = ",".join(str(s) for s in servers)
    return (
        group if isinstance(group, str) else None,
        servers if isinstance(servers, str) else None,
        client_id if isinstance(client_id, str) else None,
    )


def _as_is(result: Any) -> Any:
    return result


class ConsumerState:
    """The open process span of one consumer between two calls into it."""

    __slots__ = ("__weakref__", "busy", "lag", "options", "scope", "unsettled")

    def __init__(self, options: ProcessOptions, unsettled: Unsettled | None = None) -> None:
        self.options = options
        self.scope: ProcessScope | None = None
        self.lag: object | None = None
        # The process spans a commit will link to; None with commit spans off.
        self.unsettled = unsettled
        # Clients call their own public methods (kafka-python's __next__ calls poll(),
        # aiokafka's __anext__ getone()): only the outermost call is traced.
        self.busy = False


class ConsumerTracker:
    """Per-consumer state, created on the consumer's first fetch and held weakly."""

    def __init__(
        self, tracer_provider: TracerProvider | None, meter_provider: MeterProvider | None
    ) -> None:
        self._states: weakref.WeakKeyDictionary[Any, ConsumerState] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider

    def state(self, consumer: Any, describe: Describe) -> ConsumerState | None:
        """The consumer's state, created (with its lag gauge) on first use; None on failure."""
        found = self._states.get(consumer)
        if found is not None:
            return found
        try:
            group, server, client_id = describe(consumer)
            state = ConsumerState(
                ProcessOptions(
                    group=group or None,
                    server=server or None,
                    client_id=client_id,
                    tracer_provider=self.tracer_provider,
                    meter_provider=self.meter_provider,
                ),
                Unsettled() if _settings.current().commit_spans else None,
            )
            if _settings.current().lag:
                state.lag = observe_lag(consumer, group=group, meter_provider=self.meter_provider)
        except Exception as exc:
            _errors.report("instrumented consumer", exc)
            return None
        with self._lock:
            self._states[consumer] = state
        return state

    @staticmethod
    def end(state: ConsumerState) -> None:
        """End the open span (the previous record's processing is over)."""
        scope, state.scope = state.scope, None
        if scope is not None:
            scope.finish(None)

    def end_all(self) -> None:
        """End every open span (uninstrumenting)."""
        for state in list(self._states.values()):
            self.end(state)

    def call(
        self,
        consumer: Any,
        single: bool | None,
        describe: Describe,
        call: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        records: Callable[[Any], Any] = _as_is,
    ) -> Any:
        """``call(*args, **kwargs)`` on ``consumer``, then a span for the records it handed out
        (``single`` True for one record, False for a batch, None for a call that hands out
        none); ``records`` picks them from the call's result."""
        state = self._enter(consumer, single is not None, describe)
        if state is None:
            return call(*args, **kwargs)
        try:
            result = call(*args, **kwargs)
        finally:
            state.busy = False
        self._open(state, records(result), single, consumer)
        return result

    async def call_async(
        self,
        consumer: Any,
        single: bool | None,
        describe: Describe,
        call: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """:meth:`call` for a coroutine method, awaited in the caller's task."""
        state = self._enter(consumer, single is not None, describe)
        if state is None:
            return await call(*args, **kwargs)
        try:
            result = await call(*args, **kwargs)
        finally:
            state.busy = False
        self._open(state, result, single, consumer)
        return result

    def commit_scope(
        self,
        consumer: Any,
        describe: Describe,
        trigger: str,
        offsets: list[Committed] | None = None,
    ) -> CommitScope | None:
        """Open a commit of ``consumer`` (``trigger``: the application's or an auto-commit);
        None when commit spans are off or instrumentation is suppressed."""
        if not _settings.current().commit_spans or not is_instrumentation_enabled():
            return None
        state = self.state(consumer, describe)
        if state is None:
            return None
        return CommitScope(state.options, state.unsettled, trigger, offsets)

    def _enter(self, consumer: Any, fetches: bool, describe: Describe) -> ConsumerState | None:
        """Before a call into ``consumer``: end its open span; return the state to trace this
        call with, or None when the call is nested in another traced call or not traced."""
        state = self._states.get(consumer)
        if state is not None:
            if state.busy:
                return None
            self.end(state)
        if state is None and fetches and is_instrumentation_enabled():
            state = self.state(consumer, describe)
        if state is not None:
            state.busy = True
        return state

    @staticmethod
    def _open(state: ConsumerState, result: Any, single: bool | None, consumer: Any) -> None:
        if single is None or not result or not is_instrumentation_enabled():
            return
        scope = begin(state.options, result) if single else begin_batch(state.options, result)
        state.scope = scope
        if scope is None:
            return
        if state.unsettled is not None:
            state.unsettled.note(scope.records, scope.span)
        if scope.span.is_recording():
            cluster = cluster_id_of(consumer)
            if cluster is not None:
                scope.span.set_attribute(sc.MESSAGING_KAFKA_CLUSTER_ID, cluster)
