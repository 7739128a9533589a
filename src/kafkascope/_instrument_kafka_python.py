"""Zero-code instrumentation of kafka-python: ``KafkaProducer.send`` and the consumer's
``__next__``/``poll``/``commit``/``close``, wrapped in place (and unwrapped the same way)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from opentelemetry.instrumentation.utils import is_instrumentation_enabled, unwrap
from wrapt import wrap_function_wrapper

from kafkascope import _internal
from kafkascope._consumer_tracker import ConsumerTracker, Described, description
from kafkascope._producer import TracedProducer

CONSUMER_METHODS: Final = {"__next__": True, "poll": False, "commit": None, "close": None}
"""Wrapped consumer methods: True hands out one record, False a batch, None none."""


class _Unwrapped:
    """Presents the original ``send`` of one producer to :class:`TracedProducer`."""

    __slots__ = ("config", "send")

    def __init__(self, instance: Any, send: Callable[..., Any]) -> None:
        self.config = getattr(instance, "config", None)
        self.send = send


def describe(consumer: Any) -> Described:
    """Group, bootstrap servers and client id of a ``KafkaConsumer``."""
    config = getattr(consumer, "config", None)
    if not isinstance(config, dict):
        return None, None, None
    return description(
        config.get("group_id"), config.get("bootstrap_servers"), config.get("client_id")
    )


def instrument(tracker: ConsumerTracker) -> None:
    """Wrap kafka-python's producer and consumer."""

    def send(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        if not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        try:
            traced = TracedProducer(
                _Unwrapped(instance, wrapped),
                tracer_provider=tracker.tracer_provider,
                meter_provider=tracker.meter_provider,
            )
        except Exception as exc:
            _internal.report("instrumented send", exc)
            return wrapped(*args, **kwargs)
        return traced.send(*args, **kwargs)

    def consumer_call(single: bool | None) -> Callable[..., Any]:
        def wrapper(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
            state = tracker.enter_call(instance, single is not None, describe)
            if state is None:
                return wrapped(*args, **kwargs)
            try:
                result = wrapped(*args, **kwargs)
            except BaseException:
                state.busy = False
                raise
            tracker.leave_call(state, result, single=single)
            return result

        return wrapper

    wrap_function_wrapper("kafka", "KafkaProducer.send", send)
    for method, single in CONSUMER_METHODS.items():
        wrap_function_wrapper("kafka", f"KafkaConsumer.{method}", consumer_call(single))


def uninstrument() -> None:
    """Undo :func:`instrument`."""
    import kafka

    unwrap(kafka.KafkaProducer, "send")
    for method in CONSUMER_METHODS:
        unwrap(kafka.KafkaConsumer, method)
