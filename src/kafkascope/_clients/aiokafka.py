"""aiokafka: :class:`TracedAIOKafkaProducer`, and the zero-code hooks that wrap
``AIOKafkaProducer.send`` (``send_and_wait`` calls it) and its transaction methods, and the
consumer's ``__anext__``/``getone``/``getmany``/``stop``; its commits are
:mod:`.commits.aiokafka`'s.

``send()`` returns a future that the broker's acknowledgement resolves; the send span ends in that
future's done-callback, on the event loop, before any task awaiting the future resumes. The
consumer hooks are coroutines awaited in the caller's task, so the span a fetch opens is current
in the application's ``async for`` body, exactly as with kafka-python.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Final

from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider
from wrapt import wrap_function_wrapper

from kafkascope._adapters.aiokafka import bootstrap_of, client_id_of, transactional_id_of
from kafkascope._clients.commits import aiokafka as _commits
from kafkascope._clients.hooks import (
    TRANSACTION_METHODS,
    async_transaction_hooks,
    describer,
    producer_options,
    unwrap_in_place,
    wrap_in_place,
)
from kafkascope._consume.tracker import ConsumerTracker
from kafkascope._core import errors as _errors
from kafkascope._core.headers import Headers
from kafkascope._core.telemetry import parse_server, server_of_bootstrap
from kafkascope._observe.rebalance_listeners import subscribe_hook
from kafkascope._produce import transactions as _txn
from kafkascope._produce.send import ProducerWrapper, SendOptions, traced_headers
from kafkascope._produce.send_calls import send_hook

CONSUMER_METHODS: Final = {
    "__anext__": True,
    "getone": True,
    "getmany": False,
    "stop": None,
}
"""Wrapped consumer methods: True hands out one record, False a batch, None none."""
PRODUCER_METHODS: Final = ("send", *TRANSACTION_METHODS)
"""Wrapped producer methods (``transaction()`` calls the transaction methods)."""


class TracedAIOKafkaProducer(ProducerWrapper):
    """Wraps an ``aiokafka.AIOKafkaProducer``: same ``send()`` and ``send_and_wait()``.

    Each send gets a ``send {topic}`` PRODUCER span that lasts until the broker acknowledges or
    the send fails, and its context is injected into the record's headers with the global
    propagator (unless the headers already carry one). ``async with`` works as on the wrapped
    producer and yields this wrapper. With a ``transactional_id``, each commit and abort (through
    ``transaction()`` or called directly) gets a span linked to the transaction's sends (see the
    transactions guide). Every other attribute and method is the wrapped producer's
    (``send_batch()`` is not traced).

    Args:
        producer: the ``AIOKafkaProducer`` to wrap.
        server: ``"host:port"`` for ``server.address``/``server.port`` (default: the first of
            the producer's ``bootstrap_servers``).
        capture_key: record the UTF-8 message key (default: the configured setting).
        capture_headers: header names or globs to put on send spans as
            ``messaging.header.<name>`` (default: the configured setting; ``[]`` for none).
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
        capture_headers: str | Sequence[str] | None = None,
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
            transactional_id=transactional_id_of(producer),
            capture_key=capture_key,
            capture_headers=capture_headers,
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

    def transaction(self) -> _Transaction:
        """``AIOKafkaProducer.transaction()``: begins on entry, commits on a clean exit, aborts
        when the block raised, through this wrapper's traced methods."""
        return _Transaction(self)

    async def begin_transaction(self) -> Any:
        """``AIOKafkaProducer.begin_transaction``; the sends until its end are the
        transaction's."""
        return await _txn.begin_async(self._options.transactions, self._producer.begin_transaction)

    async def send_offsets_to_transaction(self, offsets: Any, group_id: Any) -> Any:
        """``AIOKafkaProducer.send_offsets_to_transaction``; the transaction's span links to the
        process spans of these offsets' messages."""
        return await _txn.send_offsets_async(
            self._options.transactions,
            offsets,
            lambda: self._producer.send_offsets_to_transaction(offsets, group_id),
        )

    async def commit_transaction(self) -> Any:
        """``AIOKafkaProducer.commit_transaction`` in a ``commit_transaction`` span."""
        return await _txn.end_async(
            self._options.transactions, True, self._producer.commit_transaction
        )

    async def abort_transaction(self) -> Any:
        """``AIOKafkaProducer.abort_transaction`` in an ``abort_transaction`` span."""
        return await _txn.end_async(
            self._options.transactions, False, self._producer.abort_transaction
        )

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


class _Transaction:
    """``async with producer.transaction():`` of a :class:`TracedAIOKafkaProducer`, as
    aiokafka's own ``TransactionContext`` does it."""

    def __init__(self, producer: TracedAIOKafkaProducer) -> None:
        self._producer = producer

    async def __aenter__(self) -> _Transaction:
        await self._producer.begin_transaction()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self._producer.commit_transaction()
            return
        manager = getattr(self._producer.wrapped, "_txn_manager", None)
        if manager is not None and manager.is_fatal_error():
            return  # as aiokafka: the block's exception propagates, no abort is attempted
        await self._producer.abort_transaction()


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
    observer = options.start(topic, key, partition, value=value, headers=headers)
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


describe = _commits.noting(describer(bootstrap_of, client_id_of))
"""Group, bootstrap servers and client id of a aiokafka consumer (noting its coordinator, whose
auto-commits are traced)."""


def instrument(tracker: ConsumerTracker) -> None:
    """Wrap aiokafka's producer and consumer."""
    options_of = producer_options(tracker, bootstrap_of, client_id_of, transactional_id_of)
    producer_hooks = {"send": send_hook(options_of, _send), **async_transaction_hooks(options_of)}

    def consumer_call(method: str, single: bool | None) -> Callable[..., Any]:
        async def wrapper(
            wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
        ) -> Any:
            return await tracker.call_async(instance, single, describe, wrapped, args, kwargs)

        return wrapper

    wrap_in_place(
        "aiokafka",
        "AIOKafkaProducer",
        producer_hooks,
        "AIOKafkaConsumer",
        CONSUMER_METHODS,
        consumer_call,
    )
    wrap_function_wrapper(
        "aiokafka", "AIOKafkaConsumer.subscribe", subscribe_hook(tracker.meter_provider)
    )
    wrap_function_wrapper(
        "aiokafka", "AIOKafkaConsumer.commit", _commits.commit_hook(tracker, describe)
    )
    _commits.instrument(tracker, describe)


def uninstrument() -> None:
    """Undo :func:`instrument`."""
    unwrap_in_place(
        "aiokafka", "AIOKafkaProducer", PRODUCER_METHODS, "AIOKafkaConsumer", CONSUMER_METHODS
    )
    import aiokafka

    unwrap(aiokafka.AIOKafkaConsumer, "subscribe")
    unwrap(aiokafka.AIOKafkaConsumer, "commit")
    _commits.uninstrument()
