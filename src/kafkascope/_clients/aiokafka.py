"""aiokafka: :class:`TracedAIOKafkaProducer`, and the zero-code hooks that wrap
``AIOKafkaProducer.send`` (``send_and_wait`` calls it) and the consumer's
``__anext__``/``getone``/``getmany``/``commit``/``stop``.

``send()`` returns a future that the broker's acknowledgement resolves; the send span ends in that
future's done-callback, on the event loop, before any task awaiting the future resumes. The
consumer hooks are coroutines awaited in the caller's task, so the span a fetch opens is current
in the application's ``async for`` body, exactly as with kafka-python.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Final

from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider
from wrapt import wrap_function_wrapper

from kafkascope._adapters.aiokafka import bootstrap_of, client_id_of
from kafkascope._clients.hooks import describer, traced_send_hook, unwrap_in_place, wrap_in_place
from kafkascope._consume.tracker import ConsumerTracker
from kafkascope._core import errors as _errors
from kafkascope._core.headers import Headers
from kafkascope._core.telemetry import parse_server, server_of_bootstrap
from kafkascope._observe.rebalance_listeners import subscribe_hook
from kafkascope._produce.send import ProducerWrapper, SendOptions, traced_headers

CONSUMER_METHODS: Final = {
    "__anext__": True,
    "getone": True,
    "getmany": False,
    "commit": None,
    "stop": None,
}
"""Wrapped consumer methods: True hands out one record, False a batch, None none."""


class TracedAIOKafkaProducer(ProducerWrapper):
    """Wraps an ``aiokafka.AIOKafkaProducer``: same ``send()`` and ``send_and_wait()``.

    Each send gets a ``send {topic}`` PRODUCER span that lasts until the broker acknowledges or
    the send fails, and its context is injected into the record's headers with the global
    propagator (unless the headers already carry one). ``async with`` works as on the wrapped
    producer and yields this wrapper. Every other attribute and method is the wrapped producer's
    (``send_batch()`` is not traced).

    Args:
        producer: the ``AIOKafkaProducer`` to wrap.
        server: ``"host:port"`` for ``server.address``/``server.port`` (default: the first of
            the producer's ``bootstrap_servers``).
        capture_key: record the UTF-8 message key (default: the configured setting).
        tracer_provider: default, the global one.
        meter_provider: default, the global one.

    Raises:
        TypeError: ``producer`` has no ``send()``, or an option has the wrong type.
        ValueError: ``server`` has an invalid port.
    """

    def __init__(
        self,
        producer: Any,
        *,
        server: str | None = None,
        capture_key: bool | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        super().__init__(
            producer,
            method="send",
            server=parse_server(server)
            if server is not None
            else server_of_bootstrap(bootstrap_of(producer)),
            client_id=client_id_of(producer),
            capture_key=capture_key,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
        )

    async def __aenter__(self) -> TracedAIOKafkaProducer:
        await self._producer.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._producer.__aexit__(exc_type, exc, tb)

    async def send(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Headers = None,
    ) -> Any:
        """Send like ``AIOKafkaProducer.send`` and return its future, traced until it resolves."""
        return await _send(
            self._options, self._producer.send, topic, value, key, partition, timestamp_ms, headers
        )

    async def send_and_wait(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Headers = None,
    ) -> Any:
        """Send like ``AIOKafkaProducer.send_and_wait``: the ``RecordMetadata``, traced."""
        future = await self.send(topic, value, key, partition, timestamp_ms, headers)
        return await future


async def _send(
    options: SendOptions,
    send: Callable[..., Any],
    topic: str,
    value: Any = None,
    key: Any = None,
    partition: int | None = None,
    timestamp_ms: int | None = None,
    headers: Headers = None,
) -> Any:
    """``AIOKafkaProducer.send``'s signature, traced by ``options``."""
    observer = options.start(topic, key, partition)
    out_headers = traced_headers(observer, headers)
    try:
        future = await send(
            topic,
            value=value,
            key=key,
            partition=partition,
            timestamp_ms=timestamp_ms,
            headers=out_headers,
        )
    except BaseException as exc:  # cancellation of send() included: nothing was sent
        if observer is not None:
            observer.failed(exc)
        raise
    if observer is not None:
        try:
            future.add_done_callback(observer.settled)
        except Exception as exc:
            _errors.report("send callbacks", exc)
            observer.abandon()
    return future


describe = describer(bootstrap_of, client_id_of)
"""Group, bootstrap servers and client id of a aiokafka consumer."""


def instrument(tracker: ConsumerTracker) -> None:
    """Wrap aiokafka's producer and consumer."""
    send = traced_send_hook(tracker, bootstrap_of, client_id_of, _send)

    def consumer_call(method: str, single: bool | None) -> Callable[..., Any]:
        async def wrapper(
            wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
        ) -> Any:
            return await tracker.call_async(instance, single, describe, wrapped, args, kwargs)

        return wrapper

    wrap_in_place(
        "aiokafka", "AIOKafkaProducer", send, "AIOKafkaConsumer", CONSUMER_METHODS, consumer_call
    )
    wrap_function_wrapper(
        "aiokafka", "AIOKafkaConsumer.subscribe", subscribe_hook(tracker.meter_provider)
    )


def uninstrument() -> None:
    """Undo :func:`instrument`."""
    unwrap_in_place("aiokafka", "AIOKafkaProducer", "AIOKafkaConsumer", CONSUMER_METHODS)
    import aiokafka

    unwrap(aiokafka.AIOKafkaConsumer, "subscribe")
