"""Which client a consumer or producer is: recognised here, and only here."""

from __future__ import annotations

from typing import Any

from kafkascope._adapters import aiokafka, confluent, kafka_python
from kafkascope._adapters.consumer import ConsumerReader, text


def client_of(consumer: object) -> str | None:
    """The client library of ``consumer`` (``"kafka-python"``, ``"aiokafka"``,
    ``"confluent-kafka"``), or None for anything else."""
    if aiokafka.is_consumer(consumer):
        return aiokafka.NAME
    if kafka_python.is_consumer(consumer):
        return kafka_python.NAME
    if confluent.is_consumer(consumer):
        return confluent.NAME
    return None


def reader_for(consumer: Any, *, needed_by: str) -> ConsumerReader:
    """A reader of ``consumer``'s state.

    Raises:
        TypeError: the consumer is of no client kafkascope can read, naming ``needed_by``.
    """
    client = client_of(consumer)
    if client == aiokafka.NAME:
        return aiokafka.Reader()
    if client == kafka_python.NAME:
        return kafka_python.Reader()
    if client == confluent.NAME:
        return confluent.Reader(consumer)
    raise TypeError(
        f"{needed_by} does not know how to read {type(consumer).__qualname__}; supported: "
        "kafka-python KafkaConsumer, confluent-kafka Consumer, aiokafka AIOKafkaConsumer"
    )


def group_of(consumer: Any) -> str | None:
    """The consumer's group id, where its client tells it."""
    client = client_of(consumer)
    if client == aiokafka.NAME:
        return aiokafka.group_of(consumer)
    if client == confluent.NAME:
        return confluent.group_of(consumer)
    config = getattr(consumer, "config", None)  # kafka-python's, and look-alikes
    return text(config.get("group_id")) if isinstance(config, dict) else None


def client_id_of(consumer: Any) -> str | None:
    """The consumer's client id, where its client tells it."""
    client = client_of(consumer)
    if client == aiokafka.NAME:
        return aiokafka.client_id_of(consumer)
    if client == confluent.NAME:
        return confluent.client_id_of(consumer)
    return kafka_python.client_id_of(consumer)


def member_id_of(consumer: Any) -> str | None:
    """The consumer's member id in its group, where its client tells it."""
    try:
        client = client_of(consumer)
        if client == confluent.NAME:
            return confluent.member_id_of(consumer)
        if client == aiokafka.NAME:
            return aiokafka.member_id_of(consumer)
        return kafka_python.member_id_of(consumer)
    except Exception:  # closed, or not in a group yet
        return None
