"""The header-capture, conversation-id and size settings: read from the environment, checked by
``configure()`` with an error naming the setting, ignored with one warning when read lazily."""

from __future__ import annotations

import logging
import re

import pytest

from kafkascope import configure
from kafkascope._core import settings as _settings
from kafkascope._core.errors import ConfigurationError


@pytest.fixture
def lazy_settings() -> None:
    _settings.reset(None)


def test_the_variables_are_read(monkeypatch, lazy_settings):
    monkeypatch.setenv("OTEL_PYTHON_KAFKASCOPE_CAPTURE_HEADERS", "tenant, x-app-*,!x-app-secret")
    monkeypatch.setenv("OTEL_PYTHON_KAFKASCOPE_CONVERSATION_ID_HEADER", "Correlation-Id")
    monkeypatch.setenv("OTEL_PYTHON_KAFKASCOPE_CAPTURE_SIZES", "true")
    settings = _settings.current()
    assert settings.capture_headers is not None
    assert settings.capture_headers.patterns == ("tenant", "x-app-*", "!x-app-secret")
    assert settings.conversation_id_header == "correlation-id"
    assert settings.capture_sizes is True


def test_everything_is_off_by_default(lazy_settings):
    settings = _settings.current()
    assert (settings.capture_headers, settings.conversation_id_header, settings.capture_sizes) == (
        None,
        None,
        False,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_PYTHON_KAFKASCOPE_CAPTURE_HEADERS", "tenant id"),
        ("OTEL_PYTHON_KAFKASCOPE_CONVERSATION_ID_HEADER", "correlation-*"),
        ("OTEL_PYTHON_KAFKASCOPE_CAPTURE_SIZES", "yes please"),
    ],
)
def test_configure_refuses_a_bad_variable_naming_it(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(
        ConfigurationError, match=f"^{re.escape(variable)}={re.escape(repr(value))} "
    ) as raised:
        configure(set_global=False, traces=False, metrics=False)
    assert raised.value.setting == variable


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("capture_headers", "tenant id"),
        ("capture_headers", ["tenant", 3]),
        ("conversation_id_header", "a,b"),
    ],
)
def test_configure_refuses_a_bad_argument_naming_it(option, value):
    with pytest.raises(ConfigurationError, match=f"^{option}=") as raised:
        configure(set_global=False, traces=False, metrics=False, **{option: value})
    assert raised.value.setting == option


def test_configure_arguments_become_the_settings(capotel):
    configure(
        set_global=False,
        traces=False,
        metrics=False,
        capture_headers=["tenant"],
        conversation_id_header="correlation-id",
        capture_sizes=True,
    )
    settings = _settings.current()
    assert settings.capture_headers is not None
    assert settings.capture_headers.patterns == ("tenant",)
    assert settings.conversation_id_header == "correlation-id"
    assert settings.capture_sizes is True


def test_a_bad_variable_read_lazily_captures_nothing_and_says_so_once(
    monkeypatch, lazy_settings, caplog
):
    monkeypatch.setenv("OTEL_PYTHON_KAFKASCOPE_CAPTURE_HEADERS", "tenant id")
    _settings.forget_reported()
    with caplog.at_level(logging.WARNING, logger="kafkascope"):
        assert _settings.current().capture_headers is None
        _settings.reset(None)
        _settings.current()
    messages = [r.getMessage() for r in caplog.records if r.name == "kafkascope"]
    assert len(messages) == 1
    assert "OTEL_PYTHON_KAFKASCOPE_CAPTURE_HEADERS='tenant id'" in messages[0]
    assert "no header is captured" in messages[0]
