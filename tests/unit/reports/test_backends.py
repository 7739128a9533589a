"""Jaeger's and Prometheus's readers all fail with the one error family of
``kafkascope._reports.http``, against real local HTTP servers."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kafkascope import fetch_exemplars
from kafkascope._reports.backends import jaeger_trace, jaeger_traces, prometheus_query
from kafkascope._reports.http import BackendError, BackendUnreachableError, NotFoundError
from tests._http_answers import answering, nothing_listening

READERS: dict[str, tuple[str, Callable[[str], object]]] = {
    "trace": ("Jaeger", lambda url: jaeger_trace(url, "abc", timeout=5)),
    "search": ("Jaeger", lambda url: jaeger_traces(url, start_us=0, end_us=1, limit=1, timeout=5)),
    "query": ("Prometheus", lambda url: prometheus_query(url, at=0, timeout=5)("vector(1)")),
    "exemplars": ("Prometheus", lambda url: fetch_exemplars(url, "x", start=0, end=1, timeout=5)),
}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_every_reader_says_which_backend_it_cannot_reach(reader):
    backend, read = READERS[reader]
    url = nothing_listening()
    with pytest.raises(BackendUnreachableError) as raised:
        read(url)
    assert raised.value.backend == backend
    assert f"cannot reach {backend} at {url}" in str(raised.value)


def test_prometheus_refusing_a_query_for_exemplars_is_a_backend_error_quoting_it():
    body = b'{"status":"error","errorType":"bad_data","error":"1:2: parse error"}'
    with (
        answering({"/api/v1/query_exemplars": (400, body)}) as server,
        pytest.raises(BackendError) as raised,
    ):
        fetch_exemplars(server.url, "x{", start=0, end=1, timeout=5)
    assert (raised.value.backend, raised.value.status) == ("Prometheus", 400)
    assert "1:2: parse error" in str(raised.value)


def test_prometheus_failing_a_query_with_status_200_is_a_backend_error_quoting_it():
    body = b'{"status":"error","error":"query timed out"}'
    with (
        answering({"/api/v1/query_exemplars": (200, body)}) as server,
        pytest.raises(BackendError, match="query timed out"),
    ):
        fetch_exemplars(server.url, "x", start=0, end=1, timeout=5)


def test_a_trace_jaeger_has_not_is_not_found_with_jaegers_reason():
    body = b'{"data":null,"errors":[{"code":404,"msg":"trace not found"}]}'
    with (
        answering({"/api/traces/abc": (404, body)}) as server,
        pytest.raises(NotFoundError) as raised,
    ):
        jaeger_trace(server.url, "abc", timeout=5)
    assert str(raised.value) == f"Jaeger at {server.url} has no trace abc (trace not found)"
