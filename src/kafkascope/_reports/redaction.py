"""What ``kafkascope settings`` shows of the ``OTEL_*`` variables: everything but credentials.

A variable whose name says it holds a secret (``PASSWORD``, ``SECRET``, ``TOKEN``,
``CREDENTIAL``, ``AUTH``, ``API_KEY``, ``PRIVATE_KEY``) is shown as :data:`REDACTED`. A header
list (a name ending in ``_HEADERS``, such as ``OTEL_EXPORTER_OTLP_HEADERS``) keeps its header
names and loses every value; ``OTEL_PYTHON_KAFKASCOPE_CAPTURE_HEADERS``, names only, is shown.
In any other value, a URL keeps its scheme, host, port and path but loses its user
information, the values of its query and its fragment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

REDACTED: Final = "<redacted>"
_HEADER_NAMES: Final = "OTEL_PYTHON_KAFKASCOPE_CAPTURE_HEADERS"
"""A list of header names (and globs) that ends in ``_HEADERS`` but carries no value."""
_SECRET_NAME: Final = re.compile(
    r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|AUTH|API_?KEY|PRIVATE_?KEY", re.IGNORECASE
)
_URL: Final = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#@\s,]*@)?"
    r"(?P<place>[^?#\s,]*)(?P<query>\?[^#\s,]*)?(?P<fragment>#[^\s,]*)?"
)


def redact(name: str, value: str) -> str:
    """``value`` of the variable ``name`` with anything that can carry a credential replaced by
    :data:`REDACTED`."""
    if _SECRET_NAME.search(name):
        return REDACTED
    if name.upper() == _HEADER_NAMES:
        # Header names to capture, not name=value pairs: an item with a value is not one.
        return ",".join(REDACTED if "=" in item else item for item in value.split(","))
    if name.upper().endswith("_HEADERS"):
        return ",".join(_header(item) for item in value.split(","))
    return _URL.sub(_url, value)


def otel_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The ``OTEL_*`` variables of ``environ``, sorted by name, each :func:`redact`-ed."""
    return {
        name: redact(name, value)
        for name, value in sorted(environ.items())
        if name.startswith("OTEL_")
    }


def _header(item: str) -> str:
    key, equals, _ = item.partition("=")
    if not equals:  # not name=value: all of it may be the secret
        return REDACTED if item.strip() else item
    return f"{key}={REDACTED}"


def _url(match: re.Match[str]) -> str:
    userinfo = f"{REDACTED}@" if match["userinfo"] else ""
    query = match["query"] or ""
    if query:
        query = "?" + "&".join(
            f"{part.partition('=')[0]}={REDACTED}" if part else part
            for part in query[1:].split("&")
        )
    fragment = f"#{REDACTED}" if match["fragment"] else ""
    return f"{match['scheme']}{userinfo}{match['place']}{query}{fragment}"
