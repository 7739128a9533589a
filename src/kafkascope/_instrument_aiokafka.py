"""Zero-code instrumentation of aiokafka: ``AIOKafkaProducer.send`` (``send_and_wait`` calls
it) and the consumer's ``__anext__``/``getone``/``getmany``/``commit``/``stop``.

The wrappers are coroutines awaited in the caller's task, so the span a fetch opens is current
in the application's ``async for`` body, exactly as with kafka-python.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from opentelemetry.instrumentation.utils import is_instrumentation_enabled, unwrap
from wrapt import wrap_function_wrapper

from kafkascope import _internal
from kafkascope._consumer_tracker import ConsumerTracker, Described, description
from kafkascope._producer_aiokafka import TracedAIOKafkaProducer

CONSUMER_METHODS: Final = {
    "__anext__": True,
    "getone": True,
    "getmany": False,
    "commit": None,
    "stop": None,
}


class _Unwrapped:
    """Presents the original ``send`` of one producer to :class:`TracedAIOKafkaProducer`."""

    __slots__ = ("client", "send")

    def __init__(self, instance: Any, send: Callable[..., Any]) -> None:
        self.client = getattr(instance, "client", None)
        self.send = send


def describe(consumer: Any) -> Described:
    """Group, bootstrap servers and client id of an ``AIOKafkaConsumer``."""
    client = getattr(consumer, "_client", None)
    return description(
        getattr(consumer, "_group_id", None),
        getattr(client, "_bootstrap_servers", None),
        getattr(client, "_client_id", None),
    )


def instrument(tracker: ConsumerTracker) -> None:
    """Wrap aiokafka's producer and consumer."""

    def send(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        if not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        try:
            traced = TracedAIOKafkaProducer(
                _Unwrapped(instance, wrapped),
                tracer_provider=tracker.tracer_provider,
                meter_provider=tracker.meter_provider,
            )
        except Exception as exc:
            _internal.report("instrumented aiokafka send", exc)
            return wrapped(*args, **kwargs)
        return traced.send(*args, **kwargs)

    def consumer_call(single: bool | None) -> Callable[..., Any]:
        async def wrapper(
            wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
        ) -> Any:
            state = tracker.enter_call(instance, single is not None, describe)
            if state is None:
                return await wrapped(*args, **kwargs)
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException:
                state.busy = False
                raise
            tracker.leave_call(state, result, single=single)
            return result

        return wrapper

    wrap_function_wrapper("aiokafka", "AIOKafkaProducer.send", send)
    for method, single in CONSUMER_METHODS.items():
        wrap_function_wrapper("aiokafka", f"AIOKafkaConsumer.{method}", consumer_call(single))


def uninstrument() -> None:
    """Undo :func:`instrument`."""
    import aiokafka

    unwrap(aiokafka.AIOKafkaProducer, "send")
    for method in CONSUMER_METHODS:
        unwrap(aiokafka.AIOKafkaConsumer, method)
