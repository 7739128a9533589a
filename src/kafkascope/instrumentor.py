"""``KafkascopeInstrumentor``: zero-code instrumentation of kafka-python for
``opentelemetry-instrument`` (entry point ``kafkascope`` in ``opentelemetry_instrumentor``).

Produce side: ``KafkaProducer.send`` is traced as :class:`~kafkascope.TracedProducer` does.
Consume side: each record returned by iterating a ``KafkaConsumer`` gets a ``process`` span that
is current while the application's loop body runs, and ends at the next ``__next__``/``poll``/
``commit``/``close`` or when the loop ends; a non-empty ``poll()`` gets one batch span with a
link per record. Options come from ``OTEL_PYTHON_KAFKASCOPE_*`` (parent policy, key capture, lag
gauge). Inside ``suppress_instrumentation()`` nothing is traced.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Collection
from typing import Any, Final

from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.utils import is_instrumentation_enabled, unwrap
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider
from wrapt import wrap_function_wrapper

from kafkascope import _internal, _settings
from kafkascope._lag import observe_lag
from kafkascope._logs import MessageLogFilter, correlate_otel_log_handlers
from kafkascope._producer import TracedProducer
from kafkascope._spans import ProcessOptions, ProcessScope

_KAFKA_PYTHON: Final = "kafka-python >= 2.1.0, < 4"
_CONSUMER_METHODS: Final = ("__next__", "poll", "commit", "close")


class _Unwrapped:
    """Presents the original ``send`` of one producer to :class:`TracedProducer`."""

    __slots__ = ("config", "send")

    def __init__(self, instance: Any, send: Callable[..., Any]) -> None:
        self.config = getattr(instance, "config", None)
        self.send = send


class _ConsumerState:
    """The open process span of one consumer between two calls into it."""

    __slots__ = ("busy", "lag", "options", "scope")

    def __init__(self, options: ProcessOptions) -> None:
        self.options = options
        self.scope: ProcessScope | None = None
        self.lag: object | None = None
        # kafka-python's __next__ calls poll() itself: only the outermost call is traced.
        self.busy = False


def _server(config: Any) -> str | None:
    servers = config.get("bootstrap_servers") if isinstance(config, dict) else None
    if isinstance(servers, list | tuple):
        servers = ",".join(str(s) for s in servers)
    return servers if isinstance(servers, str) and servers else None


class KafkascopeInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments kafka-python's producer and consumer; undone by ``uninstrument()``."""

    def __init__(self) -> None:
        self._states: weakref.WeakKeyDictionary[Any, _ConsumerState] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._log_handlers: list[logging.Handler] = []
        self._tracer_provider: TracerProvider | None = None
        self._meter_provider: MeterProvider | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        """The client versions this instrumentor supports."""
        return (_KAFKA_PYTHON,)

    def _instrument(self, **kwargs: Any) -> None:
        self._tracer_provider = kwargs.get("tracer_provider")
        self._meter_provider = kwargs.get("meter_provider")
        self._states = weakref.WeakKeyDictionary()
        # opentelemetry-instrument's logging handler (if logs are on) gets the messaging fields.
        self._log_handlers = correlate_otel_log_handlers()
        wrap_function_wrapper("kafka", "KafkaProducer.send", self._send)
        for method in _CONSUMER_METHODS:
            wrap_function_wrapper("kafka", f"KafkaConsumer.{method}", self._consumer_call(method))

    def _uninstrument(self, **kwargs: Any) -> None:
        import kafka

        unwrap(kafka.KafkaProducer, "send")
        for method in _CONSUMER_METHODS:
            unwrap(kafka.KafkaConsumer, method)
        for state in list(self._states.values()):
            self._end(state)
        for handler in self._log_handlers:
            for found in [f for f in handler.filters if isinstance(f, MessageLogFilter)]:
                handler.removeFilter(found)
        self._log_handlers = []

    # -- produce side
    def _send(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        if not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        try:
            traced = TracedProducer(
                _Unwrapped(instance, wrapped),
                tracer_provider=self._tracer_provider,
                meter_provider=self._meter_provider,
            )
        except Exception as exc:
            _internal.report("instrumented send", exc)
            return wrapped(*args, **kwargs)
        return traced.send(*args, **kwargs)

    # -- consume side
    def _state(self, consumer: Any) -> _ConsumerState | None:
        state = self._states.get(consumer)
        if state is not None:
            return state
        try:
            config = getattr(consumer, "config", {})
            group = config.get("group_id") if isinstance(config, dict) else None
            state = _ConsumerState(
                ProcessOptions(
                    group=group if isinstance(group, str) and group else None,
                    server=_server(config),
                    tracer_provider=self._tracer_provider,
                    meter_provider=self._meter_provider,
                )
            )
            if _settings.current().lag:
                state.lag = observe_lag(consumer, meter_provider=self._meter_provider)
        except Exception as exc:
            _internal.report("instrumented consumer", exc)
            return None
        with self._lock:
            self._states[consumer] = state
        return state

    @staticmethod
    def _end(state: _ConsumerState) -> None:
        scope, state.scope = state.scope, None
        if scope is not None:
            scope.finish(None)

    def _consumer_call(self, method: str) -> Callable[..., Any]:
        def wrapper(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
            state = self._states.get(instance)
            if state is not None:
                if state.busy:
                    return wrapped(*args, **kwargs)
                self._end(state)  # the previous message's processing is over
            if state is None and method in ("__next__", "poll") and is_instrumentation_enabled():
                state = self._state(instance)
            if state is None:
                return wrapped(*args, **kwargs)
            state.busy = True
            try:
                result = wrapped(*args, **kwargs)
            finally:
                state.busy = False
            if method in ("commit", "close") or not result or not is_instrumentation_enabled():
                return result
            if method == "__next__":
                state.scope = state.options.begin(result)
            else:
                state.scope = state.options.begin_batch(result)
            return result

        return wrapper
