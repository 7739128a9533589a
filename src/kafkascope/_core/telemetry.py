"""What process spans, send spans and metrics share: kafkascope's tracer and meter on a provider,
the base messaging attributes, a bootstrap setting as ``server.address``/``server.port``, the
recorded message key, and an error on a span."""

from __future__ import annotations

import threading
import traceback
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

from opentelemetry import metrics, trace
from opentelemetry.trace import Span, Status, StatusCode, TracerProvider
from opentelemetry.util.types import AttributeValue

from kafkascope._core import errors as _errors
from kafkascope._core import semconv as sc
from kafkascope._core.settings import Settings
from kafkascope._version import __version__

T = TypeVar("T")

_tracers: weakref.WeakKeyDictionary[TracerProvider, trace.Tracer] = weakref.WeakKeyDictionary()
_last_tracer: tuple[TracerProvider, trace.Tracer] | None = None


def tracer_for(tracer_provider: TracerProvider | None) -> trace.Tracer:
    """kafkascope's tracer on ``tracer_provider`` (default: the global one), cached."""
    global _last_tracer
    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    last = _last_tracer
    if last is not None and last[0] is provider:
        return last[1]
    found = _tracers.get(provider)
    if found is None:
        found = _tracers[provider] = provider.get_tracer(
            "kafkascope", __version__, schema_url=sc.SCHEMA_URL
        )
    _last_tracer = (provider, found)
    return found


def meter_for(meter_provider: metrics.MeterProvider) -> metrics.Meter:
    """kafkascope's meter on ``meter_provider``."""
    return meter_provider.get_meter("kafkascope", __version__, schema_url=sc.SCHEMA_URL)


class ProviderCache(Generic[T]):
    """One ``T`` (a set of instruments) per meter provider, created on first use.

    Until a MeterProvider is set globally the API hands out a proxy whose instruments later
    forward to it. Making the instruments again on the provider set later would register the
    observable ones twice, and the SDK keeps only the first callback: so that provider reuses
    what was made on the proxy.
    """

    def __init__(self, create: Callable[[metrics.MeterProvider], T]) -> None:
        self._create = create
        self._by_provider: weakref.WeakKeyDictionary[metrics.MeterProvider, T] = (
            weakref.WeakKeyDictionary()
        )
        self.last: tuple[metrics.MeterProvider, T] | None = None
        """The provider :meth:`get` last answered for, and its ``T``: the per-message paths
        read it first, for the call."""
        self._first_global: metrics.MeterProvider | None = None
        self._lock = threading.Lock()

    def get(self, meter_provider: metrics.MeterProvider | None) -> T:
        """The ``T`` of ``meter_provider`` (default: the global one)."""
        provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        last = self.last
        if last is not None and last[0] is provider:
            return last[1]
        with self._lock:
            current = metrics.get_meter_provider()
            if self._first_global is None:
                self._first_global = current
            found = self._by_provider.get(provider)
            if found is None and provider is current and self._first_global is not current:
                found = self._by_provider.get(self._first_global)
            if found is None:
                found = self._create(provider)
            self._by_provider[provider] = found
            self.last = (provider, found)
        return found


def messaging_attributes(
    operation: str | None = None,
    *,
    topic: str | None = None,
    partition: int | None = None,
    group: str | None = None,
    server_address: str | None = None,
    server_port: int | None = None,
    client_id: str | None = None,
) -> dict[str, AttributeValue]:
    """``messaging.system`` and those of the other base attributes that are known."""
    attrs: dict[str, AttributeValue] = {sc.MESSAGING_SYSTEM: sc.KAFKA}
    if operation is not None:
        attrs[sc.MESSAGING_OPERATION_NAME] = operation
        attrs[sc.MESSAGING_OPERATION_TYPE] = operation
    if topic is not None:
        attrs[sc.MESSAGING_DESTINATION_NAME] = topic
    if partition is not None:
        attrs[sc.MESSAGING_DESTINATION_PARTITION_ID] = str(partition)
    if group is not None:
        attrs[sc.MESSAGING_CONSUMER_GROUP_NAME] = group
    if server_address is not None:
        attrs[sc.SERVER_ADDRESS] = server_address
    if server_port is not None:
        attrs[sc.SERVER_PORT] = server_port
    if client_id is not None:
        attrs[sc.MESSAGING_CLIENT_ID] = client_id
    return attrs


def parse_server(server: object, setting: str = "server") -> tuple[str | None, int | None]:
    """Split ``"host:port"`` (the first of a bootstrap list) into address and port.

    Raises:
        TypeError: ``server`` is neither None nor a non-empty string.
        ValueError: the port is not one.
    """
    if server is None:
        return None, None
    if not isinstance(server, str) or not server.strip():
        raise TypeError(f"{setting} must be a 'host:port' string or None, got {server!r}")
    first = server.split(",")[0].strip()
    host, sep, port = first.rpartition(":")
    if not sep:
        return first, None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{setting}={server!r} has an invalid port {port!r}")
    return host.strip("[]") or None, int(port)


def server_of_bootstrap(servers: object) -> tuple[str | None, int | None]:
    """``server.address``/``.port`` of a client's bootstrap setting (a string or a list);
    ``(None, None)`` for anything unreadable."""
    if isinstance(servers, list | tuple):
        servers = servers[0] if servers else None
    try:
        return parse_server(servers) if isinstance(servers, str) else (None, None)
    except (TypeError, ValueError):
        return None, None


def message_key(key: object, settings: Settings, capture: bool | None) -> str | None:
    """The key to record: UTF-8 text only, through the redaction hook, unless capture is off."""
    if not (settings.capture_key if capture is None else capture) or key is None:
        return None
    if isinstance(key, bytes):
        try:
            text = key.decode("utf-8")
        except UnicodeDecodeError:
            return None
    elif isinstance(key, str):
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            return None  # lone surrogates: not exportable
        text = key
    else:
        return None
    hook = settings.key_hook
    if hook is None:
        return text
    try:
        redacted = hook(text)
    except Exception as exc:
        _errors.report("key_hook", exc)
        return None
    return redacted if isinstance(redacted, str) else None


def error_type(exc: BaseException) -> str:
    """The fully qualified class name of ``exc``; builtins keep their bare name."""
    cls = type(exc)
    module = cls.__module__
    if module == "builtins":
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def exception_event(exc: BaseException) -> dict[str, AttributeValue]:
    """The attributes of the ``exception`` span event for ``exc``: type, message, stacktrace.

    The SDK's ``record_exception`` would add ``exception.escaped`` too, deprecated by the
    conventions (and always ``"False"`` there, though kafkascope re-raises): this is its event
    without it.
    """
    cls = type(exc)
    module = cls.__module__
    return {
        sc.EXCEPTION_TYPE: (
            f"{module}.{cls.__qualname__}" if module and module != "builtins" else cls.__qualname__
        ),
        sc.EXCEPTION_MESSAGE: str(exc),
        sc.EXCEPTION_STACKTRACE: "".join(traceback.format_exception(exc)),
    }


def record_error(span: Span, exc: BaseException, error_type: str) -> None:
    """The exception event, ``error.type`` and ERROR status on ``span``, if it records."""
    if span.is_recording():
        span.add_event(sc.EXCEPTION_EVENT, exception_event(exc))
        span.set_attribute(sc.ERROR_TYPE, error_type)
        span.set_status(Status(StatusCode.ERROR, f"{error_type}: {exc}"))
