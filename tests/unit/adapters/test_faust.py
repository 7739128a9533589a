"""Reading Faust's messages and app settings without Faust (stand-ins with its fields)."""

from __future__ import annotations

from types import SimpleNamespace

from kafkascope._adapters.faust import message_view, settings_of


def _message(**fields: object) -> SimpleNamespace:
    base: dict[str, object] = {
        "topic": "orders",
        "partition": 3,
        "offset": 42,
        "key": b"k",
        "value": b"v",
        "headers": [("traceparent", b"00-...")],
        "timestamp": 1_700_000_000.5,
        "timestamp_type": 0,
    }
    base.update(fields)
    return SimpleNamespace(**base)


def test_a_faust_timestamp_in_seconds_is_read_as_milliseconds():
    assert message_view(_message()).timestamp_ms == 1_700_000_000_500


def test_a_faust_message_keeps_its_kafka_fields():
    record = message_view(_message(timestamp_type=1, value=None))
    assert (record.topic, record.partition, record.offset, record.key) == ("orders", 3, 42, b"k")
    assert record.headers == [("traceparent", b"00-...")]
    assert record.log_append_time
    assert record.tombstone


def test_an_unreadable_faust_timestamp_is_unknown():
    for stamp in (None, float("nan"), float("inf"), -1.0, "soon", True):
        assert message_view(_message(timestamp=stamp)).timestamp_ms is None


def test_an_apps_id_broker_and_client_id_name_group_server_and_client():
    broker = SimpleNamespace(host="kafka-1", port=9092)
    conf = SimpleNamespace(id="billing", broker=[broker], broker_client_id="faust-0.15.3")
    assert settings_of(SimpleNamespace(conf=conf)) == ("billing", "kafka-1:9092", "faust-0.15.3")


def test_an_app_without_readable_settings_names_nothing():
    assert settings_of(object()) == (None, None, None)
