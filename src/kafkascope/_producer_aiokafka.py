"""``TracedAIOKafkaProducer``: an aiokafka ``AIOKafkaProducer`` whose sends are traced.

``send()`` returns a future that the broker's acknowledgement resolves; the send span ends in that
future's done-callback, on the event loop, before any task awaiting the future resumes.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from kafkascope import _internal
from kafkascope._carrier import Headers
from kafkascope._producer import ProducerWrapper, server_of_bootstrap, traced_headers
from kafkascope._spans import parse_server


class TracedAIOKafkaProducer(ProducerWrapper):
    """Wraps an ``aiokafka.AIOKafkaProducer``: same ``send()`` and ``send_and_wait()``.

    Each send gets a ``send {topic}`` PRODUCER span that lasts until the broker acknowledges or
    the send fails, and its context is injected into the record's headers with the global
    propagator, replacing any propagation headers already there. ``async with`` works as on the
    wrapped producer and yields this wrapper. Every other attribute and method is the wrapped
    producer's (``send_batch()`` is not traced).

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
        if server is not None:
            address, port = parse_server(server)
        else:
            client = getattr(producer, "client", None)
            address, port = server_of_bootstrap(getattr(client, "_bootstrap_servers", None))
        super().__init__(
            producer,
            method="send",
            server=(address, port),
            # aiokafka keeps the client id only on its client, as a private attribute.
            client_id=getattr(getattr(producer, "client", None), "_client_id", None),
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
        observer = self._options.start(topic, key, partition)
        out_headers = traced_headers(observer, headers)
        try:
            future = await self._producer.send(
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
                _internal.report("send callbacks", exc)
                observer.done(None)
        return future

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
