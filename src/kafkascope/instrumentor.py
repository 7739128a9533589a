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
kafka-python always; aiokafka and confluent-kafka when installed. Faust, when installed: each
``faust.App`` created gets a :class:`~kafkascope.faust.KafkascopeSensor` (process spans around
its agents' events; Faust is not imported here, the hook waits for the application to import
it). Options come from ``OTEL_PYTHON_KAFKASCOPE_*`` (parent policy, key capture, lag gauge). Inside
``suppress_instrumentation()`` nothing is traced.

contrib's instrumentations of the same clients (``opentelemetry-instrumentation-kafka-python``,
``-aiokafka``, ``-confluent-kafka``) are taken over from, whichever of the two
``opentelemetry-instrument`` loads first: ``instrument()`` uninstruments those already active,
and :func:`take_over_from_contrib` (entry point ``kafkascope`` in
``opentelemetry_post_instrument``) those loaded after it; a warning names them.
``keep_contrib=True`` (or ``OTEL_PYTHON_KAFKASCOPE_KEEP_CONTRIB=true``) leaves them active.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable, Collection
from types import ModuleType
from typing import Any, Final

from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from wrapt import register_post_import_hook

from kafkascope._clients import aiokafka as _aiokafka
from kafkascope._clients import confluent as _confluent
from kafkascope._clients import contrib as _contrib
from kafkascope._clients import kafka_python as _kafka_python
from kafkascope._consume.tracker import ConsumerTracker
from kafkascope._core import errors as _errors
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
"""kafkascope's module for each client, by the client's import name."""

_logger = logging.getLogger(__name__)


class KafkascopeInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments kafka-python, aiokafka and confluent-kafka; undone by ``uninstrument()``.

    ``BaseInstrumentor`` hands out one instance per class, and Python runs ``__init__`` on it
    at every ``KafkascopeInstrumentor()`` call, so the state lives in ``_instrument`` alone: a
    later ``KafkascopeInstrumentor().uninstrument()`` undoes what an earlier call did.

    ``instrument()`` takes ``tracer_provider=`` and ``meter_provider=`` (default: the global
    ones) and ``keep_contrib=``: True leaves contrib's instrumentations of the same clients
    active beside kafkascope's (both sets of spans); the default is
    ``OTEL_PYTHON_KAFKASCOPE_KEEP_CONTRIB``, else False. A ``keep_contrib`` that is not a bool
    raises TypeError.
    """

    _tracker: ConsumerTracker | None = None
    _packages: tuple[str, ...] = ()
    """The import names of the clients instrumented."""
    _keep_contrib: bool = False
    _log_handlers: tuple[logging.Handler, ...] = ()
    _faust: bool = False
    """Whether ``faust.App.__init__`` is wrapped."""

    def instrumentation_dependencies(self) -> Collection[str]:
        """The client versions this instrumentor requires (the others are optional)."""
        return (_KAFKA_PYTHON,)

    def _instrument(self, **kwargs: Any) -> None:
        keep = kwargs.get("keep_contrib")
        keep_contrib = (
            _keep_contrib_from_env() if keep is None else _settings.check_bool(keep, "keep_contrib")
        )
        tracker = ConsumerTracker(kwargs.get("tracer_provider"), kwargs.get("meter_provider"))
        self._tracker = tracker
        self._keep_contrib = keep_contrib
        # opentelemetry-instrument's logging handler (if logs are on) gets the messaging fields.
        self._log_handlers = tuple(correlate_otel_log_handlers())
        _settings.current()  # a bad OTEL_PYTHON_KAFKASCOPE_* variable is reported at start-up
        packages = tuple(p for p in _CLIENTS if importlib.util.find_spec(p) is not None)
        if not keep_contrib:
            # Before wrapping: contrib's wrappers are then the outer layer, which is what its
            # uninstrument() takes off.
            _log_take_over(_contrib.take_over(packages))
        instrumented = []
        for package in packages:
            _CLIENTS[package].instrument(tracker)
            instrumented.append(package)
        self._packages = tuple(instrumented)
        if importlib.util.find_spec("faust") is not None:
            register_post_import_hook(_faust_hook(tracker), _FAUST_MODULE)

    def _uninstrument(self, **kwargs: Any) -> None:
        for package in self._packages:
            _CLIENTS[package].uninstrument()
        self._packages = ()
        if self._faust:
            from kafkascope._clients import faust as _faust

            _faust.uninstrument()
            self._faust = False
        if self._tracker is not None:
            self._tracker.end_all()
            self._tracker = None
        for handler in self._log_handlers:
            for found in [
                f for f in handler.filters if isinstance(f, (MessageLogFilter, DiagnosticsToStderr))
            ]:
                handler.removeFilter(found)
        self._log_handlers = ()


_FAUST_MODULE: Final = "faust.app.base"
"""Where ``faust.App`` is defined: wrapped once the application imports it."""


def _faust_hook(tracker: ConsumerTracker) -> Callable[[ModuleType], None]:
    """Wraps ``faust.App.__init__`` once Faust is imported, while ``tracker``'s
    instrumentation is still the active one (an import hook cannot be taken back)."""

    def imported(_module: ModuleType) -> None:
        instrumentor = KafkascopeInstrumentor()
        if instrumentor._tracker is not tracker or instrumentor._faust:
            return
        try:
            from kafkascope._clients import faust as _faust

            _faust.instrument(
                tracker.tracer_provider, tracker.meter_provider, instrumentor._log_handlers
            )
            instrumentor._faust = True
        except Exception as exc:
            _errors.report("Faust instrumentation", exc)

    return imported


def take_over_from_contrib() -> None:
    """Uninstrument contrib's instrumentations of the clients kafkascope instruments, when
    they were instrumented after :class:`KafkascopeInstrumentor` (a warning names them).

    ``opentelemetry-instrument`` calls this once every instrumentor is loaded (entry point
    ``kafkascope`` in ``opentelemetry_post_instrument``). Nothing happens when kafkascope's
    instrumentor is not active or was told to keep contrib's. Never raises.
    """
    instrumentor = KafkascopeInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry and not instrumentor._keep_contrib:
        _log_take_over(_contrib.take_over(instrumentor._packages))


def _keep_contrib_from_env() -> bool:
    """``OTEL_PYTHON_KAFKASCOPE_KEEP_CONTRIB``; a bad value is logged and taken as false (an
    exception here would stop ``opentelemetry-instrument`` loading the other instrumentors)."""
    try:
        return _settings.env_bool(os.environ, _settings.ENV_KEEP_CONTRIB, False)
    except ValueError as exc:
        _logger.error("kafkascope: %s; taking over from contrib's instrumentations", exc)
        return False


def _log_take_over(distributions: list[str]) -> None:
    if distributions:
        _logger.warning(
            "kafkascope took over from %s (uninstrumented): each message gets kafkascope's send "
            "and process spans only; set %s=true to keep both",
            ", ".join(distributions),
            _settings.ENV_KEEP_CONTRIB,
        )
