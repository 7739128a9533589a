"""One module per Kafka client: its traced producer and its zero-code hooks, nothing else.

Each module offers ``instrument(tracker)`` and ``uninstrument()`` for
:class:`~kafkascope.instrumentor.KafkascopeInstrumentor`; :mod:`.contrib` knows contrib's
instrumentations of the same clients, which the instrumentor takes over from.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from opentelemetry.instrumentation.utils import is_instrumentation_enabled, unwrap
from wrapt import wrap_function_wrapper

from kafkascope._adapters.clients import group_of
from kafkascope._consume.tracker import ConsumerTracker, Describe, Described, description
from kafkascope._core import errors as _errors
from kafkascope._core.telemetry import server_of_bootstrap
from kafkascope._produce import transactions as _txn
from kafkascope._produce.send_calls import OptionsOf
from kafkascope._produce.transactions import Transactions

Wrapper = Callable[[Callable[..., Any], Any, Any, Any], Any]
"""A ``wrapt`` wrapper: ``(wrapped, instance, args, kwargs)``."""


Setting = Callable[[Any], object]
"""Reads one setting (bootstrap servers, client id) off a client's producer or consumer."""


def describer(bootstrap_of: Setting, client_id_of: Setting) -> Describe:
    """``consumer -> (group, bootstrap servers, client id)`` for a pure-Python client."""

    def describe(consumer: Any) -> Described:
        return description(group_of(consumer), bootstrap_of(consumer), client_id_of(consumer))

    return describe


def producer_options(
    tracker: ConsumerTracker,
    bootstrap_of: Setting,
    client_id_of: Setting,
    transactional_id_of: Setting,
) -> OptionsOf:
    """Each producer's options for the zero-code hooks of a pure-Python client, with the
    tracker's providers."""
    return OptionsOf(
        tracker.tracer_provider,
        tracker.meter_provider,
        lambda producer: server_of_bootstrap(bootstrap_of(producer)),
        client_id_of,
        transactional_id_of,
    )


TRANSACTION_METHODS: Final = (
    "begin_transaction",
    "send_offsets_to_transaction",
    "commit_transaction",
    "abort_transaction",
)
"""The transactional producer's methods the zero-code hooks wrap (each client names them so)."""


def _transactions_of(options_of: OptionsOf, producer: Any) -> Transactions | None:
    if not is_instrumentation_enabled():
        return None
    try:
        return options_of(producer).transactions
    except Exception as exc:
        _errors.report(f"instrumented {type(producer).__name__} transaction", exc)
        return None


def _offsets(args: Any, kwargs: Any) -> object:
    """The offsets argument of ``send_offsets_to_transaction`` (confluent names it positions)."""
    return args[0] if args else kwargs.get("offsets", kwargs.get("positions"))


def transaction_hooks(options_of: OptionsOf) -> dict[str, Wrapper]:
    """``wrapt`` wrappers of a synchronous client's :data:`TRANSACTION_METHODS`."""

    def begin(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        return _txn.begin(_transactions_of(options_of, instance), lambda: wrapped(*args, **kwargs))

    def send_offsets(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        return _txn.send_offsets(
            _transactions_of(options_of, instance),
            _offsets(args, kwargs),
            lambda: wrapped(*args, **kwargs),
        )

    def commit(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        return _txn.end(
            _transactions_of(options_of, instance), True, lambda: wrapped(*args, **kwargs)
        )

    def abort(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        return _txn.end(
            _transactions_of(options_of, instance), False, lambda: wrapped(*args, **kwargs)
        )

    return dict(zip(TRANSACTION_METHODS, (begin, send_offsets, commit, abort), strict=True))


def async_transaction_hooks(options_of: OptionsOf) -> dict[str, Wrapper]:
    """``wrapt`` wrappers of an asyncio client's :data:`TRANSACTION_METHODS` (coroutines)."""

    async def begin(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        return await _txn.begin_async(
            _transactions_of(options_of, instance), lambda: wrapped(*args, **kwargs)
        )

    async def send_offsets(
        wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
    ) -> Any:
        return await _txn.send_offsets_async(
            _transactions_of(options_of, instance),
            _offsets(args, kwargs),
            lambda: wrapped(*args, **kwargs),
        )

    async def commit(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        return await _txn.end_async(
            _transactions_of(options_of, instance), True, lambda: wrapped(*args, **kwargs)
        )

    async def abort(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        return await _txn.end_async(
            _transactions_of(options_of, instance), False, lambda: wrapped(*args, **kwargs)
        )

    return dict(zip(TRANSACTION_METHODS, (begin, send_offsets, commit, abort), strict=True))


def wrap_in_place(
    module: str,
    producer: str,
    producer_hooks: Mapping[str, Wrapper],
    consumer: str,
    consumer_methods: Mapping[str, bool | None],
    consumer_call: Callable[[str, bool | None], Wrapper],
) -> None:
    """Wrap each of ``producer``'s and ``consumer``'s methods of a pure-Python client
    (``consumer_call(method, single)`` makes each consumer method's wrapper)."""
    for method, hook in producer_hooks.items():
        wrap_function_wrapper(module, f"{producer}.{method}", hook)
    for method, single in consumer_methods.items():
        wrap_function_wrapper(module, f"{consumer}.{method}", consumer_call(method, single))


def unwrap_in_place(
    module: str,
    producer: str,
    producer_methods: Iterable[str],
    consumer: str,
    consumer_methods: Mapping[str, object],
) -> None:
    """Undo :func:`wrap_in_place` (the same tables)."""
    imported = importlib.import_module(module)
    for method in producer_methods:
        unwrap(getattr(imported, producer), method)
    for method in consumer_methods:
        unwrap(getattr(imported, consumer), method)
