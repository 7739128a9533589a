"""The pytest hooks of :mod:`kafkascope.testing`: in-memory providers for ``configure()``, and
kafka-python's own warnings quieted."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import pytest

from kafkascope._setup.capture import enter_pytest

KAFKA_PYTHON_WARNINGS: Final = (
    "ignore:read_text is deprecated:DeprecationWarning:kafka.protocol.schemas.load_json",
    "ignore:open_text is deprecated:DeprecationWarning:importlib.resources._legacy",
)
"""The ``filterwarnings`` lines the plugin adds: kafka-python 3.0.x loads its protocol schemas
with ``importlib.resources.read_text``, which Python 3.11-3.12 deprecate (3.13 no longer does),
and ``read_text`` warns again for its own ``open_text`` call: two warnings per schema, 218 at
``import kafka`` in a test run, none of them the user's to fix. Only those two messages from
those two modules are ignored."""


def _ignore_kafka_python_warnings(config: pytest.Config) -> None:
    present = config.getini("filterwarnings")
    for line in KAFKA_PYTHON_WARNINGS:
        if line not in present:
            config.addinivalue_line("filterwarnings", line)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> Iterator[None]:
    """Ignore kafka-python's own deprecation warnings (:data:`KAFKA_PYTHON_WARNINGS`) in the
    user's test run, from before their ``conftest.py`` files (which may import kafka) load:
    pytest's warning capture around that loading reads the ``filterwarnings`` lines when it
    starts, so this wrapper must run outside it. The user's own lines still apply to the rest.

    Also before any conftest or test module is imported: ``configure()`` called at import (as in
    the quick start) installs capotel's in-memory providers instead of exporters from then on.
    """
    enter_pytest()
    _ignore_kafka_python_warnings(early_config)
    yield


def pytest_configure(config: pytest.Config) -> None:
    """The same, when the plugin is loaded late (``pytest_plugins`` in a ``conftest.py``)."""
    _ignore_kafka_python_warnings(config)
