"""KafkascopeInstrumentor without a broker: what instrument/uninstrument do to the three clients,
whichever ``KafkascopeInstrumentor()`` call they go through."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import aiokafka
import confluent_kafka
import kafka
import pytest
from aiokafka.consumer.group_coordinator import GroupCoordinator
from kafka.coordinator.consumer import ConsumerCoordinator
from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor
from opentelemetry.instrumentation.confluent_kafka import ConfluentKafkaInstrumentor
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.kafka import KafkaInstrumentor

from kafkascope.instrumentor import KafkascopeInstrumentor, take_over_from_contrib

_TRANSACTION_METHODS = (
    "begin_transaction",
    "send_offsets_to_transaction",
    "commit_transaction",
    "abort_transaction",
)
_WRAPPED: dict[type, tuple[str, ...]] = {
    kafka.KafkaProducer: ("send", *_TRANSACTION_METHODS),
    kafka.KafkaConsumer: (
        "__next__",
        "poll",
        "commit",
        "commit_async",
        "close",
        "subscribe",
        "unsubscribe",
    ),
    ConsumerCoordinator: ("commit_offsets_async", "commit_offsets_sync"),
    aiokafka.AIOKafkaProducer: ("send", *_TRANSACTION_METHODS),
    aiokafka.AIOKafkaConsumer: ("__anext__", "getone", "getmany", "commit", "stop"),
    GroupCoordinator: ("_do_commit_offsets",),
}


def _snapshot() -> dict[str, object]:
    """Every attribute the instrumentor may touch, as the exact objects found."""
    found: dict[str, object] = {
        "confluent_kafka.Producer": confluent_kafka.Producer,
        "confluent_kafka.Consumer": confluent_kafka.Consumer,
    }
    for cls, names in _WRAPPED.items():
        for name in names:
            found[f"{cls.__qualname__}.{name}"] = vars(cls)[name]
    return found


def _instrument() -> None:
    KafkascopeInstrumentor().instrument()


def _uninstrument() -> None:
    KafkascopeInstrumentor().uninstrument()


@pytest.mark.parametrize(
    "calls",
    [
        [_instrument, _uninstrument],
        [_instrument, _uninstrument, _instrument, _uninstrument],
        [_instrument, _instrument, _uninstrument, _uninstrument],
        [_uninstrument, _instrument, _uninstrument],
        [_uninstrument, _uninstrument, _instrument, _instrument, _uninstrument],
    ],
    ids=["once", "twice-alternating", "twice-nested", "uninstrument-first", "mixed"],
)
def test_separate_calls_restore_exactly_the_original_methods_and_classes(
    calls: list[Callable[[], None]],
):
    before = _snapshot()
    for call in calls:
        call()
    after = _snapshot()
    changed = [name for name in before if after[name] is not before[name]]
    assert changed == []


def test_instrument_changes_every_client_until_another_instance_uninstruments():
    before = _snapshot()
    KafkascopeInstrumentor().instrument()
    try:
        during = _snapshot()
        unchanged = [name for name in before if during[name] is before[name]]
        assert unchanged == []
        assert issubclass(confluent_kafka.Consumer, before["confluent_kafka.Consumer"])  # type: ignore[arg-type]
    finally:
        KafkascopeInstrumentor().uninstrument()
    assert _snapshot() == before


def test_a_failing_confluent_producer_wrapper_is_reported_once_and_produce_still_works(
    forgiving, caplog
):
    # An invalid port is refused by the traced wrapper but accepted by librdkafka, which only
    # connects on first use.
    config = {"bootstrap.servers": "127.0.0.1:99999", "message.timeout.ms": 1000, "log_level": 0}
    KafkascopeInstrumentor().instrument()
    try:
        with caplog.at_level(logging.WARNING, logger="kafkascope"):
            first = confluent_kafka.Producer(config)
            second = confluent_kafka.Producer(config)
        first.produce("t", b"v")
        second.produce("t", b"v", headers=[("h", b"1")])
        # Queued (len() also counts librdkafka's connection-refused events).
        assert len(first) >= 1
        assert len(second) >= 1
    finally:
        KafkascopeInstrumentor().uninstrument()
    reports = [r for r in caplog.records if "confluent-kafka producer" in r.getMessage()]
    assert len(reports) == 1
    assert isinstance(reports[0].exc_info and reports[0].exc_info[1], ValueError)


def test_a_failing_confluent_producer_wrapper_raises_under_the_strict_suite():
    KafkascopeInstrumentor().instrument()
    try:
        with pytest.raises(ValueError, match="invalid port"):
            confluent_kafka.Producer({"bootstrap.servers": "127.0.0.1:99999"})
    finally:
        KafkascopeInstrumentor().uninstrument()


# ------------------------------------------------------------- contrib's instrumentations
def _contribs() -> list[BaseInstrumentor]:
    return [KafkaInstrumentor(), AIOKafkaInstrumentor(), ConfluentKafkaInstrumentor()]


def _load(contrib_first: bool, **kwargs: object) -> list[BaseInstrumentor]:
    """What ``opentelemetry-instrument`` does: each instrumentor in the order its entry point
    was found, then the post-instrument hooks. Returns the instrumentors in that order."""
    ours: list[BaseInstrumentor] = [KafkascopeInstrumentor()]
    order = [*_contribs(), *ours] if contrib_first else [*ours, *_contribs()]
    for instrumentor in order:
        instrumentor.instrument(**(kwargs if instrumentor is ours[0] else {}))
    take_over_from_contrib()
    return order


@pytest.fixture
def unloaded() -> Iterator[None]:
    """Every instrumentor uninstrumented afterwards, outermost wrappers first."""
    try:
        yield
    finally:
        for contrib in _contribs():
            if contrib.is_instrumented_by_opentelemetry:
                contrib.uninstrument()
        if KafkascopeInstrumentor().is_instrumented_by_opentelemetry:
            KafkascopeInstrumentor().uninstrument()


def _wrappers(method: object) -> list[str]:
    """The modules of the wrappers around a method, outermost first."""
    found = []
    while (wrapper := getattr(method, "_self_wrapper", None)) is not None:  # a wrapt wrapper
        found.append(wrapper.__module__)
        method = method.__wrapped__  # type: ignore[attr-defined]
    return found


_TAKEN_OVER = (
    "opentelemetry-instrumentation-kafka-python, opentelemetry-instrumentation-aiokafka, "
    "opentelemetry-instrumentation-confluent-kafka"
)


@pytest.mark.parametrize("contrib_first", [True, False], ids=["contrib-first", "contrib-last"])
def test_contribs_instrumentations_are_taken_over_whichever_loads_first(
    contrib_first: bool, unloaded: None, caplog: pytest.LogCaptureFixture
):
    before = _snapshot()
    with caplog.at_level(logging.WARNING, logger="kafkascope"):
        _load(contrib_first)
    assert [c.is_instrumented_by_opentelemetry for c in _contribs()] == [False, False, False]
    for cls, names in _WRAPPED.items():
        for name in names:
            assert [m.split(".")[0] for m in _wrappers(vars(cls)[name])] == ["kafkascope"]
    for name in ("Producer", "Consumer"):
        traced = getattr(confluent_kafka, name)
        assert traced.__module__ == "confluent_kafka"
        assert traced.__mro__[1] is before[f"confluent_kafka.{name}"]
    (line,) = [r.getMessage() for r in caplog.records if "took over" in r.getMessage()]
    assert line.startswith(f"kafkascope took over from {_TAKEN_OVER} (uninstrumented)")
    assert "OTEL_PYTHON_KAFKASCOPE_KEEP_CONTRIB=true" in line
    KafkascopeInstrumentor().uninstrument()
    assert _snapshot() == before


@pytest.mark.parametrize("contrib_first", [True, False], ids=["contrib-first", "contrib-last"])
@pytest.mark.parametrize("asked", ["keyword", "variable"])
def test_keep_contrib_leaves_contribs_instrumentations_on_beside_kafkascopes(
    contrib_first: bool,
    asked: str,
    unloaded: None,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
):
    if asked == "variable":
        monkeypatch.setenv("OTEL_PYTHON_KAFKASCOPE_KEEP_CONTRIB", "true")
    with caplog.at_level(logging.WARNING, logger="kafkascope"):
        order = _load(contrib_first, **({"keep_contrib": True} if asked == "keyword" else {}))
    assert [c.is_instrumented_by_opentelemetry for c in _contribs()] == [True, True, True]
    layers = [m.split(".")[0] for m in _wrappers(vars(kafka.KafkaProducer)["send"])]
    assert layers == (
        ["kafkascope", "opentelemetry"] if contrib_first else ["opentelemetry", "kafkascope"]
    )
    assert caplog.records == []
    for instrumentor in reversed(order):
        instrumentor.uninstrument()


def test_a_bad_keep_contrib_variable_is_logged_by_name_and_contrib_taken_over(
    unloaded: None, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("OTEL_PYTHON_KAFKASCOPE_KEEP_CONTRIB", "maybe")
    with caplog.at_level(logging.WARNING, logger="kafkascope"):
        _load(contrib_first=True)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [
        "kafkascope: OTEL_PYTHON_KAFKASCOPE_KEEP_CONTRIB='maybe' is not a boolean; use true or "
        "false; taking over from contrib's instrumentations"
    ]
    assert [c.is_instrumented_by_opentelemetry for c in _contribs()] == [False, False, False]


def test_keep_contrib_that_is_not_a_bool_is_refused_by_name(unloaded: None):
    with pytest.raises(TypeError, match="keep_contrib must be True or False, got 'yes'"):
        KafkascopeInstrumentor().instrument(keep_contrib="yes")
    assert not KafkascopeInstrumentor().is_instrumented_by_opentelemetry


def test_the_post_instrument_hook_leaves_contrib_alone_when_kafkascope_is_disabled(
    unloaded: None, caplog: pytest.LogCaptureFixture
):
    # OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=kafkascope: contrib's spans, and only those
    for contrib in _contribs():
        contrib.instrument()
    with caplog.at_level(logging.WARNING, logger="kafkascope"):
        take_over_from_contrib()
    assert [c.is_instrumented_by_opentelemetry for c in _contribs()] == [True, True, True]
    assert caplog.records == []
