"""contrib's instrumentations of the same three clients: whether one is instrumenting, and
taking over from it.

``opentelemetry-instrument`` loads every ``opentelemetry_instrumentor`` entry point it finds,
in no set order. With contrib's instrumentation of a client active beside kafkascope's, each
message gets two send spans and two consumer spans, contrib's receive span becomes the parent of
kafkascope's process span, and (kafka-python) contrib's send wrapper writes the ``traceparent``,
so kafkascope leaves the headers alone and the pipeline stamp is never written. So
:class:`~kafkascope.instrumentor.KafkascopeInstrumentor` uninstruments contrib's instrumentor of
each client it instruments: at once when contrib's ran first, and from the
``opentelemetry_post_instrument`` hook when contrib's ran after. Both go through contrib's own
``uninstrument()``; contrib's wrappers are the outer layer at that moment (nothing else wraps
these methods in between), so unwrapping them leaves kafkascope's in place.

Only contrib modules already imported are looked at: one that was never imported is not
instrumenting, and importing it would cost the application for nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from kafkascope._core import errors as _errors


@dataclass(frozen=True, slots=True)
class Contrib:
    """contrib's instrumentation of one client."""

    module: str
    """Its module, where its instrumentor class lives."""
    instrumentor: str
    """Its ``BaseInstrumentor`` subclass (one instance per class, as every instrumentor)."""
    distribution: str
    """Its package on PyPI, as the log line names it."""


CONTRIB: Final[dict[str, Contrib]] = {
    "kafka": Contrib(
        "opentelemetry.instrumentation.kafka",
        "KafkaInstrumentor",
        "opentelemetry-instrumentation-kafka-python",
    ),
    "aiokafka": Contrib(
        "opentelemetry.instrumentation.aiokafka",
        "AIOKafkaInstrumentor",
        "opentelemetry-instrumentation-aiokafka",
    ),
    "confluent_kafka": Contrib(
        "opentelemetry.instrumentation.confluent_kafka",
        "ConfluentKafkaInstrumentor",
        "opentelemetry-instrumentation-confluent-kafka",
    ),
}
"""By the import name of the client it instruments."""

_instances: dict[str, Any] = {}


def _instrumentor(package: str) -> Any:
    """contrib's instrumentor of the client ``package`` (None while its module is not
    imported)."""
    found = _instances.get(package)
    if found is None:
        contrib = CONTRIB[package]
        module = sys.modules.get(contrib.module)
        cls = getattr(module, contrib.instrumentor, None) if module is not None else None
        if cls is None:
            return None
        found = _instances[package] = cls()
    return found


def instrumenting(package: str) -> bool:
    """Whether contrib's instrumentation of the client ``package`` (``kafka``, ``aiokafka``,
    ``confluent_kafka``) is active."""
    found = _instrumentor(package)
    return found is not None and bool(found.is_instrumented_by_opentelemetry)


def take_over(packages: Iterable[str]) -> list[str]:
    """Uninstrument contrib's instrumentation of each of these clients that is active.

    Returns:
        The contrib distributions taken over from, for the caller's log line. A failure is
        reported once and that one is left as it was.
    """
    taken: list[str] = []
    for package in packages:
        contrib = CONTRIB.get(package)
        if contrib is None:
            continue
        try:
            if instrumenting(package):
                _instrumentor(package).uninstrument()
                taken.append(contrib.distribution)
        except Exception as exc:
            _errors.report(f"taking over from {contrib.distribution}", exc)
    return taken
