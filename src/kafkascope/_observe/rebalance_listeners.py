"""The rebalance listeners and callbacks that feed :mod:`kafkascope._observe.rebalances`: the public
wrappers, and the ``subscribe()`` hooks of zero-code instrumentation.

The application's own rebalance listener (or confluent-kafka's ``on_assign``/``on_revoke``/
``on_lost`` callbacks) is wrapped, never replaced: kafkascope records first, then calls it with
the same arguments, and its return value and exceptions are the client's to handle, exactly as
without kafkascope.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import metrics

from kafkascope._adapters import aiokafka, confluent
from kafkascope._adapters.clients import client_of
from kafkascope._core import errors as _errors
from kafkascope._observe.rebalances import RebalanceObserver, observer_for

Callback = Callable[[Any, list[Any]], Any]
"""confluent-kafka's ``on_assign(consumer, partitions)`` (and ``on_revoke``, ``on_lost``)."""


def _kafka_python_listener(listener: Any, observer: RebalanceObserver) -> Any:
    from kafka import ConsumerRebalanceListener

    try:
        from kafka.consumer.subscription_state import (  # type: ignore[attr-defined,unused-ignore]
            AsyncConsumerRebalanceListener,
        )
    except ImportError:  # kafka-python 2.x: sync listeners only
        AsyncConsumerRebalanceListener = None  # noqa: N806

    if AsyncConsumerRebalanceListener is not None and isinstance(
        listener, AsyncConsumerRebalanceListener
    ):

        class TracedAsync(AsyncConsumerRebalanceListener):  # type: ignore[misc]
            """The application's async listener, with kafkascope recording each rebalance."""

            wrapped = listener
            kafkascope_traced = True

            async def on_partitions_revoked(self, revoked: Any) -> Any:
                observer.revoked(revoked)
                return await listener.on_partitions_revoked(revoked)

            async def on_partitions_assigned(self, assigned: Any) -> Any:
                observer.assigned(assigned)
                return await listener.on_partitions_assigned(assigned)

            async def on_partitions_lost(self, lost: Any) -> Any:
                observer.revoked(lost, lost=True)
                return await listener.on_partitions_lost(lost)

        return TracedAsync()

    class Traced(ConsumerRebalanceListener):  # type: ignore[misc]
        """The application's listener (if any), with kafkascope recording each rebalance."""

        wrapped = listener
        kafkascope_traced = True

        def on_partitions_revoked(self, revoked: Any) -> Any:
            observer.revoked(revoked)
            return None if listener is None else listener.on_partitions_revoked(revoked)

        def on_partitions_assigned(self, assigned: Any) -> Any:
            observer.assigned(assigned)
            return None if listener is None else listener.on_partitions_assigned(assigned)

        def on_partitions_lost(self, lost: Any) -> Any:
            observer.revoked(lost, lost=True)
            if listener is None:
                return None
            on_lost = getattr(listener, "on_partitions_lost", None)  # not on 2.x listeners
            return on_lost(lost) if on_lost is not None else listener.on_partitions_revoked(lost)

    return Traced()


def _aiokafka_listener(listener: Any, observer: RebalanceObserver) -> Any:
    import asyncio

    from aiokafka.abc import ConsumerRebalanceListener

    async def settle(result: Any) -> Any:
        # aiokafka awaits what a listener returns when it is a coroutine: so do we.
        return await result if asyncio.iscoroutine(result) else result

    class Traced(ConsumerRebalanceListener):  # type: ignore[misc]
        """The application's listener (if any), with kafkascope recording each rebalance."""

        wrapped = listener
        kafkascope_traced = True

        async def on_partitions_revoked(self, revoked: Any) -> Any:
            observer.revoked(revoked)
            if listener is not None:
                return await settle(listener.on_partitions_revoked(revoked))
            return None

        async def on_partitions_assigned(self, assigned: Any) -> Any:
            observer.assigned(assigned)
            if listener is not None:
                return await settle(listener.on_partitions_assigned(assigned))
            return None

    return Traced()


def listener_types(consumer: Any) -> tuple[type, ...]:
    """The listener classes ``consumer.subscribe(listener=...)`` accepts."""
    if aiokafka.is_client(consumer):
        from aiokafka.abc import ConsumerRebalanceListener as AIOListener

        return (AIOListener,)
    from kafka import ConsumerRebalanceListener

    try:
        from kafka.consumer.subscription_state import (  # type: ignore[attr-defined,unused-ignore]
            AsyncConsumerRebalanceListener,
        )
    except ImportError:
        return (ConsumerRebalanceListener,)
    return (ConsumerRebalanceListener, AsyncConsumerRebalanceListener)


def traced_rebalance_listener(
    listener: Any = None,
    /,
    *,
    consumer: Any,
    group: str | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> Any:
    """Wrap a kafka-python or aiokafka rebalance listener so each rebalance is recorded.

    Pass the result to ``subscribe()``:

    ```python
    consumer.subscribe(["orders"], listener=traced_rebalance_listener(mine, consumer=consumer))
    ```

    Each assignment and revocation (lost partitions count as revoked) is logged at INFO on the
    ``kafkascope.rebalance`` logger with the group, member id and partitions, and counted in
    ``kafkascope.consumer.rebalances`` (attribute ``kafkascope.rebalance.type``:
    ``assigned`` or ``revoked``); ``kafkascope.consumer.assigned_partitions`` reports the
    partitions assigned now, per group, client id and topic. ``listener`` is then called with
    the same arguments; what it returns and raises reach the client unchanged.

    Args:
        listener: the application's ``ConsumerRebalanceListener`` (kafka-python's sync or async
            one, or aiokafka's), or None for none.
        consumer: the ``KafkaConsumer`` or ``AIOKafkaConsumer`` that will subscribe with it.
        group: consumer group label (default: the consumer's ``group_id``).
        meter_provider: default, the global one.

    Returns:
        A listener of the consumer's client that records each rebalance and calls ``listener``.

    Raises:
        TypeError: ``consumer`` is not a kafka-python or aiokafka consumer, or ``listener`` is
            not a listener it accepts. For confluent-kafka use
            :func:`traced_rebalance_callbacks`.
    """
    if client_of(consumer) == confluent.NAME or not hasattr(consumer, "subscribe"):
        raise TypeError(
            f"traced_rebalance_listener needs a kafka-python KafkaConsumer or an aiokafka "
            f"AIOKafkaConsumer, got {type(consumer).__qualname__}; for confluent-kafka use "
            "traced_rebalance_callbacks"
        )
    accepted = listener_types(consumer)
    if listener is not None and not isinstance(listener, accepted):
        names = " or ".join(t.__qualname__ for t in accepted)
        raise TypeError(f"listener must be a {names}, got {listener!r}")
    observer = observer_for(consumer, group=group, meter_provider=meter_provider)
    if aiokafka.is_client(consumer):
        return _aiokafka_listener(listener, observer)
    return _kafka_python_listener(listener, observer)


def traced_rebalance_callbacks(
    *,
    consumer: Any,
    on_assign: Callback | None = None,
    on_revoke: Callback | None = None,
    on_lost: Callback | None = None,
    group: str | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> dict[str, Callback]:
    """confluent-kafka's ``subscribe()`` callbacks, recording each rebalance.

    Spread the result into ``subscribe()``:

    ```python
    consumer.subscribe(["orders"], **traced_rebalance_callbacks(consumer=consumer, group="billing"))
    ```

    Records what :func:`traced_rebalance_listener` records, then calls the application's own
    callbacks with the same arguments; their exceptions surface from ``poll()`` as without
    kafkascope. As in confluent-kafka, lost partitions go to ``on_revoke`` when there is no
    ``on_lost``; without callbacks the client assigns and unassigns by itself.

    Args:
        consumer: the confluent-kafka ``Consumer`` that will subscribe with them.
        on_assign: the application's ``on_assign(consumer, partitions)``, or None.
        on_revoke: the application's ``on_revoke(consumer, partitions)``, or None.
        on_lost: the application's ``on_lost(consumer, partitions)``, or None.
        group: consumer group label (confluent-kafka's cannot be read; pass it).
        meter_provider: default, the global one.

    Returns:
        ``on_assign``, ``on_revoke`` and ``on_lost`` for ``consumer.subscribe(topics, **...)``.

    Raises:
        TypeError: a callback that is not callable, or a consumer that is not confluent-kafka's.
    """
    if client_of(consumer) != confluent.NAME:
        raise TypeError(
            f"traced_rebalance_callbacks needs a confluent-kafka Consumer, got "
            f"{type(consumer).__qualname__}; for kafka-python and aiokafka use "
            "traced_rebalance_listener"
        )
    for name, callback in (
        ("on_assign", on_assign),
        ("on_revoke", on_revoke),
        ("on_lost", on_lost),
    ):
        if callback is not None and not callable(callback):
            raise TypeError(f"{name} must be callable or None, got {callback!r}")
    observer = observer_for(consumer, group=group, meter_provider=meter_provider)

    def assigned(client: Any, partitions: list[Any]) -> Any:
        observer.assigned(partitions)
        return None if on_assign is None else on_assign(client, partitions)

    def revoked(client: Any, partitions: list[Any]) -> Any:
        observer.revoked(partitions)
        return None if on_revoke is None else on_revoke(client, partitions)

    def lost(client: Any, partitions: list[Any]) -> Any:
        observer.revoked(partitions, lost=True)
        user = on_lost if on_lost is not None else on_revoke
        return None if user is None else user(client, partitions)

    callbacks: dict[str, Callback] = {"on_assign": assigned, "on_revoke": revoked, "on_lost": lost}
    for callback in callbacks.values():
        callback.kafkascope_traced = True  # type: ignore[attr-defined]
    return callbacks


def is_traced(listener: Any) -> bool:
    """Whether ``listener`` came from :func:`traced_rebalance_listener` already."""
    return getattr(type(listener), "kafkascope_traced", False) is True


def subscribe_hook(
    meter_provider: metrics.MeterProvider | None, *, install: bool = True
) -> Callable[[Callable[..., Any], Any, Any, Any], Any]:
    """A ``wrapt`` wrapper of kafka-python's and aiokafka's ``subscribe(topics, pattern,
    listener)`` that wraps the listener for zero-code instrumentation, and installs one when
    the application gave none if ``install``."""
    from opentelemetry.instrumentation.utils import is_instrumentation_enabled

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        if not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        args, kwargs = list(args), dict(kwargs)
        positional = len(args) > 2
        listener = args[2] if positional else kwargs.get("listener")
        if listener is None and not install:
            return wrapped(*args, **kwargs)
        try:
            traced = listener
            if not is_traced(listener):
                traced = traced_rebalance_listener(
                    listener, consumer=instance, meter_provider=meter_provider
                )
        except TypeError:
            traced = listener  # a listener the client refuses: it says so itself
        except Exception as exc:
            _errors.report("instrumented subscribe", exc)
            traced = listener
        if positional:
            args[2] = traced
        else:
            kwargs["listener"] = traced
        return wrapped(*args, **kwargs)

    return wrapper


def confluent_subscribe_args(
    consumer: Any,
    group: str | None,
    meter_provider: metrics.MeterProvider | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """confluent-kafka ``subscribe(topics, on_assign, on_revoke, on_lost)`` arguments with the
    callbacks wrapped (zero-code); unchanged when they cannot be (the client then says why)."""
    names = ("on_assign", "on_revoke", "on_lost")
    given = dict(kwargs)
    for index, name in enumerate(names, start=1):
        if len(args) > index:
            given[name] = args[index]
    if any(getattr(given.get(name), "kafkascope_traced", False) is True for name in names):
        return args, kwargs  # the application used traced_rebalance_callbacks already
    try:
        callbacks = traced_rebalance_callbacks(
            consumer=consumer,
            on_assign=given.get("on_assign"),
            on_revoke=given.get("on_revoke"),
            on_lost=given.get("on_lost"),
            group=group,
            meter_provider=meter_provider,
        )
    except TypeError:
        return args, kwargs
    except Exception as exc:
        _errors.report("instrumented subscribe", exc)
        return args, kwargs
    return args[:1], {**given, **callbacks}
