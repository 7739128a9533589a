"""aiokafka's commits: ``AIOKafkaConsumer.commit`` (the application's) and the group
coordinator's ``_do_commit_offsets`` when no application commit is running (its auto-commits:
each ``auto_commit_interval_ms`` from the coordinator's own task, and the last one before a
rebalance or ``stop()``).

aiokafka offers no public hook for its auto-commits; the coordinator method every commit goes
through is wrapped, and an application commit marks its own calls (a context variable, which the
coordinator's ``asyncio.shield`` task inherits).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from kafkascope._adapters import offsets as _offsets
from kafkascope._consume.tracker import ConsumerTracker, Describe, Described
from kafkascope._core import semconv as sc

_COORDINATOR = "aiokafka.consumer.group_coordinator"
_manual: ContextVar[bool] = ContextVar("kafkascope_aiokafka_manual_commit", default=False)
_consumers: weakref.WeakKeyDictionary[Any, weakref.ref[Any]] = weakref.WeakKeyDictionary()
"""Each coordinator's consumer, noted when the consumer's telemetry is first set up."""


def noting(describe: Describe) -> Describe:
    """``describe``, which also notes the consumer's coordinator (called once per consumer, on
    its first fetch or commit, when the coordinator exists)."""

    def described(consumer: Any) -> Described:
        coordinator = getattr(consumer, "_coordinator", None)
        if coordinator is not None:
            _consumers[coordinator] = weakref.ref(consumer)
        return describe(consumer)

    return described


def commit_hook(tracker: ConsumerTracker, describe: Describe) -> Callable[..., Any]:
    """The wrapper of ``AIOKafkaConsumer.commit``: one span per topic committed."""

    async def traced(instance: Any, wrapped: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        scope = tracker.commit_scope(instance, describe, sc.COMMIT_APPLICATION)
        if scope is None:
            return await wrapped(*args, **kwargs)
        given = args[0] if args else kwargs.get("offsets")
        committed = _offsets.from_mapping(given) if given is not None else None
        scope.offsets = committed if committed is not None else _offsets.consumed(instance)
        token = _manual.set(True)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            scope.finish(exc)
            raise
        finally:
            _manual.reset(token)
        scope.finish(None)
        return result

    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        async def call(*a: Any, **k: Any) -> Any:
            return await traced(instance, wrapped, a, k)

        return await tracker.call_async(instance, None, describe, call, args, kwargs)

    return wrapper


def instrument(tracker: ConsumerTracker, describe: Describe) -> None:
    """Wrap the coordinator's commit request, for the auto-commits."""

    async def do_commit_offsets(
        wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
    ) -> Any:
        if _manual.get():
            return await wrapped(*args, **kwargs)
        ref = _consumers.get(instance)
        consumer = ref() if ref is not None else None
        committed = _offsets.from_mapping(args[1] if len(args) > 1 else kwargs.get("offsets"))
        scope = None
        if consumer is not None and committed:
            scope = tracker.commit_scope(consumer, describe, sc.COMMIT_AUTO, committed)
        if scope is None:
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            scope.finish(exc)
            raise
        scope.finish(None)
        return result

    wrap_function_wrapper(_COORDINATOR, "GroupCoordinator._do_commit_offsets", do_commit_offsets)


def uninstrument() -> None:
    """Undo :func:`instrument`."""
    from aiokafka.consumer.group_coordinator import GroupCoordinator

    unwrap(GroupCoordinator, "_do_commit_offsets")
