"""Fixtures the unit tests of several layers share."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

SDK_PARSER_LOGGERS = ("opentelemetry.baggage.propagation", "opentelemetry.trace.span")


@pytest.fixture
def quiet_sdk_parsers() -> Iterator[None]:
    """The SDK logs a warning per malformed baggage entry or tracestate member (up to 180
    per message); thousands of property-test examples of garbage would spend their time
    logging."""
    loggers = [logging.getLogger(name) for name in SDK_PARSER_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
