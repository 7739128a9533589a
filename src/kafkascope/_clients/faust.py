"""Faust: :class:`KafkascopeSensor`, a Faust sensor that gives each event a stream hands to an
agent a ``process {topic}`` span, and the zero-code hook that adds one to every app created.

Faust's aiokafka driver reads records on its own consumer thread (from aiokafka's fetcher, never
through ``getmany``) and hands events to the agents through queues, so the consumer hooks of
:mod:`.aiokafka` never see them. A sensor's ``on_stream_event_in``/``on_stream_event_out`` run in
the agent's own task, inside the stream's iterator, around the agent's handling of one event:
the span opened there is current in the agent's body (its logs, its sends: the aiokafka
producer hook continues the trace) and ends when the stream moves on to the next event.

This module imports Faust; it is imported only once Faust is (see
:func:`kafkascope.instrumentor`'s import hook) or by :mod:`kafkascope.faust`.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from faust.sensors.base import Sensor
from faust.types.tuples import Message
from opentelemetry.instrumentation.utils import is_instrumentation_enabled, unwrap
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider
from wrapt import wrap_function_wrapper

from kafkascope._adapters.faust import message_view, settings_of
from kafkascope._adapters.records import register_record_adapter
from kafkascope._consume.options import ProcessOptions
from kafkascope._consume.scope import ProcessScope
from kafkascope._consume.single import begin
from kafkascope._core import errors as _errors

_logger = logging.getLogger(__name__)

register_record_adapter(Message, message_view)

_FAUST_OTEL_SENSOR = "faust.contrib.opentelemetry.OpenTelemetrySensor"


class KafkascopeSensor(Sensor):  # type: ignore[misc]
    """A Faust sensor: a ``process {topic}`` CONSUMER span per event an agent handles, current
    while the agent handles it, with kafkascope's parent policy, attributes and metrics.

    Add it with :func:`kafkascope.faust.instrument_app` (or ``app.sensors.add(...)``); under
    ``opentelemetry-instrument`` every ``faust.App`` gets one when it is created.

    Args:
        app: the Faust app (its id is the consumer group; its broker and client id name the
            server and client); default: read from the first stream.
        tracer_provider: default, the global one.
        meter_provider: default, the global one.
        **kwargs: for Faust's ``Sensor`` (a mode ``Service``).
    """

    def __init__(
        self,
        *,
        app: Any = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self._app = app
        self._options: ProcessOptions | None = None
        # The open span of each stream: a stream that does not acknowledge (``noack()``) gets
        # no on_stream_event_out, so its span ends when its next event comes in.
        self._open: weakref.WeakKeyDictionary[Any, ProcessScope] = weakref.WeakKeyDictionary()

    def _options_for(self, stream: Any) -> ProcessOptions:
        group, server, client_id = settings_of(self._app or getattr(stream, "app", None))
        options = ProcessOptions(
            group=group,
            server=server,
            client_id=client_id,
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
        )
        self._options = options
        return options

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        """An agent's stream took an event: its process span starts and becomes current."""
        try:
            previous = self._open.pop(stream, None)
            if previous is not None:
                previous.finish(None)
            if not is_instrumentation_enabled():
                return
            options = self._options or self._options_for(stream)
            scope = begin(options, event.message)
            if scope is not None:
                self._open[stream] = scope
        except Exception as exc:
            _errors.report("Faust stream event", exc)

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        """The agent is done with the event (the stream acknowledged it): the span ends."""
        try:
            scope = self._open.pop(stream, None)
            if scope is not None:
                scope.finish(None)
        except Exception as exc:
            _errors.report("Faust stream event", exc)

    async def on_start(self) -> None:
        """Warn when Faust's own OpenTelemetry sensor is registered too (two process spans
        per event)."""
        app = self._app
        if app is None:
            return
        found = [s for s in list(app.sensors) if _qualname(s) == _FAUST_OTEL_SENSOR]
        if found:
            _logger.warning(
                "kafkascope: Faust's OpenTelemetrySensor (faust.contrib.opentelemetry) is "
                "registered beside kafkascope's sensor: each event gets two process spans; "
                "remove setup_opentelemetry(app) to keep kafkascope's only"
            )


def _qualname(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def instrument_app(
    app: Any,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> KafkascopeSensor:
    """Add a :class:`KafkascopeSensor` to ``app`` (a ``faust.App``), once: the sensor already
    added is returned."""
    for sensor in list(app.sensors):
        if isinstance(sensor, KafkascopeSensor):
            return sensor
    sensor = KafkascopeSensor(
        app=app, tracer_provider=tracer_provider, meter_provider=meter_provider
    )
    app.sensors.add(sensor)
    return sensor


def keep_log_handlers(app: Any, handlers: Sequence[logging.Handler]) -> None:
    """Hand ``handlers`` (``opentelemetry-instrument``'s log handlers on the root logger) to
    ``app``'s ``loghandlers`` setting: a Faust worker replaces the root logger's handlers with
    its own when it starts and adds back only those."""
    if not handlers:
        return
    present = list(app.conf.loghandlers or ())
    missing = [h for h in handlers if h not in present]
    if missing:
        app.conf.loghandlers = [*present, *missing]


def instrument(
    tracer_provider: TracerProvider | None,
    meter_provider: MeterProvider | None,
    log_handlers: Sequence[logging.Handler] = (),
) -> None:
    """Wrap ``faust.App.__init__``: every app created gets a :class:`KafkascopeSensor`, and
    its worker keeps ``log_handlers`` (see :func:`keep_log_handlers`)."""

    def created(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        result = wrapped(*args, **kwargs)
        try:
            instrument_app(instance, tracer_provider=tracer_provider, meter_provider=meter_provider)
            keep_log_handlers(instance, log_handlers)
        except Exception as exc:
            _errors.report("Faust app sensor", exc)
        return result

    wrap_function_wrapper("faust.app.base", "App.__init__", created)


def uninstrument() -> None:
    """Undo :func:`instrument` (apps created before keep their sensor)."""
    from faust.app.base import App

    unwrap(App, "__init__")
