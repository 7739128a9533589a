"""Suite-wide set-up: kafkascope's own errors are raised here, not just logged."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kafkascope._core import errors as _errors
from kafkascope._core import settings as _settings
from kafkascope._propagation import pipeline as _pipeline_latency


@pytest.fixture(autouse=True)
def strict_internal_errors() -> Iterator[None]:
    """Our bugs must fail our tests; tests of the forgiving mode switch this off."""
    previous = _errors.set_strict(True)
    _errors.reset_reported()
    _pipeline_latency.forget_origins()  # the origin cap counts per process; each test's are new
    _settings.reset(_settings.Settings())
    try:
        yield
    finally:
        _errors.set_strict(previous)
        _settings.reset(None)


@pytest.fixture
def span_timings() -> None:
    """``OTEL_PYTHON_KAFKASCOPE_SPAN_TIMINGS=true``: process spans carry the time in queue and
    the pipeline latency as well as the histograms (undone by :func:`strict_internal_errors`)."""
    _settings.update(span_timings=True)


@pytest.fixture
def forgiving() -> Iterator[None]:
    """Production behaviour: internal errors are logged once and swallowed."""
    previous = _errors.set_strict(False)
    try:
        yield
    finally:
        _errors.set_strict(previous)
