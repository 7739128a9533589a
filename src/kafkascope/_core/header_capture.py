"""Chosen record headers as ``messaging.header.<name>`` span attributes, and the conversation id.

Patterns are header names or ``*``/``?`` globs, matched without regard to case; a pattern starting
with ``!`` excludes. Nothing is captured unless named. A glob never captures the trace-context
and baggage headers (nor kafkascope's own) or a name that looks like a credential: those need
their exact name. Every value is bounded (:data:`MAX_VALUE_LENGTH`, :data:`MAX_VALUES`,
:data:`MAX_HEADERS`, :data:`MAX_SCANNED`), and reading hostile headers never raises.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from itertools import islice
from typing import Final

from opentelemetry.util.types import AttributeValue

from kafkascope._core import semconv as sc
from kafkascope._core.errors import ConfigurationError
from kafkascope._core.headers import Headers

ATTRIBUTE_PREFIX: Final = "messaging.header."
MAX_VALUE_LENGTH: Final = 256
"""Characters kept of a captured value (or conversation id); the rest is cut off."""
MAX_VALUES: Final = 8
"""Values kept of one header that a record repeats."""
MAX_HEADERS: Final = 16
"""Distinct headers captured from one record."""
MAX_SCANNED: Final = 1024
"""Headers of one record looked at; later ones are never captured."""
MAX_NAME_LENGTH: Final = 128
"""A longer header name is never captured."""
_MAX_DECIDED: Final = 4096
"""Header names whose verdict a capture remembers."""

PROTECTED: Final = (
    "traceparent", "tracestate", "baggage", "b3", "x-b3-*", "uber-trace-id", "uberctx-*",
    "ot-tracer-*", "ot-baggage-*", "kafkascope-*", "kafkascope.*",
)  # fmt: skip
"""Trace-context, baggage and kafkascope's own headers: captured by their exact name only."""
CREDENTIAL_WORDS: Final = (
    "auth", "cookie", "password", "passwd", "pwd", "secret", "token", "api-key", "apikey",
    "credential", "private-key", "session", "signature", "jwt", "bearer",
)  # fmt: skip
"""A header name containing one of these (``_`` read as ``-``) is captured by its exact name
only."""

_PATTERN: Final = re.compile(r"[^\s,\[\]]+")


def _glob_text(pattern: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


def _globs(patterns: Iterable[str]) -> re.Pattern[str] | None:
    """One regex matching any of ``patterns`` (None for none): one match call per name."""
    texts = [_glob_text(p) for p in patterns]
    return re.compile("|".join(f"(?:{t})" for t in texts), re.DOTALL) if texts else None


_PROTECTED_GLOBS: Final = _globs(PROTECTED)


def attribute_key(name: str) -> str:
    """``messaging.header.<name>`` as the Java agent names it: lower case, ``-`` as ``_``."""
    return ATTRIBUTE_PREFIX + name.lower().replace("-", "_")


def is_protected(name: str) -> bool:
    """Whether a glob must never capture ``name`` (trace context, baggage, credentials)."""
    lowered = name.lower()
    if _PROTECTED_GLOBS is not None and _PROTECTED_GLOBS.fullmatch(lowered):
        return True
    dashed = lowered.replace("_", "-")
    return any(word in dashed for word in CREDENTIAL_WORDS)


class HeaderCapture:
    """Which headers to capture, compiled once from validated patterns."""

    __slots__ = ("_exact", "_excluded", "_included", "decided", "patterns")

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = tuple(patterns)
        self._exact = frozenset(
            p.lower() for p in patterns if not p.startswith("!") and not _is_glob(p)
        )
        self._included = _globs(
            p.lower() for p in patterns if not p.startswith("!") and _is_glob(p)
        )
        self._excluded = _globs(p[1:].lower() for p in patterns if p.startswith("!"))
        self.decided: dict[str, str | None] = {}
        """Each header name seen (as the record spells it) with its attribute key or None: read
        by :func:`header_attributes` before :meth:`key_of` is asked."""

    def __repr__(self) -> str:
        return f"HeaderCapture({','.join(self.patterns)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HeaderCapture) and other.patterns == self.patterns

    def __hash__(self) -> int:
        return hash(self.patterns)

    def key_of(self, name: str) -> str | None:
        """The attribute key of header ``name``, or None when it is not captured."""
        found = self.decided.get(name, "")  # "" is no attribute key: not decided yet
        if found != "":
            return found
        found = self._decide(name)
        if len(self.decided) < _MAX_DECIDED:
            self.decided[name] = found
        return found

    def _decide(self, name: str) -> str | None:
        if len(name) > MAX_NAME_LENGTH or not name.isprintable() or not _encodable(name):
            return None
        lowered = name.lower()
        if self._excluded is not None and self._excluded.fullmatch(lowered):
            return None
        if lowered in self._exact:
            return attribute_key(lowered)
        if (
            self._included is not None
            and self._included.fullmatch(lowered)
            and not is_protected(lowered)
        ):
            return attribute_key(lowered)
        return None


def _is_glob(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_patterns(value: object, setting: str) -> HeaderCapture | None:
    """Validate header patterns: a comma-separated string or a sequence of strings.

    Returns:
        The compiled capture; None when no header is named.

    Raises:
        ConfigurationError: a pattern that is not one; the message names ``setting``.
    """
    if value is None:
        return None
    if isinstance(value, str):
        items: Iterable[object] = value.split(",")
    elif isinstance(value, Sequence):
        items = value
    else:
        raise ConfigurationError(
            setting, f"{setting}={value!r} is not a comma-separated string or a list of names"
        )
    patterns: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigurationError(
                setting, f"{setting}={value!r} holds {item!r}, which is not a header name"
            )
        text = item.strip()
        if not text and isinstance(value, str):
            continue
        body = text[1:] if text.startswith("!") else text
        if not body or not _PATTERN.fullmatch(body) or "!" in body or len(body) > MAX_NAME_LENGTH:
            raise ConfigurationError(
                setting,
                f"{setting}={value!r} holds {item!r}, which is not a header name or a glob "
                "of one (no spaces, commas or brackets; '!' only in front to exclude)",
            )
        patterns.append(text)
    if not any(not p.startswith("!") for p in patterns):
        return None
    return HeaderCapture(patterns)


def parse_header_name(value: object, setting: str) -> str | None:
    """Validate one exact header name (the conversation id's); None or ``""`` is none.

    Raises:
        ConfigurationError: not a plain header name; the message names ``setting``.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if (
        not isinstance(value, str)
        or not _PATTERN.fullmatch(value.strip())
        or _is_glob(value)
        or "!" in value
        or len(value.strip()) > MAX_NAME_LENGTH
    ):
        raise ConfigurationError(
            setting, f"{setting}={value!r} is not a header name (no globs, spaces or commas)"
        )
    return value.strip().lower()


def render(value: object) -> str | None:
    """A header value as bounded text: UTF-8 with undecodable bytes as U+FFFD, cut at
    :data:`MAX_VALUE_LENGTH` characters; None for a null or non-text value."""
    if type(value) is bytes or isinstance(value, bytes | bytearray | memoryview):
        # Four bytes per character at most: never decode more than can be kept.
        head = bytes(value[: MAX_VALUE_LENGTH * 4])
        return head.decode("utf-8", "replace")[:MAX_VALUE_LENGTH]
    if isinstance(value, str):
        text = str.__str__(value)[:MAX_VALUE_LENGTH]
        return text if _encodable(text) else text.encode("utf-8", "replace").decode("utf-8")
    return None


def _name_text(name: object) -> str | None:
    if isinstance(name, str):
        return str.__str__(name)
    if isinstance(name, bytes | bytearray):
        try:
            return bytes(name[: MAX_NAME_LENGTH + 1]).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def header_attributes(
    headers: Headers,
    capture: HeaderCapture | None,
    conversation: str | None,
    out: dict[str, AttributeValue] | None = None,
) -> dict[str, AttributeValue]:
    """The captured headers and the conversation id of one record's ``headers``, added to
    ``out`` (default: a new dict) and returned.

    Never raises: a hostile header (or a headers object whose iteration fails) is skipped.
    """
    if out is None:
        out = {}
    if headers is None:
        return out
    found: dict[str, list[str]] = {}
    # Per message and per header: the usual shapes (a list of (str, bytes) pairs, a name
    # already decided, a short bytes value) take the first branch of each test.
    decided = capture.decided if capture is not None else None
    with suppress(Exception):  # hostile headers (a raising iterator): keep what was read
        pairs: Iterable[object]
        if type(headers) is list:
            pairs = headers
        else:
            pairs = headers.items() if isinstance(headers, Mapping) else headers
        for pair in islice(pairs, MAX_SCANNED):
            if type(pair) is not tuple and not isinstance(pair, tuple):
                continue
            if len(pair) != 2:
                continue
            name, value = pair
            if type(name) is not str:
                name = _name_text(name)
                if name is None:
                    continue
            if (
                conversation is not None
                and sc.MESSAGING_MESSAGE_CONVERSATION_ID not in out
                and name.lower() == conversation
            ):
                text = render(value)
                if text is not None:
                    out[sc.MESSAGING_MESSAGE_CONVERSATION_ID] = text
            if decided is None:
                continue
            key = decided.get(name, "")  # "" is no attribute key: not decided yet
            if key is None:
                continue
            if not key:
                key = capture.key_of(name)  # type: ignore[union-attr]  # decided: capture is set
                if key is None:
                    continue
            values = found.get(key)
            if values is None:
                if len(found) >= MAX_HEADERS:
                    continue
                values = found[key] = []
            if len(values) < MAX_VALUES:
                if type(value) is bytes and len(value) <= MAX_VALUE_LENGTH:
                    values.append(value.decode("utf-8", "replace"))  # never over the bound
                elif (text := render(value)) is not None:
                    values.append(text)
    for key, values in found.items():
        if values:
            out[key] = tuple(values)
    return out
