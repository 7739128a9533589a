"""KafkascopeInstrumentor without a broker: what instrument/uninstrument do to the three clients,
whichever ``KafkascopeInstrumentor()`` call they go through."""

from __future__ import annotations

import logging
from collections.abc import Callable

import aiokafka
import confluent_kafka
import kafka
import pytest

from kafkascope.instrumentor import KafkascopeInstrumentor

_WRAPPED: dict[type, tuple[str, ...]] = {
    kafka.KafkaProducer: ("send",),
    kafka.KafkaConsumer: ("__next__", "poll", "commit", "close", "subscribe", "unsubscribe"),
    aiokafka.AIOKafkaProducer: ("send",),
    aiokafka.AIOKafkaConsumer: ("__anext__", "getone", "getmany", "commit", "stop"),
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
