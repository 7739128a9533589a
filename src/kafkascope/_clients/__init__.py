"""One module per Kafka client: its traced producer and its zero-code hooks, nothing else.

Each module offers ``instrument(tracker)`` and ``uninstrument()`` for
:class:`~kafkascope.instrumentor.KafkascopeInstrumentor`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

Wrapper = Callable[[Callable[..., Any], Any, Any, Any], Any]
"""A ``wrapt`` wrapper: ``(wrapped, instance, args, kwargs)``."""


def wrap_in_place(
    module: str,
    producer: str,
    send: Wrapper,
    consumer: str,
    consumer_methods: Mapping[str, bool | None],
    consumer_call: Callable[[bool | None], Wrapper],
) -> None:
    """Wrap ``producer.send`` and each of ``consumer``'s methods of a pure-Python client."""
    wrap_function_wrapper(module, f"{producer}.send", send)
    for method, single in consumer_methods.items():
        wrap_function_wrapper(module, f"{consumer}.{method}", consumer_call(single))


def unwrap_in_place(
    module: str, producer: str, consumer: str, consumer_methods: Mapping[str, object]
) -> None:
    """Undo :func:`wrap_in_place` (the same table)."""
    imported = importlib.import_module(module)
    unwrap(getattr(imported, producer), "send")
    for method in consumer_methods:
        unwrap(getattr(imported, consumer), method)
