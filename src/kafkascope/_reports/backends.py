"""Reading Jaeger's and Prometheus's HTTP APIs: one trace, the traces of a window, and instant
queries at the window's end. Standard library only."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from kafkascope._reports.topology import PromQuery
from kafkascope._reports.untrusted_json import text


class BackendError(Exception):
    """Jaeger or Prometheus could not be reached or answered something unusable."""


class BackendUnreachableError(BackendError):
    """Jaeger or Prometheus (``backend``) could not be reached at all."""

    def __init__(self, message: str, *, backend: str) -> None:
        super().__init__(message)
        self.backend = backend


class TraceNotFoundError(BackendError):
    """Jaeger has no trace of that id."""


def _get_json(url: str, *, timeout: float, what: str) -> Any:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as err:
        detail = err.read()[:200].decode("utf-8", errors="replace").strip()
        raise BackendError(f"{what} answered {err.code} for {url}: {detail}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise BackendUnreachableError(
            f"cannot reach {what} at {url}: {reason}", backend=what
        ) from None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise BackendError(f"{what} did not answer JSON at {url}") from None


def _jaeger_errors(body: bytes) -> str:
    """The ``errors`` messages of a Jaeger API answer, else the start of the body."""
    try:
        answer = json.loads(body)
        messages = [text(e.get("msg", e)) for e in answer.get("errors") or []]
    except (ValueError, AttributeError, TypeError, RecursionError):
        messages = []
    return "; ".join(messages) or body[:200].decode("utf-8", errors="replace").strip()


def jaeger_trace(base_url: str, trace_id: str, *, timeout: float) -> dict[str, Any]:
    """GET ``{base_url}/api/traces/{trace_id}`` and return the trace (``spans``, ``processes``).

    Raises:
        TraceNotFoundError: Jaeger has no such trace.
        BackendUnreachableError: Jaeger cannot be reached.
        BackendError: Jaeger answers something else than a trace.
    """
    url = f"{base_url}/api/traces/{urllib.parse.quote(trace_id)}"
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as err:
        detail = _jaeger_errors(err.read())
        if err.code == 404:
            raise TraceNotFoundError(
                f"Jaeger at {base_url} has no trace {trace_id} ({detail})"
            ) from None
        raise BackendError(
            f"Jaeger at {base_url} answered {err.code} for trace {trace_id}: {detail}"
        ) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise BackendUnreachableError(
            f"cannot reach Jaeger at {base_url}: {reason or type(exc).__name__}", backend="Jaeger"
        ) from None
    try:
        answer = json.loads(body)
    except (ValueError, RecursionError):
        raise BackendError(
            f"{url} did not answer JSON; is {base_url} Jaeger's query service?"
        ) from None
    data = answer.get("data") if isinstance(answer, dict) else None
    if not data:
        raise TraceNotFoundError(
            f"Jaeger at {base_url} has no trace {trace_id} ({_jaeger_errors(body)})"
        )
    trace = data[0] if isinstance(data, list) else None
    if not isinstance(trace, dict):
        raise BackendError(f"unexpected answer from {url}: {body[:200]!r}")
    return trace


def jaeger_services(base_url: str, *, timeout: float) -> list[str]:
    """The service names Jaeger knows (``/api/services``)."""
    answer = _get_json(f"{base_url}/api/services", timeout=timeout, what="Jaeger")
    data = answer.get("data") if isinstance(answer, Mapping) else None
    if not isinstance(data, list):
        raise BackendError(f"unexpected answer from {base_url}/api/services: {answer!r:.200}")
    return sorted(str(name) for name in data)


def jaeger_traces(
    base_url: str,
    *,
    start_us: int,
    end_us: int,
    limit: int,
    timeout: float,
    services: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Traces with spans between ``start_us`` and ``end_us`` (microseconds since the epoch).

    Jaeger's search needs a service: every service is searched (or ``services``), each for at
    most ``limit`` traces; a trace found under several services is returned once.
    """
    names = list(services) if services is not None else jaeger_services(base_url, timeout=timeout)
    found: dict[int, dict[str, Any]] = {}
    for service in names:
        query = urllib.parse.urlencode(
            {"service": service, "start": start_us, "end": end_us, "limit": limit}
        )
        answer = _get_json(f"{base_url}/api/traces?{query}", timeout=timeout, what="Jaeger")
        data = answer.get("data") if isinstance(answer, Mapping) else None
        if not isinstance(data, list):
            raise BackendError(f"unexpected trace search answer from {base_url}: {answer!r:.200}")
        for trace in data:
            if not isinstance(trace, dict):
                continue
            try:
                found.setdefault(int(str(trace.get("traceID")), 16), trace)
            except ValueError:
                continue
    return list(found.values())


def prometheus_query(base_url: str, *, at: float, timeout: float) -> PromQuery:
    """``query(promql)`` against Prometheus's ``/api/v1/query``, evaluated at ``at`` (epoch s)."""

    def query(promql: str) -> Sequence[Mapping[str, Any]]:
        params = urllib.parse.urlencode({"query": promql, "time": f"{at:.3f}"})
        url = f"{base_url}/api/v1/query?{params}"
        answer = _get_json(url, timeout=timeout, what="Prometheus")
        data = answer.get("data") if isinstance(answer, Mapping) else None
        if answer.get("status") != "success" or not isinstance(data, Mapping):
            raise BackendError(f"Prometheus query failed: {promql}: {answer!r:.200}")
        result = data.get("result")
        return result if isinstance(result, list) else []

    return query


def prometheus_ready(base_url: str, *, timeout: float) -> str | None:
    """``None`` if Prometheus answers a query, else why not."""
    try:
        prometheus_query(base_url, at=0, timeout=timeout)("vector(1)")
    except BackendError as exc:
        return str(exc)
    return None
