"""Kafka headers as an OpenTelemetry carrier: read and written without ever raising.

Headers arrive as a list of ``(key, value)`` tuples (kafka-python, aiokafka, confluent-kafka) or
as a mapping; keys may be ``str`` or ``bytes``, values ``bytes``, ``str`` or ``None``.

Inbound headers are untrusted: whatever the propagators in ``OTEL_PROPAGATORS`` do with them,
extraction reads a bounded amount of text and yields bounded baggage (the limits below).

A repeated header, as the OpenTelemetry Java agent reads it, so both sides of a mixed fleet agree.
Kafka keeps headers in order and lets a name repeat, so a record can carry a stale
``traceparent`` ahead of a fresh one (a relay that appended its own, or retries piling them up):

- ``traceparent``, ``tracestate`` and every other field: the last header counts (the agent's
  ``Headers.lastHeader``). If it cannot be read (not UTF-8, over :data:`MAX_VALUE_BYTES`), the
  field is absent: an earlier, stale value is never used instead.
- ``baggage``: the headers are combined in order, an entry of a later header overriding the same
  key of an earlier one (the W3C baggage spec allows several ``baggage`` headers to be combined,
  and the agent 2.33 reads them all; measured by ``tests/interop``). The combination keeps the
  latest headers that fit in :data:`MAX_VALUE_BYTES`, the size the SDK's baggage propagator
  accepts in one header; unreadable ones are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from opentelemetry import baggage, propagate
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter

from kafkascope._core.headers import Headers

MAX_VALUE_BYTES: Final = 8192
"""Header values longer than this many UTF-8 bytes are ignored by extraction (W3C baggage's
own limit for the whole header)."""
MAX_KEYS: Final = 128
"""At most this many header names (the first ones, in order) are reported to propagators that
enumerate the headers (Jaeger's ``uberctx-*`` and OpenTracing's ``ot-baggage-*`` baggage):
bounds both the baggage they can build and the number of look-ups they make."""
MAX_BAGGAGE_ENTRIES: Final = 180
"""Baggage entries kept after extraction, whatever the propagator (the SDK's W3C propagator's
own limit, so a W3C ``baggage`` header is never trimmed further)."""
MAX_BAGGAGE_BYTES: Final = 8192
"""Total size of the baggage kept after extraction, counted as ``key=value`` plus a separator
per entry (the W3C limit for a ``baggage`` header)."""
BAGGAGE_HEADER: Final = "baggage"
BAGGAGE_PREFIXES: Final = ("uberctx-", "ot-baggage-")
"""Header-name prefixes that carry baggage in the Jaeger and OpenTracing formats."""


_ABSENT: Final = object()


def text_of(value: object) -> str | None:
    """A header value as extraction reads it: text, or None when it cannot be read."""
    if type(value) is bytes:
        if len(value) > MAX_VALUE_BYTES:
            return None
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(value, str):
        text = str.__str__(value)  # a plain str, whatever a subclass overrides
        if len(text) > MAX_VALUE_BYTES:
            return None
        if text.isascii():
            return text
        try:  # lone surrogates cannot be sent, and make propagators that encode raise
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            return None
        return text if size <= MAX_VALUE_BYTES else None
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            data = memoryview(value).tobytes()  # a released memoryview raises ValueError
        except ValueError:
            return None
        if len(data) > MAX_VALUE_BYTES:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def name_of(key: object) -> str | None:
    """A header key as text for matching (undecodable bytes replaced), None if not a name."""
    if type(key) is str:
        return key
    if isinstance(key, bytes):
        return bytes.decode(key, "utf-8", "replace")
    if isinstance(key, str):
        return str.__str__(key)
    return None


def _size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def pairs_of(carrier: object) -> Iterable[Any]:
    """The ``(key, value)`` pairs of a list or mapping of headers."""
    if carrier is None:
        return ()
    if isinstance(carrier, Mapping):
        return carrier.items()
    if isinstance(carrier, str | bytes | bytearray):
        return ()
    return carrier  # type: ignore[return-value]


class HeaderGetter(Getter[Any]):
    """Reads propagation fields from Kafka headers, case-insensitively; never raises.

    A repeated name gives the value of its last header only, ``baggage`` excepted: its headers
    come back joined with ``,`` (see the module's docstring).

    Args:
        ignore: lower-case header names to treat as absent (e.g. ``{"baggage"}``).
        ignore_prefixes: lower-case header-name prefixes to treat as absent.
    """

    def __init__(
        self, ignore: frozenset[str] = frozenset(), ignore_prefixes: tuple[str, ...] = ()
    ) -> None:
        self._ignore = ignore
        self._ignore_prefixes = ignore_prefixes

    def _ignored(self, name: str) -> bool:
        return name in self._ignore or (
            bool(self._ignore_prefixes) and name.startswith(self._ignore_prefixes)
        )

    def get(self, carrier: Any, key: str) -> list[str] | None:
        """The value of the last header named ``key`` (in any case), as a one-item list."""
        wanted = key.lower()
        if self._ignored(wanted):
            return None
        if wanted == BAGGAGE_HEADER:
            return _combined(carrier)
        last: object = _ABSENT
        size = len(wanted)
        try:
            # Lists of pairs are what every client returns: skip the Mapping check for them.
            pairs = carrier if type(carrier) is list else pairs_of(carrier)
            for pair in pairs:
                try:
                    header_key, value = pair
                except (TypeError, ValueError):
                    continue  # not a pair: skip it, later headers still count
                if type(header_key) is not str:
                    header_key = name_of(header_key)
                    if header_key is None:
                        continue
                if header_key == wanted or (
                    len(header_key) == size and header_key.lower() == wanted
                ):
                    last = value
        except Exception:
            return None  # a carrier that fails while iterated: nothing in it is trusted
        if last is _ABSENT:
            return None
        text = text_of(last)  # decoded only once, for the header that counts
        return None if text is None else [text]

    def keys(self, carrier: Any) -> list[str]:
        names: list[str] = []
        try:
            for pair in pairs_of(carrier):
                try:
                    header_key, _ = pair
                except (TypeError, ValueError):
                    continue
                name = name_of(header_key)
                if name is None or self._ignored(name.lower()):
                    continue
                names.append(name)
                if len(names) >= MAX_KEYS:
                    break
        except Exception:
            return names
        return names


def _combined(carrier: Any) -> list[str] | None:
    """Every readable ``baggage`` header, joined in order; the latest that fit in
    :data:`MAX_VALUE_BYTES` together."""
    values: list[str] = []
    try:
        pairs = carrier if type(carrier) is list else pairs_of(carrier)
        for pair in pairs:
            try:
                header_key, value = pair
            except (TypeError, ValueError):
                continue
            name = header_key if type(header_key) is str else name_of(header_key)
            if name is None or len(name) != len(BAGGAGE_HEADER) or name.lower() != BAGGAGE_HEADER:
                continue
            text = text_of(value)
            if text:
                values.append(text)
    except Exception:
        return None
    kept: list[str] = []
    size = -1  # "," between values
    for text in reversed(values):
        size += _size(text) + 1
        if size > MAX_VALUE_BYTES:
            break
        kept.append(text)
    return [",".join(reversed(kept))] if kept else None


class ListSetter(Setter[list[tuple[str, bytes]]]):
    """Appends propagation fields to a kafka-python style header list as UTF-8 bytes."""

    def set(self, carrier: list[tuple[str, bytes]], key: str, value: str) -> None:
        carrier.append((key, value.encode("utf-8")))


GETTER: Final = HeaderGetter()
GETTER_WITHOUT_BAGGAGE: Final = HeaderGetter(frozenset({BAGGAGE_HEADER}), BAGGAGE_PREFIXES)


def extract_context(
    headers: Headers, *, context: Context | None = None, trust_baggage: bool = True
) -> Context:
    """Extract the producer's context from Kafka headers with the global propagator.

    Never raises: missing, malformed or undecodable headers give a context without a remote
    span, so processing starts a new trace. The resulting baggage is bounded (at most
    :data:`MAX_BAGGAGE_ENTRIES` entries, :data:`MAX_BAGGAGE_BYTES` in all; later entries are
    dropped).

    Args:
        headers: the record's headers, as a list of pairs or a mapping.
        context: the context to extract into (default: a fresh one).
        trust_baggage: when False, inbound baggage is ignored: the result carries the baggage
            of ``context``, whatever the headers say.

    Returns:
        The context to start the processing span in (its parent: the sender's span, if any).
    """
    base = context if context is not None else Context()
    try:
        extracted = propagate.extract(
            headers, context=base, getter=GETTER if trust_baggage else GETTER_WITHOUT_BAGGAGE
        )
        entries = baggage.get_all(extracted)
        if not entries:
            return extracted
        if not trust_baggage:
            return _replace_baggage(extracted, baggage.get_all(base))
        return bound_baggage(extracted, entries)
    except Exception:
        return base


def bound_baggage(ctx: Context, entries: Mapping[str, object]) -> Context:
    """``ctx`` with its baggage ``entries`` cut to the bounds (:data:`MAX_BAGGAGE_ENTRIES`,
    :data:`MAX_BAGGAGE_BYTES`)."""
    kept: dict[str, object] = {}
    size = -1  # as a header: "name=value" per entry, "," between them
    for name, value in entries.items():
        size += _size(name) + (_size(value) if isinstance(value, str) else 0) + 2
        if len(kept) >= MAX_BAGGAGE_ENTRIES or size > MAX_BAGGAGE_BYTES:
            return _replace_baggage(ctx, kept)
        kept[name] = value
    return ctx


def _replace_baggage(ctx: Context, entries: Mapping[str, object]) -> Context:
    if dict(baggage.get_all(ctx)) == dict(entries):
        return ctx
    ctx = baggage.clear(ctx)
    for name, value in entries.items():
        ctx = baggage.set_baggage(name, value, ctx)
    return ctx


def normalise_headers(headers: Headers) -> list[tuple[str, bytes | None]]:
    """Copy headers into a new list of ``(str, bytes | None)`` pairs, as Kafka clients send.

    Raises:
        TypeError: the headers are not pairs, or a key or value cannot be sent (a key that is
            not ``str`` or UTF-8 ``bytes``, a value that is not bytes-like, ``str`` or None,
            text that is not valid Unicode).
    """
    if isinstance(headers, str | bytes | bytearray | memoryview):
        raise TypeError(
            f"headers must be a list of (key, value) pairs or a mapping, "
            f"got {type(headers).__name__}"
        )
    out: list[tuple[str, bytes | None]] = []
    for pair in pairs_of(headers):
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise TypeError(f"a header must be a (key, value) pair, got {pair!r:.80}")
        key, value = pair
        name = _header_name(key)
        if value is None or type(value) is bytes:
            out.append((name, value))
        elif isinstance(value, str):
            out.append((name, _utf8(str.__str__(value), f"header {name!r} value")))
        elif isinstance(value, bytes | bytearray | memoryview):
            try:
                out.append((name, memoryview(value).tobytes()))
            except ValueError as exc:  # a released memoryview
                raise TypeError(f"header {name!r} value cannot be read: {exc}") from exc
        else:
            raise TypeError(
                f"header {name!r} value must be bytes, str or None, got {type(value).__name__}"
            )
    return out


def _header_name(key: object) -> str:
    if isinstance(key, bytes):
        try:
            return bytes.decode(key, "utf-8")
        except UnicodeDecodeError as exc:
            raise TypeError(f"header key {key!r:.80} is not UTF-8") from exc
    if not isinstance(key, str):
        raise TypeError(f"header key must be str or bytes, got {type(key).__name__}")
    name = str.__str__(key)
    _utf8(name, "header key")
    return name


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise TypeError(f"{what} {text!r:.80} is not valid Unicode") from exc


def replace_fields(
    headers: Iterable[tuple[str, bytes | None]],
    injected: Iterable[tuple[str, bytes]],
    fields: Iterable[str],
) -> list[tuple[str, bytes | None]]:
    """A new header list: ``headers`` less every propagation field, then ``injected``.

    A header is dropped when its name, in any case, is one of ``fields`` (the configured
    propagator's, say ``traceparent``, ``tracestate``, ``baggage``) or one that ``injected``
    sets. Kafka header names are case-sensitive and the Java agent removes only the exact name,
    but extraction here matches names in any case: a ``Traceparent`` left in place would be read
    as the same field, so it goes too. Every other header keeps its place; neither input is
    modified.
    """
    fresh = list(injected)
    drop = {name.lower() for name in fields} | {name.lower() for name, _ in fresh}
    kept: list[tuple[str, bytes | None]] = [pair for pair in headers if pair[0].lower() not in drop]
    return kept + fresh


def inject_headers(
    headers: Headers = None, *, context: Context | None = None
) -> list[tuple[str, bytes | None]]:
    """Return a copy of ``headers`` with the current trace context set for sending.

    The global propagator is used, so ``OTEL_PROPAGATORS`` is honoured. Its fields replace any
    already in ``headers`` (say, the inbound ``traceparent`` of a record being forwarded with its
    headers): every header named in the propagator's ``fields`` is removed, in any case, and
    the injected ones are appended, so the span of ``context`` is always the next hop's parent,
    as the Java agent's ``Headers.remove`` + ``add`` does. A field the propagator has no value
    for (no baggage) is removed too: the headers then say exactly what ``context`` holds. When
    nothing is injected at all (no span, tracing disabled) the headers are sent as they are.

    Args:
        headers: existing headers, as a list of pairs or a mapping (not modified).
        context: the context to inject (default: the current one).

    Returns:
        A new list of ``(name, bytes)`` headers to send with the record.

    Examples:
        ```python
        producer.produce("orders", value, headers=kafkascope.inject_headers(headers))
        ```

    Raises:
        TypeError: a header key or value is of a type Kafka clients cannot send.
    """
    out = normalise_headers(headers)
    fresh: list[tuple[str, bytes]] = []
    propagator = propagate.get_global_textmap()
    propagator.inject(fresh, context=context, setter=_LIST_SETTER)
    if not fresh:
        return out
    return replace_fields(out, fresh, propagator.fields)


_LIST_SETTER: Final = ListSetter()
