"""confluent-kafka: :class:`TracedConfluentProducer`, and the zero-code hooks.

confluent-kafka reports each message's outcome to a delivery callback, called from ``poll()`` or
``flush()`` on the caller's thread; the send span ends there. confluent-kafka itself is only
imported when a delivery fails or the instrumentor runs, so kafkascope does not depend on it.

``Producer`` and ``Consumer`` are C types whose methods cannot be wrapped in place, so the
instrumentor replaces ``confluent_kafka.Producer``/``Consumer`` with traced subclasses while it is
active. ``opentelemetry-instrument`` instruments before the application is imported, so
``from confluent_kafka import Consumer`` in the application gets the traced class; an
application that imported the classes before instrumenting keeps the untraced ones (wrap those
with :class:`~kafkascope.TracedConfluentProducer` and ``@traced_handler``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from kafkascope._adapters.confluent import (
    DESCRIBED,
    ConfluentSnapshot,
    error_name,
    exception_of,
    kafka_error_name,
)
from kafkascope._clients.commits import confluent as _commits
from kafkascope._consume.tracker import ConsumerTracker, Described, description
from kafkascope._core import errors as _errors
from kafkascope._core import settings as _settings
from kafkascope._core.headers import Headers
from kafkascope._core.telemetry import parse_server
from kafkascope._observe.client_statistics import ConfluentStatistics, confluent_client_args
from kafkascope._observe.rebalance_listeners import confluent_subscribe_args
from kafkascope._produce import transactions as _txn
from kafkascope._produce.send import ProducerWrapper, SendObserver, traced_headers

DeliveryCallback = Callable[[Any, Any], object]
"""``(err, msg)``: confluent-kafka's delivery report callback."""


class TracedConfluentProducer(ProducerWrapper):
    """Wraps a ``confluent_kafka.Producer``: same ``produce()`` signature and behaviour.

    Each ``produce()`` gets a ``send {topic}`` PRODUCER span that lasts until its delivery
    report (served by ``poll()`` or ``flush()``); a failed delivery is recorded on the span, with
    librdkafka's error name (``MSG_SIZE_TOO_LARGE``, ``_MSG_TIMED_OUT``, ...) as ``error.type``.
    The span's context is injected into the message headers with the global propagator,
    replacing any propagation headers already there. Your delivery callback is still called with
    ``(err, msg)``. With transactions, each ``commit_transaction()`` and
    ``abort_transaction()`` gets a span linked to the transaction's sends (pass the producer's
    ``transactional.id`` as ``transactional_id``; see the transactions guide). Every other
    attribute and method is the wrapped producer's (``produce_batch()`` is not traced).

    confluent-kafka calls a per-message callback *instead of* the ``on_delivery`` set in the
    producer's configuration, and a ``Producer`` does not reveal its configuration: pass that
    callback here as well. With ``delivery.report.only.error=true`` successful deliveries are never
    reported, so their spans never end: do not wrap such a producer.

    Args:
        producer: the ``confluent_kafka.Producer`` to wrap.
        server: ``"host:port"`` of the bootstrap server for ``server.address``/``server.port``.
        client_id: the producer's ``client.id``, recorded as ``messaging.client.id`` (a
            ``Producer`` does not reveal it; the zero-code instrumentation passes it itself).
        on_delivery: the delivery callback configured on ``producer``, if any.
        transactional_id: the producer's ``transactional.id``, recorded as
            ``kafkascope.transaction.id`` (a ``Producer`` does not reveal it either).
        capture_key: record the UTF-8 message key (default: the configured setting).
        capture_headers: header names or globs to put on send spans as
            ``messaging.header.<name>`` (default: the configured setting; ``[]`` for none).
        tracer_provider: default, the global one.
        meter_provider: default, the global one.

    Raises:
        TypeError: ``producer`` has no ``produce()``, or an option has the wrong type.
        ValueError: ``server`` has an invalid port.
    """

    def __init__(
        self,
        producer: Any,
        *,
        server: str | None = None,
        client_id: str | None = None,
        on_delivery: DeliveryCallback | None = None,
        transactional_id: str | None = None,
        capture_key: bool | None = None,
        capture_headers: str | Sequence[str] | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        for name, value in (("client_id", client_id), ("transactional_id", transactional_id)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be a str, got {type(value).__name__}")
        if on_delivery is not None and not callable(on_delivery):
            raise TypeError(f"on_delivery must be callable, got {on_delivery!r}")
        super().__init__(
            producer,
            method="produce",
            server=parse_server(server),
            client_id=client_id,
            transactional_id=transactional_id,
            capture_key=capture_key,
            capture_headers=capture_headers,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
        )
        self._default_callback = on_delivery

    def __len__(self) -> int:
        """Messages and requests waiting to be delivered, as ``len(producer)``."""
        return len(self._producer)

    def begin_transaction(self, *args: Any, **kwargs: Any) -> Any:
        """``Producer.begin_transaction``; the messages produced until its end are the
        transaction's."""
        return _txn.begin(
            self._options.transactions, lambda: self._producer.begin_transaction(*args, **kwargs)
        )

    def send_offsets_to_transaction(self, positions: Any, *args: Any, **kwargs: Any) -> Any:
        """``Producer.send_offsets_to_transaction``; the transaction's span links to the process
        spans of these positions' messages."""
        return _txn.send_offsets(
            self._options.transactions,
            positions,
            lambda: self._producer.send_offsets_to_transaction(positions, *args, **kwargs),
        )

    def commit_transaction(self, *args: Any, **kwargs: Any) -> Any:
        """``Producer.commit_transaction`` in a ``commit_transaction`` span."""
        return _txn.end(
            self._options.transactions,
            True,
            lambda: self._producer.commit_transaction(*args, **kwargs),
        )

    def abort_transaction(self, *args: Any, **kwargs: Any) -> Any:
        """``Producer.abort_transaction`` in an ``abort_transaction`` span."""
        return _txn.end(
            self._options.transactions,
            False,
            lambda: self._producer.abort_transaction(*args, **kwargs),
        )

    def produce(
        self,
        topic: str,
        value: str | bytes | None = None,
        key: str | bytes | None = None,
        partition: int = -1,
        callback: DeliveryCallback | None = None,
        on_delivery: DeliveryCallback | None = None,
        timestamp: int = 0,
        headers: Headers = None,
    ) -> None:
        """Produce like ``Producer.produce``, traced until the delivery report.

        ``callback`` and ``on_delivery`` are aliases (``callback`` wins if both are given, as in
        confluent-kafka); without either, the ``on_delivery`` given to this wrapper is called.
        """
        user_callback = callback if callback is not None else on_delivery
        if user_callback is None:
            user_callback = self._default_callback
        observer = self._options.start(topic, key, partition, value=value, headers=headers)
        if observer is None:
            self._producer.produce(
                topic,
                value=value,
                key=key,
                partition=partition,
                on_delivery=user_callback,
                timestamp=timestamp,
                headers=headers,
            )
            return
        out_headers = traced_headers(observer, headers)
        try:
            self._producer.produce(
                topic,
                value=value,
                key=key,
                partition=partition,
                on_delivery=_DeliveryReport(observer, user_callback),
                timestamp=timestamp,
                headers=out_headers,
            )
        except BaseException as exc:
            observer.failed(exc, error_name(exc))
            raise


class _DeliveryReport:
    """The per-message delivery callback: ends the send span, then calls the user's callback."""

    __slots__ = ("_callback", "_observer")

    def __init__(self, observer: SendObserver, callback: DeliveryCallback | None) -> None:
        self._observer = observer
        self._callback = callback

    def __call__(self, err: Any, msg: Any) -> None:
        try:
            partition = msg.partition() if msg is not None else None
            if err is None:
                self._observer.delivered(partition, msg.offset() if msg is not None else None)
            else:
                self._observer.failed(exception_of(err), kafka_error_name(err), partition=partition)
        except Exception as exc:
            _errors.report("delivery report", exc)
            self._observer.abandon()
        if self._callback is not None:
            self._callback(err, msg)  # its exceptions surface from poll()/flush(), as without us


_originals: dict[str, type] = {}


def _settings_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    config = args[0] if args and isinstance(args[0], dict) else {}
    return {**config, **kwargs}


_TRACED_PRODUCER_METHODS: Final = (
    "produce",
    "begin_transaction",
    "send_offsets_to_transaction",
    "commit_transaction",
    "abort_transaction",
)
"""The ``Producer`` methods the traced subclass hands to :class:`TracedConfluentProducer`."""


def _with_statistics(
    args: tuple[Any, ...], kwargs: dict[str, Any], consumer: bool, tracker: ConsumerTracker
) -> tuple[tuple[Any, ...], dict[str, Any], ConfluentStatistics | None]:
    """A new client's arguments with kafkascope's ``stats_cb`` while client statistics are on."""
    if not _settings.current().client_metrics or not is_instrumentation_enabled():
        return args, kwargs, None
    return confluent_client_args(args, kwargs, consumer, tracker.meter_provider)


_LIBRDKAFKA_CLIENT_ID = "rdkafka"
"""librdkafka's own ``client.id`` when the configuration names none."""


def _describe(consumer: Any) -> Described:
    described: Described = getattr(consumer, DESCRIBED, (None, None, None))
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
        """Presents the base class's ``produce`` and transaction methods of one producer to the
        traced wrapper."""

        def __init__(self, producer: Any) -> None:
            for method in _TRACED_PRODUCER_METHODS:
                setattr(self, method, getattr(producer_type, method).__get__(producer))

    class Producer(producer_type):  # type: ignore[misc]
        """confluent_kafka.Producer, traced by kafkascope."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            args, kwargs, _ = _with_statistics(args, kwargs, False, tracker)
            super().__init__(*args, **kwargs)
            self._kafkascope: TracedConfluentProducer | None = None
            try:
                config = _settings_of(args, kwargs)
                servers = config.get("bootstrap.servers")
                self._kafkascope = TracedConfluentProducer(
                    _ProduceOf(self),
                    server=servers if isinstance(servers, str) and servers else None,
                    client_id=config.get("client.id") or _LIBRDKAFKA_CLIENT_ID,
                    on_delivery=config.get("on_delivery"),
                    transactional_id=config.get("transactional.id"),
                    tracer_provider=tracker.tracer_provider,
                    meter_provider=tracker.meter_provider,
                )
            except Exception as exc:
                _errors.report("instrumented confluent-kafka producer", exc)

        def produce(self, *args: Any, **kwargs: Any) -> Any:
            traced = self._kafkascope
            if traced is None or not is_instrumentation_enabled():
                return super().produce(*args, **kwargs)
            return traced.produce(*args, **kwargs)

        def begin_transaction(self, *args: Any, **kwargs: Any) -> Any:
            traced = self._kafkascope
            if traced is None:
                return super().begin_transaction(*args, **kwargs)
            return traced.begin_transaction(*args, **kwargs)

        def send_offsets_to_transaction(self, *args: Any, **kwargs: Any) -> Any:
            traced = self._kafkascope
            if traced is None:
                return super().send_offsets_to_transaction(*args, **kwargs)
            return traced.send_offsets_to_transaction(*args, **kwargs)

        def commit_transaction(self, *args: Any, **kwargs: Any) -> Any:
            traced = self._kafkascope
            if traced is None:
                return super().commit_transaction(*args, **kwargs)
            return traced.commit_transaction(*args, **kwargs)

        def abort_transaction(self, *args: Any, **kwargs: Any) -> Any:
            traced = self._kafkascope
            if traced is None:
                return super().abort_transaction(*args, **kwargs)
            return traced.abort_transaction(*args, **kwargs)

    class Consumer(consumer_type):  # type: ignore[misc]
        """confluent_kafka.Consumer, traced by kafkascope."""

        # Set by observe_health(): confluent-kafka records no poll time, so each poll beats.
        _kafkascope_health: Any = None
        _kafkascope_reports: _commits.CommitReports | None = None

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            args, kwargs, reports = _commits.with_reports(tracker, _describe, args, kwargs)
            args, kwargs, statistics = _with_statistics(args, kwargs, True, tracker)
            super().__init__(*args, **kwargs)
            self._kafkascope_statistics = statistics
            self._kafkascope_reports = _commits.attach(reports, self)
            # What kafkascope's other threads read instead of calling this consumer.
            self._kafkascope_snapshot = ConfluentSnapshot()
            try:
                config = _settings_of(args, kwargs)
                self._kafkascope_described = description(
                    config.get("group.id"),
                    config.get("bootstrap.servers"),
                    config.get("client.id") or _LIBRDKAFKA_CLIENT_ID,
                )
            except Exception as exc:
                _errors.report("instrumented confluent-kafka consumer", exc)

        def poll(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return tracker.call(self, True, _describe, super().poll, args, kwargs, _records)
            finally:
                self._kafkascope_beat()  # sees the position the poll advanced

        def consume(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return tracker.call(self, False, _describe, super().consume, args, kwargs, _records)
            finally:
                self._kafkascope_beat()

        def _kafkascope_beat(self) -> None:
            self._kafkascope_snapshot.beat(self)
            if self._kafkascope_health is not None:
                self._kafkascope_health.beat()

        def commit(self, *args: Any, **kwargs: Any) -> Any:
            return _commits.commit(tracker, _describe, self, super().commit, args, kwargs)

        def close(self, *args: Any, **kwargs: Any) -> Any:
            self._kafkascope_snapshot.closing()  # its readers see it closed at once
            if self._kafkascope_statistics is not None:
                self._kafkascope_statistics.closed = True
            return tracker.call(self, None, _describe, super().close, args, kwargs)

        def subscribe(self, *args: Any, **kwargs: Any) -> Any:
            if is_instrumentation_enabled():
                args, kwargs = confluent_subscribe_args(
                    self, _describe(self)[0], tracker.meter_provider, args, kwargs
                )
            return super().subscribe(*args, **kwargs)

    Producer.__module__ = Consumer.__module__ = "confluent_kafka"
    setattr(confluent_kafka, "Producer", Producer)  # noqa: B010 - the module's class is replaced
    setattr(confluent_kafka, "Consumer", Consumer)  # noqa: B010


def uninstrument() -> None:
    """Put confluent-kafka's own classes back."""
    import confluent_kafka

    for name, original in _originals.items():
        setattr(confluent_kafka, name, original)
    _originals.clear()
