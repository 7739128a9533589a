"""The one GET of JSON from Jaeger and Prometheus, its errors, and the one check of their URLs,
against a real local HTTP server."""

from __future__ import annotations

import json
import re

import pytest

from kafkascope._reports.http import (
    BackendError,
    BackendUnreachableError,
    base_url,
    get_json,
)
from tests._http_answers import answering, nothing_listening


def test_get_json_returns_the_decoded_answer():
    with answering({"/api/services": (200, b'{"data": ["orders"]}')}) as server:
        answer = get_json(f"{server.url}/api/services", timeout=5, what="Jaeger")
    assert answer == {"data": ["orders"]}


def test_an_error_status_carries_jaegers_error_messages():
    body = json.dumps({"errors": [{"code": 500, "msg": "storage down"}, {"msg": "retry"}]})
    with answering({"/api/services": (500, body.encode())}) as server:
        url = f"{server.url}/api/services"
        with pytest.raises(BackendError) as raised:
            get_json(url, timeout=5, what="Jaeger")
    assert (raised.value.backend, raised.value.status) == ("Jaeger", 500)
    assert raised.value.detail == "storage down; retry"
    assert str(raised.value) == f"Jaeger answered 500 for {url}: storage down; retry"


def test_an_error_status_carries_prometheus_error():
    body = b'{"status":"error","errorType":"bad_data","error":"parse error at char 3"}'
    with answering({"/api/v1/query": (400, body)}) as server, pytest.raises(BackendError) as raised:
        get_json(f"{server.url}/api/v1/query?query=x{{", timeout=5, what="Prometheus")
    assert (raised.value.backend, raised.value.status) == ("Prometheus", 400)
    assert raised.value.detail == "parse error at char 3"


def test_an_error_status_without_json_carries_the_start_of_the_body():
    with (
        answering({"/": (502, b"  <html>Bad Gateway</html>\n" + b"x" * 1000)}) as server,
        pytest.raises(BackendError) as raised,
    ):
        get_json(f"{server.url}/", timeout=5, what="Jaeger")
    assert raised.value.detail.startswith("<html>Bad Gateway</html>")
    assert len(raised.value.detail) < 300


def test_nothing_listening_is_unreachable_and_names_the_server_given():
    url = nothing_listening()
    with pytest.raises(BackendUnreachableError) as raised:
        get_json(f"{url}/api/traces/abc", timeout=5, what="Jaeger", server=url)
    assert raised.value.backend == "Jaeger"
    assert raised.value.status is None
    assert str(raised.value).startswith(f"cannot reach Jaeger at {url}: ")


def test_nothing_listening_names_the_url_when_no_server_is_given():
    url = f"{nothing_listening()}/api/services"
    with pytest.raises(BackendUnreachableError, match=f"^cannot reach Jaeger at {url}: "):
        get_json(url, timeout=5, what="Jaeger")


def test_a_body_that_is_not_json_is_a_backend_error_asking_what_answered():
    with answering({"/api/v1/query": (200, b"<html>Grafana</html>")}) as server:
        url = f"{server.url}/api/v1/query"
        with pytest.raises(BackendError) as raised:
            get_json(url, timeout=5, what="Prometheus", server=server.url)
    assert not isinstance(raised.value, BackendUnreachableError)
    assert str(raised.value) == f"{url} did not answer JSON; is {server.url} Prometheus?"


def test_base_url_drops_trailing_slashes():
    assert base_url("https://jaeger.example/prefix//", what="Jaeger") == (
        "https://jaeger.example/prefix"
    )


@pytest.mark.parametrize("url", ["127.0.0.1:16686", "ftp://jaeger", "http://", ""])
def test_base_url_refuses_what_is_not_http_with_a_host(url):
    with pytest.raises(ValueError, match=f"^not an http\\(s\\) URL for Jaeger: {url!r}$"):
        base_url(url, what="Jaeger")


def test_base_url_names_the_option_and_the_variable_behind_it():
    expected = (
        "not an http(s) URL for Prometheus: 'ftp://x' (from --prometheus or "
        "KAFKASCOPE_PROMETHEUS_URL)"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        base_url("ftp://x", what="Prometheus", option="--prometheus")
