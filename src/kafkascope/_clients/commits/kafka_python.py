"""kafka-python's commits: ``KafkaConsumer.commit``/``commit_async`` (the application's) and the
coordinator's ``commit_offsets_async``/``commit_offsets_sync`` when the consumer did not call
them itself (its auto-commits: each interval from ``poll()``, and before a rebalance or
``close()``).

A manual commit's offsets are those passed, else the consumed positions, read as the client
reads them. An asynchronous commit's span ends when kafka-python hands its result to the
commit callback (on the consumer's next ``poll()`` or commit); the application's callback, or
the client's default, is still called.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from kafkascope._adapters import offsets as _offsets
from kafkascope._consume.commit import CommitScope
from kafkascope._consume.tracker import ConsumerTracker, Describe
from kafkascope._core import errors as _errors
from kafkascope._core import semconv as sc

_COORDINATOR = "kafka.coordinator.consumer"
_manual: ContextVar[CommitScope | bool | None] = ContextVar(
    "kafkascope_manual_commit", default=None
)
"""Set while the application's commit runs: its scope (asynchronous, for the coordinator's
hook to finish) or True (synchronous, finished here)."""
_consumers: weakref.WeakKeyDictionary[Any, weakref.ref[Any]] = weakref.WeakKeyDictionary()
"""Each coordinator's consumer, noted after a poll (auto-commits reach the coordinator only)."""


def _offsets_argument(args: tuple[Any, ...], kwargs: dict[str, Any]) -> object:
    return args[0] if args else kwargs.get("offsets")


def _committed(consumer: Any, given: object) -> list[_offsets.Committed] | None:
    """What a commit of ``given`` (None: the consumed positions) commits."""
    committed = _offsets.from_mapping(given) if given is not None else None
    return committed if committed is not None else _offsets.consumed(consumer)


def noted(consumer: Any) -> None:
    """After a poll: remember ``consumer``'s coordinator. Never raises."""
    # A consumer without a group has no coordinator: nothing of it auto-commits.
    coordinator = getattr(consumer, "_coordinator", None)
    try:
        if coordinator is not None and coordinator not in _consumers:
            _consumers[coordinator] = weakref.ref(consumer)
    except Exception as exc:  # a look-alike whose coordinator cannot be weakly held
        _errors.report("kafka-python auto-commit tracking", exc)


def commit_hook(tracker: ConsumerTracker, describe: Describe) -> Callable[..., Any]:
    """The wrapper of ``KafkaConsumer.commit``: one span per topic committed."""

    def traced(instance: Any, wrapped: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        scope = tracker.commit_scope(instance, describe, sc.COMMIT_APPLICATION)
        if scope is None:
            return wrapped(*args, **kwargs)
        scope.offsets = _committed(instance, _offsets_argument(args, kwargs))
        token = _manual.set(True)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            scope.finish(exc)
            raise
        finally:
            _manual.reset(token)
        scope.finish(None)
        return result

    return _through_tracker(tracker, describe, traced)


def commit_async_hook(tracker: ConsumerTracker, describe: Describe) -> Callable[..., Any]:
    """The wrapper of ``KafkaConsumer.commit_async``: its span ends in the commit callback."""

    def traced(instance: Any, wrapped: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        scope = tracker.commit_scope(instance, describe, sc.COMMIT_APPLICATION)
        if scope is None:
            return wrapped(*args, **kwargs)
        scope.offsets = _committed(instance, _offsets_argument(args, kwargs))
        token = _manual.set(scope)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            if _manual.get() is scope:  # failed before the coordinator took it
                scope.finish(exc)
            raise
        finally:
            _manual.reset(token)
        return result

    return _through_tracker(tracker, describe, traced)


def _through_tracker(
    tracker: ConsumerTracker,
    describe: Describe,
    traced: Callable[[Any, Callable[..., Any], Any, Any], Any],
) -> Callable[..., Any]:
    """``traced`` after the consumer's open process span ended (a commit ends it, as any call
    into the consumer does)."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        def call(*a: Any, **k: Any) -> Any:
            return traced(instance, wrapped, a, k)

        return tracker.call(instance, None, describe, call, args, kwargs)

    return wrapper


def instrument(tracker: ConsumerTracker, describe: Describe) -> None:
    """Wrap the coordinator's commits, for the auto-commits."""

    def auto_scope(coordinator: Any, committed: Any) -> CommitScope | None:
        ref = _consumers.get(coordinator)
        consumer = ref() if ref is not None else None
        if consumer is None:
            return None
        return tracker.commit_scope(
            consumer, describe, sc.COMMIT_AUTO, _offsets.from_mapping(committed)
        )

    def commit_offsets_async(
        wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
    ) -> Any:
        manual = _manual.get()
        if manual is True:
            return wrapped(*args, **kwargs)
        committed = _offsets_argument(args, kwargs)
        scope = manual if isinstance(manual, CommitScope) else auto_scope(instance, committed)
        if scope is None:
            return wrapped(*args, **kwargs)
        _manual.set(None)  # taken: the consumer's hook no longer finishes it
        callback = args[1] if len(args) > 1 else kwargs.get("callback")
        if callback is None:
            callback = instance.config["default_offset_commit_callback"]

        def done(offsets: Any, response: Any) -> Any:
            failure = response if isinstance(response, BaseException) else None
            scope.finish(failure)
            return callback(offsets, response)

        try:
            return wrapped(committed, done)
        except BaseException as exc:
            scope.finish(exc)
            raise

    def commit_offsets_sync(
        wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
    ) -> Any:
        if _manual.get() is not None:
            return wrapped(*args, **kwargs)
        scope = auto_scope(instance, _offsets_argument(args, kwargs))
        if scope is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            scope.finish(exc)
            raise
        scope.finish(None)
        return result

    wrap_function_wrapper(
        _COORDINATOR, "ConsumerCoordinator.commit_offsets_async", commit_offsets_async
    )
    wrap_function_wrapper(
        _COORDINATOR, "ConsumerCoordinator.commit_offsets_sync", commit_offsets_sync
    )


def uninstrument() -> None:
    """Undo :func:`instrument`."""
    from kafka.coordinator.consumer import ConsumerCoordinator

    unwrap(ConsumerCoordinator, "commit_offsets_async")
    unwrap(ConsumerCoordinator, "commit_offsets_sync")
