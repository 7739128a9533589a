"""The quick start and the testing guide together: a module that calls ``configure()`` at import,
tested with the testing guide's own ``capotel`` test (docs/guides/testing.md), in a real pytest
run of its own."""

from __future__ import annotations

import os
import socket
import textwrap
from collections.abc import Iterator

import pytest

pytest_plugins = ["pytester"]

BILLING = textwrap.dedent(
    """
    import logging

    import kafkascope

    kafkascope.configure("billing", logs=True)  # the quick start: at import
    log = logging.getLogger("billing")


    @kafkascope.traced_handler(group="billing")
    def charge(record):
        log.info("charging %s", record.key)
    """
)
TEST_BILLING = textwrap.dedent(
    """
    from billing import charge
    from kafkascope.testing import assert_messaging_attributes, make_record


    def test_charge(capotel):
        charge(make_record("orders", b'{"id": 1}', key=b"A-1"))
        span = capotel.span("process orders")
        assert_messaging_attributes(span, expected={"messaging.kafka.message.key": "A-1"})
        assert capotel.metric("messaging.client.consumed.messages").value == 1
        assert capotel.log("charging").log_record.trace_id == span.context.trace_id
    """
)


@pytest.fixture
def otlp_listener(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A real socket as the OTLP endpoint: it listens, so any exporter's connection shows."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        for name in [n for n in os.environ if n.startswith("OTEL_")]:
            monkeypatch.delenv(name)
        monkeypatch.setenv(
            "OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{sock.getsockname()[1]}"
        )
        yield sock


def _connections(sock: socket.socket) -> int:
    sock.setblocking(False)
    count = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def test_the_readme_test_of_a_module_that_configures_at_import_passes(pytester, otlp_listener):
    pytester.makepyfile(billing=BILLING, test_billing=TEST_BILLING)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_configure_under_capotel_exports_nothing(pytester, otlp_listener):
    pytester.makepyfile(billing=BILLING, test_billing=TEST_BILLING)
    pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert _connections(otlp_listener) == 0


def test_without_kafkascope_s_plugin_configure_exports_as_in_production(
    pytester, otlp_listener, monkeypatch
):
    """The control for the test above: the listener does see an exporter's connection."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")  # the listener never answers
    pytester.makepyfile(
        billing=BILLING,
        test_billing=textwrap.dedent(
            """
            from billing import charge
            from kafkascope.testing import make_record


            def test_charge():
                charge(make_record("orders", key=b"A-1"))
            """
        ),
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:kafkascope")
    result.assert_outcomes(passed=1)
    assert _connections(otlp_listener) >= 1
