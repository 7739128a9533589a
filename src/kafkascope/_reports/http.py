"""Asking Jaeger and Prometheus over HTTP: where each is, the one check of its URL, the one GET
of JSON, and the one family of errors every reader raises. Standard library only."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any, Final, Literal

from kafkascope._reports.untrusted_json import mapping, text

Backend = Literal["Jaeger", "Prometheus"]

JAEGER_URL_ENV: Final = "KAFKASCOPE_JAEGER_URL"
DEFAULT_JAEGER_URL: Final = "http://127.0.0.1:16686"
PROMETHEUS_URL_ENV: Final = "KAFKASCOPE_PROMETHEUS_URL"
DEFAULT_PROMETHEUS_URL: Final = "http://127.0.0.1:9090"
URL_ENV: Final[Mapping[Backend, str]] = {
    "Jaeger": JAEGER_URL_ENV,
    "Prometheus": PROMETHEUS_URL_ENV,
}
"""The variable that gives the ``kafkascope`` command each backend's address."""
HINTS: Final[Mapping[Backend, str]] = {
    "Jaeger": f"set --jaeger URL or {JAEGER_URL_ENV}; Jaeger's query port is 16686 by default",
    "Prometheus": (
        f"set --prometheus URL or {PROMETHEUS_URL_ENV}; Prometheus's port is 9090 by default"
    ),
}
"""Where to set a backend's address, for the message that it cannot be reached."""
_ROLE: Final[Mapping[Backend, str]] = {
    "Jaeger": "Jaeger's query service",
    "Prometheus": "Prometheus",
}
_DETAIL_CHARACTERS: Final = 300


class BackendError(Exception):
    """Jaeger or Prometheus could not be asked, or answered something unusable.

    Attributes:
        backend: Which one.
        status: The HTTP status of an error answer (4xx, 5xx), else None.
        detail: What that error answer says (its ``errors``, ``error`` or first characters).
    """

    def __init__(
        self, message: str, *, backend: Backend, status: int | None = None, detail: str = ""
    ) -> None:
        super().__init__(message)
        self.backend: Backend = backend
        self.status = status
        self.detail = detail


class BackendUnreachableError(BackendError):
    """The backend could not be reached at all (refused, timed out, connection broken)."""


class NotFoundError(BackendError):
    """The backend holds nothing under that id (Jaeger: no such trace)."""


def base_url(url: str, *, what: Backend, option: str | None = None) -> str:
    """``url`` without trailing slashes, once it is an http(s) URL with a host.

    Args:
        url: The backend's address.
        what: The backend, named in the error.
        option: The command's option that took ``url`` (``--jaeger``); the error then names it
            and the variable it defaults to.

    Raises:
        ValueError: not an http(s) URL with a host.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        source = f" (from {option} or {URL_ENV[what]})" if option else ""
        raise ValueError(f"not an http(s) URL for {what}: {url!r}{source}")
    return url.rstrip("/")


def error_detail(answer: object) -> str | None:
    """What a backend's JSON answer says went wrong: Jaeger's ``errors[].msg``, Prometheus's
    ``error``; None if it says nothing."""
    fields = mapping(answer)
    errors = fields.get("errors")
    if isinstance(errors, list) and errors:
        return "; ".join(text(mapping(e).get("msg", e)) for e in errors)
    error = fields.get("error")
    return text(error)[:_DETAIL_CHARACTERS] if error else None


def _body_detail(body: bytes) -> str:
    try:
        said = error_detail(json.loads(body))
    except (ValueError, RecursionError):
        said = None
    return said or body[:_DETAIL_CHARACTERS].decode("utf-8", errors="replace").strip()


def get_json(url: str, *, timeout: float, what: Backend, server: str | None = None) -> Any:
    """GET ``url`` (``Accept: application/json``) and return its decoded JSON body.

    Args:
        url: What to GET.
        timeout: Seconds to wait for the connection and for each read.
        what: The backend asked, named in errors.
        server: The backend's base URL, named in errors instead of ``url``.

    Raises:
        BackendUnreachableError: No answer.
        BackendError: An error status (``status`` and ``detail`` set), or a body that is not
            JSON.
    """
    where = server or url
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as err:
        detail = _body_detail(err.read())
        raise BackendError(
            f"{what} answered {err.code} for {url}: {detail}",
            backend=what,
            status=err.code,
            detail=detail,
        ) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise BackendUnreachableError(
            f"cannot reach {what} at {where}: {reason or type(exc).__name__}", backend=what
        ) from None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise BackendError(
            f"{url} did not answer JSON; is {where} {_ROLE[what]}?", backend=what
        ) from None
