"""``OTEL_PYTHON_KAFKASCOPE_*`` read lazily (no ``configure()``): a bad variable is reported once
and ignored on its own; for the options that widen what is recorded it means the narrowest
choice, never the wider default."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from opentelemetry import baggage, trace

from kafkascope import inject_headers, traced_handler
from kafkascope._core import semconv as sc
from kafkascope._core import settings as _settings
from kafkascope.testing import make_record

INSTRUMENT = Path(sys.executable).parent / "opentelemetry-instrument"


@pytest.fixture
def lazy_settings() -> None:
    """As in a service without ``configure()``: the next handler reads the environment."""
    _settings.reset(None)


def _key_recorded(capotel) -> bool:
    @traced_handler
    def handle(record):
        return None

    handle(make_record("orders", key=b"customer-42"))
    return sc.MESSAGING_KAFKA_MESSAGE_KEY in (capotel.span("process orders").attributes or {})


def test_a_bad_variable_leaves_capture_key_false_in_force(monkeypatch, lazy_settings, capotel):
    monkeypatch.setenv("OTEL_PYTHON_KAFKASCOPE_CAPTURE_KEY", "false")
    monkeypatch.setenv("OTEL_PYTHON_KAFKASCOPE_POISON_ATTEMPTS", "0")
    assert _key_recorded(capotel) is False


def test_a_misspelt_capture_key_records_no_key(monkeypatch, lazy_settings, capotel):
    monkeypatch.setenv("OTEL_PYTHON_KAFKASCOPE_CAPTURE_KEY", "flase")
    assert _key_recorded(capotel) is False


def test_a_misspelt_trust_baggage_ignores_inbound_baggage(monkeypatch, lazy_settings, capotel):
    monkeypatch.setenv("OTEL_PYTHON_KAFKASCOPE_TRUST_BAGGAGE", "ture")
    seen = []

    @traced_handler
    def handle(record):
        seen.append(dict(baggage.get_all()))

    with trace.get_tracer("upstream").start_as_current_span("send orders"):
        headers = [*inject_headers(), ("baggage", b"tenant=acme")]
    handle(make_record("orders", headers=headers))
    assert seen == [{}]


@pytest.mark.parametrize(
    ("variable", "value", "field", "default"),
    [
        ("OTEL_PYTHON_KAFKASCOPE_PARENT", "sibling", "parent", "producer"),
        ("OTEL_PYTHON_KAFKASCOPE_LAG", "maybe", "lag", True),
        ("OTEL_PYTHON_KAFKASCOPE_POISON_ATTEMPTS", "0", "poison_attempts", 3),
        ("OTEL_PYTHON_KAFKASCOPE_COMMIT_SPANS", "maybe", "commit_spans", True),
    ],
)
def test_a_bad_variable_that_widens_nothing_falls_back_to_its_default(
    monkeypatch, lazy_settings, variable, value, field, default
):
    monkeypatch.setenv("OTEL_PYTHON_KAFKASCOPE_PARENT", "links")
    monkeypatch.setenv(variable, value)
    settings = _settings.current()
    assert getattr(settings, field) == default
    if field != "parent":
        assert settings.parent == "links"


def test_each_bad_variable_is_reported_once_naming_it_and_its_value(
    monkeypatch, lazy_settings, caplog
):
    monkeypatch.setenv("OTEL_PYTHON_KAFKASCOPE_CAPTURE_KEY", "flase")
    monkeypatch.setenv("OTEL_PYTHON_KAFKASCOPE_POISON_ATTEMPTS", "none")
    _settings.forget_reported()
    with caplog.at_level(logging.WARNING, logger="kafkascope"):
        _settings.current()
        _settings.reset(None)
        _settings.current()
    messages = [r.getMessage() for r in caplog.records if r.name == "kafkascope"]
    assert len(messages) == 2, messages
    capture, poison = sorted(messages)
    assert "OTEL_PYTHON_KAFKASCOPE_CAPTURE_KEY='flase'" in capture
    assert "keys are not recorded" in capture
    assert "OTEL_PYTHON_KAFKASCOPE_POISON_ATTEMPTS='none'" in poison


ZERO_CODE_APP = textwrap.dedent(
    """
    import kafkascope
    from kafkascope.testing import make_record

    @kafkascope.traced_handler
    def handle(record):
        return None

    for offset in range(6):
        handle(make_record("orders", key=b"customer-42", offset=offset))
    """
)


def test_zero_code_with_a_misspelt_capture_key_records_no_key_and_says_so(tmp_path):
    app = tmp_path / "app.py"
    app.write_text(ZERO_CODE_APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OTEL_TRACES_EXPORTER="console",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_PYTHON_KAFKASCOPE_CAPTURE_KEY="flase",
    )
    done = subprocess.run(
        [str(INSTRUMENT), sys.executable, str(app)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count('"name": "process orders"') == 6
    assert "customer-42" not in done.stdout
    assert done.stderr.count("OTEL_PYTHON_KAFKASCOPE_CAPTURE_KEY='flase'") == 1, done.stderr


def test_commit_spans_variable_turns_them_off(monkeypatch, lazy_settings):
    monkeypatch.setenv("OTEL_PYTHON_KAFKASCOPE_COMMIT_SPANS", "false")
    assert _settings.current().commit_spans is False
