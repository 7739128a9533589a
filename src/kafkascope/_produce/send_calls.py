"""Calling a client's send with its span: the zero-code ``send`` hook, with each producer
instance's :class:`~kafkascope._produce.send.SendOptions`, and a kafka-python send inside its
span, completed from the future it returns."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from kafkascope._core import errors as _errors
from kafkascope._produce.send import SendObserver, SendOptions


class OptionsOf:
    """Each producer instance's :class:`SendOptions` for zero-code instrumentation, made on its
    first traced call (``server_of`` reads its bootstrap setting, ``client_id_of`` its client id,
    ``transactional_id_of`` its transactional id), held weakly."""

    def __init__(
        self,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
        server_of: Callable[[Any], tuple[str | None, int | None]],
        client_id_of: Callable[[Any], object],
        transactional_id_of: Callable[[Any], object],
    ) -> None:
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._server_of = server_of
        self._client_id_of = client_id_of
        self._transactional_id_of = transactional_id_of
        self._producers: weakref.WeakKeyDictionary[Any, SendOptions] = weakref.WeakKeyDictionary()

    def __call__(self, producer: Any) -> SendOptions:
        """``producer``'s options (raises what reading its settings raised)."""
        options = self._producers.get(producer)
        if options is None:
            address, port = self._server_of(producer)
            options = self._producers[producer] = SendOptions(
                tracer_provider=self._tracer_provider,
                meter_provider=self._meter_provider,
                server_address=address,
                server_port=port,
                client_id=self._client_id_of(producer),
                transactional_id=self._transactional_id_of(producer),
            )
        return options


def send_hook(
    options_of: OptionsOf, traced_send: Callable[..., Any]
) -> Callable[[Callable[..., Any], Any, Any, Any], Any]:
    """A ``wrapt`` wrapper of a client's ``send`` method for zero-code instrumentation.

    ``traced_send(options, send, *args, **kwargs)`` sends with the client's signature.
    """

    def send(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        if not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        try:
            options = options_of(instance)
        except Exception as exc:
            _errors.report(f"instrumented {type(instance).__name__}.send", exc)
            return wrapped(*args, **kwargs)
        return traced_send(options, wrapped, *args, **kwargs)

    return send


def send_in_span(observer: SendObserver | None, send: Callable[[], Any]) -> Any:
    """Call ``send`` (which returns a kafka-python future) with the send span current, and
    complete the span from the future (or from the exception ``send`` raises)."""
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
            future.add_callback(observer)
            future.add_errback(observer)
        except Exception as exc:
            _errors.report("send callbacks", exc)
            observer.abandon()
    return future
