"""The reference pages are written from the code: every setting, variable, instrument and
command the code defines appears on its page."""

from __future__ import annotations

import re
from pathlib import Path

from docgen import catalog, pages

from kafkascope import cli
from kafkascope._core import settings
from kafkascope._setup import otel_variables

SETUP = Path(settings.__file__).resolve().parents[1] / "_setup"


def _expand(pattern: str) -> set[str]:
    """``OTEL_{TRACES,METRICS}_EXPORTER`` as the names it stands for."""
    found = re.search(r"\{([^}]*)\}", pattern)
    if found is None:
        return {pattern}
    head, tail = pattern[: found.start()], pattern[found.end() :]
    return {n for part in found.group(1).split(",") for n in _expand(head + part + tail)}


def test_the_settings_page_lists_every_kafkascope_variable():
    page = pages.settings_page()
    names = [v for k, v in vars(settings).items() if k.startswith("ENV_")]
    assert names
    assert [n for n in names if f"`{n}`" not in page] == []


def test_every_otel_variable_the_setup_names_is_in_the_honoured_table():
    honoured = {n for pattern, _ in otel_variables.HONOURED for n in _expand(pattern)}
    named = {
        name  # a name built with an f-string ("OTEL_{signal}_EXPORTER") is its pattern's
        for path in SETUP.glob("*.py")
        for name, brace in re.findall(r"(OTEL_[A-Z_]+)(\{?)", path.read_text(encoding="utf-8"))
        if not (brace or name.endswith("_") or name.startswith("OTEL_PYTHON_KAFKASCOPE"))
    }
    assert sorted(named - honoured) == []


def test_the_metrics_page_has_a_section_per_instrument_the_code_creates():
    page = pages.metrics_page()
    made = [i.name for i in catalog.instruments()]
    assert len(made) == len(set(made)) == 27
    assert [n for n in made if f"## `{n}`" not in page] == []


def test_the_command_page_has_every_command_help():
    page = pages.cli_page()
    for name in ("settings", "trace", "slowest", "topology"):
        assert f"## `kafkascope {name}`" in page
    assert cli.build_parser().format_help().strip() in page


def test_the_metrics_page_gives_the_prometheus_names_the_collector_gives():
    # as tests/integration/test_client_statistics_prometheus.py reads them from Prometheus
    page = pages.metrics_page()
    for name in (
        "kafkascope_client_broker_rtt_seconds",
        "kafkascope_client_request_retries_total",
        "kafkascope_client_producer_queue_usage_ratio",
    ):
        assert f"`{name}`" in page, name
