"""Process spans around the application's own consumer loop, for zero-code instrumentation.

A span opened when the client hands out a record (or a batch) stays current while the loop body
runs and ends at the consumer's next call (the next record, poll, commit or close). One
:class:`ConsumerTracker` serves kafka-python, aiokafka and confluent-kafka consumers.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from kafkascope import _internal, _settings
from kafkascope._lag import observe_lag
from kafkascope._spans import ProcessOptions, ProcessScope

Described = tuple[str | None, str | None, str | None]
"""A consumer's group, bootstrap servers and client id, each None where unknown."""
Describe = Callable[[Any], Described]
"""``consumer -> (group, "host:port")`` for one client."""


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


class ConsumerState:
    """The open process span of one consumer between two calls into it."""

    __slots__ = ("__weakref__", "busy", "lag", "options", "scope")

    def __init__(self, options: ProcessOptions) -> None:
        self.options = options
        self.scope: ProcessScope | None = None
        self.lag: object | None = None
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
                )
            )
            if _settings.current().lag:
                state.lag = observe_lag(consumer, group=group, meter_provider=self.meter_provider)
        except Exception as exc:
            _internal.report("instrumented consumer", exc)
            return None
        with self._lock:
            self._states[consumer] = state
        return state

    def existing(self, consumer: Any) -> ConsumerState | None:
        """The consumer's state if it has fetched before."""
        return self._states.get(consumer)

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

    def enter_call(self, consumer: Any, fetches: bool, describe: Describe) -> ConsumerState | None:
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
    def leave_call(state: ConsumerState, result: Any, *, single: bool | None) -> None:
        """After the call: open a span for what it returned (``single`` True for one record,
        False for a batch, None when the call hands out no records)."""
        state.busy = False
        if single is None or not result or not is_instrumentation_enabled():
            return
        state.scope = state.options.begin(result) if single else state.options.begin_batch(result)
