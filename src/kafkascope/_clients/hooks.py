"""One module per Kafka client: its traced producer and its zero-code hooks, nothing else.

Each module offers ``instrument(tracker)`` and ``uninstrument()`` for
:class:`~kafkascope.instrumentor.KafkascopeInstrumentor`; :mod:`.contrib` knows contrib's
instrumentations of the same clients, which the instrumentor takes over from.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from kafkascope._adapters.clients import group_of
from kafkascope._consume.tracker import ConsumerTracker, Describe, Described, description
from kafkascope._core.telemetry import server_of_bootstrap
from kafkascope._produce.send import send_hook

Wrapper = Callable[[Callable[..., Any], Any, Any, Any], Any]
"""A ``wrapt`` wrapper: ``(wrapped, instance, args, kwargs)``."""


Setting = Callable[[Any], object]
"""Reads one setting (bootstrap servers, client id) off a client's producer or consumer."""


def describer(bootstrap_of: Setting, client_id_of: Setting) -> Describe:
    """``consumer -> (group, bootstrap servers, client id)`` for a pure-Python client."""

    def describe(consumer: Any) -> Described:
        return description(group_of(consumer), bootstrap_of(consumer), client_id_of(consumer))

    return describe


def traced_send_hook(
    tracker: ConsumerTracker,
    bootstrap_of: Setting,
    client_id_of: Setting,
    traced_send: Callable[..., Any],
) -> Wrapper:
    """The zero-code ``send`` wrapper of a pure-Python client, with the tracker's providers."""
    return send_hook(
        tracker.tracer_provider,
        tracker.meter_provider,
        lambda producer: server_of_bootstrap(bootstrap_of(producer)),
        traced_send,
        client_id_of,
    )


def wrap_in_place(
    module: str,
    producer: str,
    send: Wrapper,
    consumer: str,
    consumer_methods: Mapping[str, bool | None],
    consumer_call: Callable[[str, bool | None], Wrapper],
) -> None:
    """Wrap ``producer.send`` and each of ``consumer``'s methods of a pure-Python client
    (``consumer_call(method, single)`` makes each method's wrapper)."""
    wrap_function_wrapper(module, f"{producer}.send", send)
    for method, single in consumer_methods.items():
        wrap_function_wrapper(module, f"{consumer}.{method}", consumer_call(method, single))


def unwrap_in_place(
    module: str, producer: str, consumer: str, consumer_methods: Mapping[str, object]
) -> None:
    """Undo :func:`wrap_in_place` (the same table)."""
    imported = importlib.import_module(module)
    unwrap(getattr(imported, producer), "send")
    for method in consumer_methods:
        unwrap(getattr(imported, consumer), method)
