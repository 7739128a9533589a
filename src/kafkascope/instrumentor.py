"""``KafkascopeInstrumentor``: zero-code instrumentation for ``opentelemetry-instrument``
(entry point ``kafkascope`` in ``opentelemetry_instrumentor``).

Produce side: each client's send is traced as :class:`~kafkascope.TracedProducer` (and the
confluent-kafka and aiokafka wrappers) do. Consume side: each record a consumer hands out gets a
``process`` span that is current while the application's loop body runs and ends at the
consumer's next call (next record, poll, commit, close) or when the loop ends; a fetch of many
records gets one batch span with a link per record. ``subscribe()`` wraps the application's
rebalance listener (or callbacks), or installs one, so rebalances are logged and counted; a
kafka-python consumer without a listener gets none and its assignment is compared after each
poll instead (:mod:`kafkascope._observe.rebalance_diff`).
kafka-python always; aiokafka and confluent-kafka when installed. Options come from
``OTEL_PYTHON_KAFKASCOPE_*`` (parent policy, key capture, lag gauge). Inside
``suppress_instrumentation()`` nothing is traced.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Collection
from types import ModuleType
from typing import Any, Final

from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from kafkascope._clients import aiokafka as _aiokafka
from kafkascope._clients import confluent as _confluent
from kafkascope._clients import kafka_python as _kafka_python
from kafkascope._consume.tracker import ConsumerTracker
from kafkascope._core import settings as _settings
from kafkascope._setup.logs import (
    DiagnosticsToStderr,
    MessageLogFilter,
    correlate_otel_log_handlers,
)

_KAFKA_PYTHON: Final = "kafka-python >= 2.1.0, < 4"
_CLIENTS: Final[dict[str, ModuleType]] = {
    "kafka": _kafka_python,
    "aiokafka": _aiokafka,
    "confluent_kafka": _confluent,
}


class KafkascopeInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments kafka-python, aiokafka and confluent-kafka; undone by ``uninstrument()``.

    ``BaseInstrumentor`` hands out one instance per class, and Python runs ``__init__`` on it
    at every ``KafkascopeInstrumentor()`` call, so the state lives in ``_instrument`` alone: a
    later ``KafkascopeInstrumentor().uninstrument()`` undoes what an earlier call did.
    """

    _tracker: ConsumerTracker | None = None
    _clients: tuple[ModuleType, ...] = ()
    _log_handlers: tuple[logging.Handler, ...] = ()

    def instrumentation_dependencies(self) -> Collection[str]:
        """The client versions this instrumentor requires (the others are optional)."""
        return (_KAFKA_PYTHON,)

    def _instrument(self, **kwargs: Any) -> None:
        tracker = ConsumerTracker(kwargs.get("tracer_provider"), kwargs.get("meter_provider"))
        self._tracker = tracker
        # opentelemetry-instrument's logging handler (if logs are on) gets the messaging fields.
        self._log_handlers = tuple(correlate_otel_log_handlers())
        _settings.current()  # a bad OTEL_PYTHON_KAFKASCOPE_* variable is reported at start-up
        clients = []
        for package, client in _CLIENTS.items():
            if importlib.util.find_spec(package) is not None:
                client.instrument(tracker)
                clients.append(client)
        self._clients = tuple(clients)

    def _uninstrument(self, **kwargs: Any) -> None:
        for client in self._clients:
            client.uninstrument()
        self._clients = ()
        if self._tracker is not None:
            self._tracker.end_all()
            self._tracker = None
        for handler in self._log_handlers:
            for found in [
                f for f in handler.filters if isinstance(f, (MessageLogFilter, DiagnosticsToStderr))
            ]:
                handler.removeFilter(found)
        self._log_handlers = ()
