"""Reading Jaeger's and Prometheus's HTTP APIs: one trace, the traces of a window, instant
queries at the window's end, and a histogram's exemplars. Every GET goes through
:func:`~kafkascope._reports.http.get_json` and fails with its
:class:`~kafkascope._reports.http.BackendError`."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from kafkascope._reports.http import BackendError, NotFoundError, error_detail, get_json
from kafkascope._reports.topology import PromQuery
from kafkascope._reports.untrusted_json import brief, mapping


def jaeger_trace(base_url: str, trace_id: str, *, timeout: float) -> dict[str, Any]:
    """GET ``{base_url}/api/traces/{trace_id}`` and return the trace (``spans``, ``processes``).

    Raises:
        NotFoundError: Jaeger has no such trace.
        BackendUnreachableError: Jaeger cannot be reached.
        BackendError: Jaeger answers something else than a trace.
    """
    url = f"{base_url}/api/traces/{urllib.parse.quote(trace_id)}"
    try:
        answer = get_json(url, timeout=timeout, what="Jaeger", server=base_url)
    except BackendError as exc:
        if exc.status == 404:
            raise NotFoundError(
                f"Jaeger at {base_url} has no trace {trace_id} ({exc.detail})", backend="Jaeger"
            ) from None
        if exc.status is not None:
            raise BackendError(
                f"Jaeger at {base_url} answered {exc.status} for trace {trace_id}: {exc.detail}",
                backend="Jaeger",
                status=exc.status,
                detail=exc.detail,
            ) from None
        raise
    data = mapping(answer).get("data")
    if not data:
        said = error_detail(answer) or brief(answer)
        raise NotFoundError(
            f"Jaeger at {base_url} has no trace {trace_id} ({said})", backend="Jaeger"
        )
    trace = data[0] if isinstance(data, list) else None
    if not isinstance(trace, dict):
        raise BackendError(f"unexpected answer from {url}: {brief(answer)}", backend="Jaeger")
    return trace


def jaeger_services(base_url: str, *, timeout: float) -> list[str]:
    """The service names Jaeger knows (``/api/services``)."""
    answer = get_json(f"{base_url}/api/services", timeout=timeout, what="Jaeger")
    data = mapping(answer).get("data")
    if not isinstance(data, list):
        raise BackendError(
            f"unexpected answer from {base_url}/api/services: {brief(answer)}", backend="Jaeger"
        )
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
        answer = get_json(f"{base_url}/api/traces?{query}", timeout=timeout, what="Jaeger")
        data = mapping(answer).get("data")
        if not isinstance(data, list):
            raise BackendError(
                f"unexpected trace search answer from {base_url}: {brief(answer)}",
                backend="Jaeger",
            )
        for trace in data:
            if not isinstance(trace, dict):
                continue
            try:
                found.setdefault(int(str(trace.get("traceID")), 16), trace)
            except ValueError:
                continue
    return list(found.values())


def _prometheus_data(
    base_url: str, path: str, promql: str, params: Mapping[str, str], *, timeout: float
) -> object:
    """The ``data`` of Prometheus's successful answer to ``path`` for ``promql``."""
    query = urllib.parse.urlencode({"query": promql, **params})
    answer = get_json(
        f"{base_url}{path}?{query}", timeout=timeout, what="Prometheus", server=base_url
    )
    if mapping(answer).get("status") != "success":
        said = error_detail(answer) or brief(answer)
        raise BackendError(f"Prometheus query failed: {promql}: {said}", backend="Prometheus")
    return mapping(answer).get("data")


def prometheus_query(base_url: str, *, at: float, timeout: float) -> PromQuery:
    """``query(promql)`` against Prometheus's ``/api/v1/query``, evaluated at ``at`` (epoch s)."""

    def query(promql: str) -> Sequence[Mapping[str, Any]]:
        data = _prometheus_data(
            base_url, "/api/v1/query", promql, {"time": f"{at:.3f}"}, timeout=timeout
        )
        if not isinstance(data, Mapping):
            raise BackendError(
                f"Prometheus query failed: {promql}: {brief(data)}", backend="Prometheus"
            )
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


def prometheus_exemplars(
    base_url: str, promql: str, *, start: float, end: float, timeout: float
) -> object:
    """The ``data`` of ``/api/v1/query_exemplars`` for ``promql`` over ``[start, end]`` (epoch
    s), unchecked: one entry per series, ``{"seriesLabels", "exemplars"}``."""
    return _prometheus_data(
        base_url,
        "/api/v1/query_exemplars",
        promql,
        {"start": f"{start:.3f}", "end": f"{end:.3f}"},
        timeout=timeout,
    )
