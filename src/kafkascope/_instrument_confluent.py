"""Zero-code instrumentation of confluent-kafka.

``Producer`` and ``Consumer`` are C types whose methods cannot be wrapped in place, so
``confluent_kafka.Producer``/``Consumer`` are replaced by traced subclasses while instrumented.
``opentelemetry-instrument`` instruments before the application is imported, so
``from confluent_kafka import Consumer`` in the application gets the traced class; an
application that imported the classes before instrumenting keeps the untraced ones (wrap those
with :class:`~kafkascope.TracedConfluentProducer` and ``@traced_handler``).
"""

from __future__ import annotations

from typing import Any

from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from kafkascope import _internal
from kafkascope._consumer_tracker import ConsumerTracker, Described, description
from kafkascope._producer_confluent import TracedConfluentProducer

_originals: dict[str, type] = {}


def _config(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    config = args[0] if args and isinstance(args[0], dict) else {}
    return {**config, **kwargs}


def _describe(consumer: Any) -> Described:
    described: Described = getattr(consumer, "_kafkascope_described", (None, None, None))
    return described


def _records(result: Any) -> Any:
    """A fetched message, or the messages of a batch, without the error events."""
    if isinstance(result, list):
        return [m for m in result if m is not None and m.error() is None]
    return result if result is not None and result.error() is None else None


def instrument(tracker: ConsumerTracker) -> None:
    """Replace ``confluent_kafka.Producer`` and ``Consumer`` with traced subclasses."""
    import confluent_kafka

    producer_type: type = confluent_kafka.Producer
    consumer_type: type = confluent_kafka.Consumer
    _originals.update(Producer=producer_type, Consumer=consumer_type)

    class _ProduceOf:
        """Presents the base class's ``produce`` of one producer to the traced wrapper."""

        def __init__(self, producer: Any) -> None:
            self.produce = getattr(producer_type, "produce").__get__(producer)  # noqa: B009

    class Producer(producer_type):  # type: ignore[misc]
        """confluent_kafka.Producer, traced by kafkascope."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._kafkascope: TracedConfluentProducer | None = None
            try:
                config = _config(args, kwargs)
                servers = config.get("bootstrap.servers")
                self._kafkascope = TracedConfluentProducer(
                    _ProduceOf(self),
                    server=servers.split(",")[0] if isinstance(servers, str) and servers else None,
                    # librdkafka's own default when the configuration names none.
                    client_id=config.get("client.id") or "rdkafka",
                    on_delivery=config.get("on_delivery"),
                    tracer_provider=tracker.tracer_provider,
                    meter_provider=tracker.meter_provider,
                )
            except Exception as exc:
                _internal.report("instrumented confluent-kafka producer", exc)

        def produce(self, *args: Any, **kwargs: Any) -> Any:
            traced = self._kafkascope
            if traced is None or not is_instrumentation_enabled():
                return super().produce(*args, **kwargs)
            return traced.produce(*args, **kwargs)

    class Consumer(consumer_type):  # type: ignore[misc]
        """confluent_kafka.Consumer, traced by kafkascope."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            try:
                config = _config(args, kwargs)
                self._kafkascope_described = description(
                    config.get("group.id"),
                    config.get("bootstrap.servers"),
                    config.get("client.id") or "rdkafka",
                )
            except Exception as exc:
                _internal.report("instrumented confluent-kafka consumer", exc)

        def _traced(self, call: Any, single: bool | None, *args: Any, **kwargs: Any) -> Any:
            state = tracker.enter_call(self, single is not None, _describe)
            if state is None:
                return call(*args, **kwargs)
            try:
                result = call(*args, **kwargs)
            except BaseException:
                state.busy = False
                raise
            tracker.leave_call(state, _records(result), single=single)
            return result

        def poll(self, *args: Any, **kwargs: Any) -> Any:
            return self._traced(super().poll, True, *args, **kwargs)

        def consume(self, *args: Any, **kwargs: Any) -> Any:
            return self._traced(super().consume, False, *args, **kwargs)

        def commit(self, *args: Any, **kwargs: Any) -> Any:
            return self._traced(super().commit, None, *args, **kwargs)

        def close(self, *args: Any, **kwargs: Any) -> Any:
            return self._traced(super().close, None, *args, **kwargs)

    Producer.__module__ = Consumer.__module__ = "confluent_kafka"
    setattr(confluent_kafka, "Producer", Producer)  # noqa: B010 - the module's class is replaced
    setattr(confluent_kafka, "Consumer", Consumer)  # noqa: B010


def uninstrument() -> None:
    """Put confluent-kafka's own classes back."""
    import confluent_kafka

    for name, original in _originals.items():
        setattr(confluent_kafka, name, original)
    _originals.clear()
