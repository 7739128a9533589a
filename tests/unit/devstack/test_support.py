"""devstack's one GET of JSON, against a real local HTTP server."""

from __future__ import annotations

import pytest
from devstack._process import ServerError
from devstack._support import get_json

from tests._http_answers import answering


def test_get_json_returns_the_status_and_the_decoded_body():
    with answering({"/api/services": (200, b'{"data": ["orders"]}')}) as server:
        assert get_json(f"{server.url}/api/services") == (200, {"data": ["orders"]})


def test_get_json_decodes_an_error_answer_too():
    with answering({"/api/traces/abc": (404, b'{"errors": [{"msg": "trace not found"}]}')}) as s:
        assert get_json(f"{s.url}/api/traces/abc") == (
            404,
            {"errors": [{"msg": "trace not found"}]},
        )


def test_a_body_that_is_not_json_is_a_server_error_naming_the_url():
    with answering({"/-/ready": (200, b"Prometheus is Ready.")}) as server:
        url = f"{server.url}/-/ready"
        with pytest.raises(ServerError, match=f"GET {url} answered 200 with non-JSON"):
            get_json(url)
