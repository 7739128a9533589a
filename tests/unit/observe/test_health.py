"""observe_health's configuration errors, raised before anything listens."""

from __future__ import annotations

import pytest

from kafkascope import observe_health


@pytest.mark.parametrize("option", ["unassigned_after", "no_progress_after", "stalled_after"])
@pytest.mark.parametrize("value", [0, -1.0, float("nan"), True, "5"])
def test_a_threshold_that_is_not_positive_seconds_is_refused(option: str, value: object):
    with pytest.raises(ValueError, match=option):
        observe_health(object(), port=0, **{option: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("port", [-1, 65536, 1.5, True])
def test_a_port_out_of_range_is_refused(port: object):
    with pytest.raises(ValueError, match="port"):
        observe_health(object(), port=port)  # type: ignore[arg-type]


def test_a_consumer_of_another_client_is_refused_naming_the_three_it_reads():
    with pytest.raises(TypeError) as refused:
        observe_health(object(), port=0)
    for client in ("kafka-python KafkaConsumer", "confluent-kafka Consumer", "AIOKafkaConsumer"):
        assert client in str(refused.value)
