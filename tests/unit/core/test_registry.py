"""kafkascope's own names are defined once, in the Weaver registry beside the code
(``src/kafkascope/_core/registry/``): the constants of ``_core/semconv.py`` and the instruments
the code creates must say the same."""

from __future__ import annotations

from docgen import catalog, registry

from kafkascope._core import semconv as sc

OURS = "kafkascope."


def _semconv_names() -> set[str]:
    return {
        value
        for name, value in vars(sc).items()
        if name.isupper() and isinstance(value, str) and value.startswith(OURS)
    }


def test_every_kafkascope_name_in_semconv_is_in_the_registry():
    defined = {a.name for a in registry.attributes()} | {m.name for m in registry.metrics()}
    assert sorted(_semconv_names() - defined) == []


def test_every_name_of_the_registry_is_a_semconv_constant():
    defined = {a.name for a in registry.attributes()} | {m.name for m in registry.metrics()}
    assert sorted(defined - _semconv_names()) == []


def test_enum_members_of_the_registry_are_the_values_the_code_writes():
    members = {a.name: set(a.members) for a in registry.attributes() if a.members}
    assert members == {
        sc.TIMESTAMP_TYPE: {sc.TIMESTAMP_CREATE_TIME, sc.TIMESTAMP_LOG_APPEND_TIME},
        sc.REBALANCE_TYPE: {sc.REBALANCE_ASSIGNED, sc.REBALANCE_REVOKED},
        sc.LINK_TYPE: {
            sc.LINK_PREVIOUS_ATTEMPT,
            sc.LINK_TRANSACTION_SEND,
            sc.LINK_TRANSACTION_OFFSETS,
        },
        sc.TRANSACTION_OUTCOME: {
            sc.TRANSACTION_COMMITTED,
            sc.TRANSACTION_ABORTED,
            sc.TRANSACTION_FAILED,
        },
        sc.COMMIT_OUTCOME: {sc.COMMIT_SUCCESS, sc.COMMIT_FAILURE},
        sc.COMMIT_TRIGGER: {sc.COMMIT_APPLICATION, sc.COMMIT_AUTO},
    }


def test_the_instruments_the_code_creates_are_the_registrys_metrics():
    created = {
        i.name: (i.instrument, i.unit) for i in catalog.instruments() if i.name.startswith(OURS)
    }
    defined = {m.name: (m.instrument, m.unit) for m in registry.metrics()}
    assert created == defined


def test_registry_metric_attributes_are_defined_attributes_or_the_conventions():
    ours = {a.name for a in registry.attributes()}
    conventions = {
        value
        for name, value in vars(sc).items()
        if name.isupper() and isinstance(value, str) and "." in value and value not in ours
    }
    for metric in registry.metrics():
        assert set(metric.attributes) <= ours | conventions, metric.name
