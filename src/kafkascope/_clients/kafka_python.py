"""kafka-python: :class:`TracedProducer`, and the zero-code hooks that wrap ``KafkaProducer.send``
and its transaction methods, and the consumer's
``__next__``/``poll``/``close``/``subscribe``/``unsubscribe`` in place (unwrapped the same way);
its commits are :mod:`.commits.kafka_python`'s.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence, Set
from typing import Any, Final

from opentelemetry.instrumentation.utils import is_instrumentation_enabled, unwrap
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider
from wrapt import wrap_function_wrapper

from kafkascope._adapters.clients import group_of
from kafkascope._adapters.kafka_python import (
    bootstrap_of,
    client_id_of,
    cluster_id_of,
    is_consumer,
    transactional_id_of,
)
from kafkascope._clients import contrib
from kafkascope._clients.commits import kafka_python as _commits
from kafkascope._clients.hooks import (
    TRANSACTION_METHODS,
    describer,
    producer_options,
    transaction_hooks,
    unwrap_in_place,
    wrap_in_place,
)
from kafkascope._consume.tracker import ConsumerTracker
from kafkascope._core import errors as _errors
from kafkascope._core import semconv as sc
from kafkascope._core import settings as _settings
from kafkascope._core.headers import Headers
from kafkascope._core.telemetry import server_of_bootstrap
from kafkascope._observe.client_statistics import observe_kafka_python
from kafkascope._observe.rebalance_diff import AssignmentDiffs
from kafkascope._observe.rebalance_listeners import is_traced, subscribe_hook
from kafkascope._produce import transactions as _txn
from kafkascope._produce.send import ProducerWrapper, SendOptions, traced_headers
from kafkascope._produce.send_calls import send_hook, send_in_span

CONSUMER_METHODS: Final = {"__next__": True, "poll": False, "close": None}
"""Wrapped consumer methods: True hands out one record, False a batch, None none."""
PRODUCER_METHODS: Final = ("send", *TRANSACTION_METHODS)
"""Wrapped producer methods."""
STATISTICS_CLIENTS: Final = ("KafkaProducer", "KafkaConsumer")
"""Whose ``__init__`` is wrapped to report the new client's statistics."""


class TracedProducer(ProducerWrapper):
    """Wraps a ``kafka.KafkaProducer``: same ``send()`` signature and return value.

    Each send gets a ``send {topic}`` PRODUCER span that lasts until the broker acknowledges or
    the send fails, and its context is injected into the record's headers with the global
    propagator (unless the headers already carry one). With a ``transactional_id``, each
    ``commit_transaction()`` and ``abort_transaction()`` gets a span linked to the transaction's
    sends (see the transactions guide). Every other attribute and method is the wrapped
    producer's.

    Args:
        producer: the ``KafkaProducer`` to wrap.
        capture_key: record the UTF-8 message key (default: the configured setting).
        capture_headers: header names or globs to put on send spans as
            ``messaging.header.<name>`` (default: the configured setting; ``[]`` for none).
        tracer_provider: default, the global one.
        meter_provider: default, the global one.
    """

    def __init__(
        self,
        producer: Any,
        *,
        capture_key: bool | None = None,
        capture_headers: str | Sequence[str] | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        super().__init__(
            producer,
            method="send",
            server=server_of_bootstrap(bootstrap_of(producer)),
            client_id=client_id_of(producer),
            transactional_id=transactional_id_of(producer),
            capture_key=capture_key,
            capture_headers=capture_headers,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
        )
        if _settings.current().client_metrics:
            _observe_statistics(producer, meter_provider)

    def begin_transaction(self) -> Any:
        """``KafkaProducer.begin_transaction``; the sends until its end are the transaction's."""
        return _txn.begin(self._options.transactions, self._producer.begin_transaction)

    def send_offsets_to_transaction(self, offsets: Any, group_metadata: Any) -> Any:
        """``KafkaProducer.send_offsets_to_transaction``; the transaction's span links to the
        process spans of these offsets' messages."""
        return _txn.send_offsets(
            self._options.transactions,
            offsets,
            lambda: self._producer.send_offsets_to_transaction(offsets, group_metadata),
        )

    def commit_transaction(self) -> Any:
        """``KafkaProducer.commit_transaction`` in a ``commit_transaction`` span."""
        return _txn.end(self._options.transactions, True, self._producer.commit_transaction)

    def abort_transaction(self) -> Any:
        """``KafkaProducer.abort_transaction`` in an ``abort_transaction`` span."""
        return _txn.end(self._options.transactions, False, self._producer.abort_transaction)

    def send(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        headers: Headers = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> Any:
        """Send like ``KafkaProducer.send`` and return its future, traced."""
        return _send(
            self._options, self._producer.send, topic, value, key, headers, partition, timestamp_ms
        )


def _send(
    options: SendOptions,
    send: Callable[..., Any],
    topic: str,
    value: Any = None,
    key: Any = None,
    headers: Headers = None,
    partition: int | None = None,
    timestamp_ms: int | None = None,
) -> Any:
    """``KafkaProducer.send``'s signature, traced by ``options``."""
    observer = options.start(topic, key, partition, value=value, headers=headers)
    if observer is not None and observer.span.is_recording():
        cluster = cluster_id_of(getattr(send, "__self__", None))
        if cluster is not None:
            observer.span.set_attribute(sc.MESSAGING_KAFKA_CLUSTER_ID, cluster)
    # With contrib's kafka-python instrumentation also active, its wrapper of
    # KafkaProducer.send injects (without checking for a traceparent); injecting here too
    # would put two on the record. Our span is current while the inner send runs, so
    # contrib's span and the context it injects are its children: one trace either way.
    out_headers = headers if contrib_kafka_active() else traced_headers(observer, headers)
    return send_in_span(
        observer,
        lambda: send(
            topic,
            value=value,
            key=key,
            headers=out_headers,
            partition=partition,
            timestamp_ms=timestamp_ms,
        ),
    )


def _observe_statistics(client: Any, meter_provider: MeterProvider | None) -> None:
    """Report a kafka-python client's statistics (never raises); a look-alike without
    ``metrics()`` has none."""
    if not callable(getattr(client, "metrics", None)):
        return
    try:
        group = group_of(client) if is_consumer(client) else None
        observe_kafka_python(client, group=group, meter_provider=meter_provider)
    except Exception as exc:
        _errors.report("kafka-python client statistics", exc)


def _statistics_hook(meter_provider: MeterProvider | None) -> Callable[..., Any]:
    """The zero-code wrapper of ``KafkaProducer.__init__``/``KafkaConsumer.__init__``."""

    def init(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        wrapped(*args, **kwargs)
        if _settings.current().client_metrics and is_instrumentation_enabled():
            _observe_statistics(instance, meter_provider)

    return init


_CONTRIB_MODULE: Final = contrib.CONTRIB["kafka"].module


def contrib_kafka_active() -> bool:
    """Whether contrib's ``opentelemetry-instrumentation-kafka-python`` is instrumenting
    (kept beside kafkascope's on purpose, or turned on by the application itself)."""
    # Asked on every send: not imported (the usual case) answers in one dict lookup.
    return _CONTRIB_MODULE in sys.modules and contrib.instrumenting("kafka")


describe = describer(bootstrap_of, client_id_of)
"""Group, bootstrap servers and client id of a kafka-python consumer."""


def group_assignment(consumer: Any) -> Set[Any]:
    """The partitions a ``KafkaConsumer``'s group assigned it now: none without a group or
    with partitions it ``assign()``-ed itself (neither is a rebalance)."""
    subscription = consumer._subscription
    if group_of(consumer) is None or not subscription.partitions_auto_assigned():
        return frozenset()
    found: Set[Any] = subscription.assigned_partitions()  # a copy, taken under its lock
    return found


def kafkascope_listens(consumer: Any) -> bool:
    """Whether a kafkascope listener is the ``KafkaConsumer``'s rebalance listener."""
    return is_traced(consumer._subscription.rebalance_listener)


def instrument(tracker: ConsumerTracker) -> None:
    """Wrap kafka-python's producer and consumer."""
    options_of = producer_options(tracker, bootstrap_of, client_id_of, transactional_id_of)
    producer_hooks = {"send": send_hook(options_of, _send), **transaction_hooks(options_of)}
    # Only the application's own listener is wrapped: a listener installed where there was
    # none left a group's second join round hanging in 2 of 6 e2e runs (kafka-python 3.0.12
    # runs listeners on its IO loop; the cause is not understood yet). Without one, the
    # assignment is compared after each poll instead.
    diffs = AssignmentDiffs(group_assignment, kafkascope_listens, tracker.meter_provider)

    def polled(consumer: Any) -> None:
        diffs.polled(consumer)
        _commits.noted(consumer)

    def consumer_call(method: str, single: bool | None) -> Callable[..., Any]:
        def wrapper(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
            return tracker.call(instance, single, describe, wrapped, args, kwargs)

        if method == "poll":  # __next__ polls too: once per fetch, not per record
            return _after(wrapper, polled)
        if method == "close":
            return _before(wrapper, diffs.leaving)
        return wrapper

    wrap_in_place(
        "kafka", "KafkaProducer", producer_hooks, "KafkaConsumer", CONSUMER_METHODS, consumer_call
    )
    wrap_function_wrapper(
        "kafka",
        "KafkaConsumer.subscribe",
        subscribe_hook(tracker.meter_provider, install=False),
    )
    wrap_function_wrapper(
        "kafka", "KafkaConsumer.unsubscribe", _before(_call_through, diffs.leaving)
    )
    for client in STATISTICS_CLIENTS:
        wrap_function_wrapper(
            "kafka", f"{client}.__init__", _statistics_hook(tracker.meter_provider)
        )
    wrap_function_wrapper("kafka", "KafkaConsumer.commit", _commits.commit_hook(tracker, describe))
    wrap_function_wrapper(
        "kafka", "KafkaConsumer.commit_async", _commits.commit_async_hook(tracker, describe)
    )
    _commits.instrument(tracker, describe)


def _call_through(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    return wrapped(*args, **kwargs)


def _after(wrapper: Callable[..., Any], hook: Callable[[Any], None]) -> Callable[..., Any]:
    """``wrapper``, then ``hook(consumer)`` even when the call raised (a rebalance may have
    completed before the error); ``hook`` never raises."""

    def after(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        try:
            return wrapper(wrapped, instance, args, kwargs)
        finally:
            hook(instance)

    return after


def _before(wrapper: Callable[..., Any], hook: Callable[[Any], None]) -> Callable[..., Any]:
    """``hook(consumer)`` (which never raises), then ``wrapper``."""

    def before(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        hook(instance)
        return wrapper(wrapped, instance, args, kwargs)

    return before


def uninstrument() -> None:
    """Undo :func:`instrument`."""
    unwrap_in_place("kafka", "KafkaProducer", PRODUCER_METHODS, "KafkaConsumer", CONSUMER_METHODS)
    import kafka

    unwrap(kafka.KafkaConsumer, "subscribe")
    unwrap(kafka.KafkaConsumer, "unsubscribe")
    for client in STATISTICS_CLIENTS:
        unwrap(getattr(kafka, client), "__init__")
    unwrap(kafka.KafkaConsumer, "commit")
    unwrap(kafka.KafkaConsumer, "commit_async")
    _commits.uninstrument()
