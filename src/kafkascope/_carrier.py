"""Kafka headers as an OpenTelemetry carrier: read and written without ever raising.

Headers arrive as a list of ``(key, value)`` tuples (kafka-python, aiokafka, confluent-kafka) or
as a mapping; keys may be ``str`` or ``bytes``, values ``bytes``, ``str`` or ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, TypeAlias

from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter

HeaderValue: TypeAlias = bytes | bytearray | memoryview | str | None
Headers: TypeAlias = (
    Iterable[tuple[str | bytes, HeaderValue]]
    | Mapping[str, HeaderValue]
    | Mapping[bytes, HeaderValue]
    | Mapping[str | bytes, HeaderValue]
    | None
)

MAX_VALUE_BYTES: Final = 8192
"""Header values longer than this are ignored by extraction (W3C baggage's own limit)."""
MAX_VALUES_PER_KEY: Final = 8
"""At most this many values of one header key are read (duplicates beyond are ignored)."""
BAGGAGE_HEADER: Final = "baggage"


def _text(value: object) -> str | None:
    if type(value) is bytes:
        if len(value) > MAX_VALUE_BYTES:
            return None
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(value, str):
        return value if len(value) <= MAX_VALUE_BYTES else None
    if isinstance(value, bytes | bytearray | memoryview):
        if len(value) > MAX_VALUE_BYTES:
            return None
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def _pairs(carrier: object) -> Iterable[Any]:
    if carrier is None:
        return ()
    if isinstance(carrier, Mapping):
        return carrier.items()
    if isinstance(carrier, str | bytes | bytearray):
        return ()
    return carrier  # type: ignore[return-value]


class HeaderGetter(Getter[Any]):
    """Reads propagation fields from Kafka headers, case-insensitively; never raises.

    Args:
        ignore: lower-case header names to treat as absent (e.g. ``{"baggage"}``).
    """

    def __init__(self, ignore: frozenset[str] = frozenset()) -> None:
        self._ignore = ignore

    def get(self, carrier: Any, key: str) -> list[str] | None:
        wanted = key.lower()
        if wanted in self._ignore:
            return None
        found: list[str] | None = None
        size = len(wanted)
        try:
            # Lists of pairs are what every client returns: skip the Mapping check for them.
            pairs = carrier if type(carrier) is list else _pairs(carrier)
            for header_key, value in pairs:
                if type(header_key) is not str:
                    if not isinstance(header_key, bytes | str):
                        continue
                    if isinstance(header_key, bytes):
                        header_key = header_key.decode("utf-8", "replace")
                if header_key != wanted and (
                    len(header_key) != size or header_key.lower() != wanted
                ):
                    continue
                text = _text(value)
                if text is None:
                    continue
                if found is None:
                    found = [text]
                elif len(found) < MAX_VALUES_PER_KEY:
                    found.append(text)
        except Exception:
            return found
        return found

    def keys(self, carrier: Any) -> list[str]:
        names: list[str] = []
        try:
            for header_key, _ in _pairs(carrier):
                if isinstance(header_key, bytes):
                    header_key = header_key.decode("utf-8", "replace")
                if isinstance(header_key, str):
                    names.append(header_key)
        except Exception:
            return names
        return names


class ListSetter(Setter[list[tuple[str, bytes]]]):
    """Appends propagation fields to a kafka-python style header list as UTF-8 bytes."""

    def set(self, carrier: list[tuple[str, bytes]], key: str, value: str) -> None:
        carrier.append((key, value.encode("utf-8")))


GETTER: Final = HeaderGetter()
GETTER_WITHOUT_BAGGAGE: Final = HeaderGetter(frozenset({BAGGAGE_HEADER}))


def extract_context(
    headers: Headers, *, context: Context | None = None, trust_baggage: bool = True
) -> Context:
    """Extract the producer's context from Kafka headers with the global propagator.

    Never raises: missing, malformed or undecodable headers give a context without a remote
    span, so processing starts a new trace.

    Args:
        headers: the record's headers, as a list of pairs or a mapping.
        context: the context to extract into (default: a fresh one).
        trust_baggage: when False, inbound ``baggage`` is ignored.
    """
    base = context if context is not None else Context()
    try:
        return propagate.extract(
            headers, context=base, getter=GETTER if trust_baggage else GETTER_WITHOUT_BAGGAGE
        )
    except Exception:
        return base


def normalise_headers(headers: Headers) -> list[tuple[str, bytes | None]]:
    """Copy headers into a new list of ``(str, bytes | None)`` pairs, as Kafka clients send."""
    out: list[tuple[str, bytes | None]] = []
    for key, value in _pairs(headers):
        name = key.decode("utf-8") if isinstance(key, bytes) else key
        if not isinstance(name, str):
            raise TypeError(f"header key must be str or bytes, got {type(key).__name__}")
        if value is None or isinstance(value, bytes):
            out.append((name, value))
        elif isinstance(value, str):
            out.append((name, value.encode("utf-8")))
        elif isinstance(value, bytearray | memoryview):
            out.append((name, bytes(value)))
        else:
            raise TypeError(
                f"header {name!r} value must be bytes, str or None, got {type(value).__name__}"
            )
    return out


def has_header(headers: Iterable[tuple[str, object]], names: Iterable[str]) -> bool:
    """Whether any of ``names`` (lower-case) is already among the header keys."""
    wanted = set(names)
    return any(key.lower() in wanted for key, _ in headers)


def inject_headers(
    headers: Headers = None, *, context: Context | None = None
) -> list[tuple[str, bytes | None]]:
    """Return a copy of ``headers`` with the current trace context added for sending.

    The global propagator is used, so ``OTEL_PROPAGATORS`` is honoured. A propagation field that
    is already present (say, a ``traceparent`` set by another instrumentation) is not added twice.

    Args:
        headers: existing headers, as a list of pairs or a mapping (not modified).
        context: the context to inject (default: the current one).

    Raises:
        TypeError: a header key or value is of a type Kafka clients cannot send.
    """
    out = normalise_headers(headers)
    fresh: list[tuple[str, bytes]] = []
    propagate.inject(fresh, context=context, setter=_LIST_SETTER)
    if fresh:
        present = {key.lower() for key, _ in out}
        out.extend(pair for pair in fresh if pair[0].lower() not in present)
    return out


_LIST_SETTER: Final = ListSetter()
