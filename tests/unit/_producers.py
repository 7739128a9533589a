"""Stand-ins for each client's producer, shared by the unit tests of the traced producers.

Each keeps what it was given and returns the client's own future type (or reports deliveries
on demand), so the send spans end as they do with the real client. ``Recording<Client>Producer``
mirrors ``Traced<Client>Producer``; ``BrokenTracerProvider`` makes every send's instrumentation
fail.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kafka.future import Future
from kafka.producer.future import RecordMetadata
from opentelemetry import trace


class RecordingProducer:
    """Stands in for KafkaProducer's send(): keeps what it was given, returns a real future."""

    def __init__(self) -> None:
        self.config = {"bootstrap_servers": "kafka.internal:9094"}
        self.sent: list[dict[str, Any]] = []
        self.futures: list[Future] = []
        self.flushed = False

    def send(self, topic, value=None, key=None, headers=None, partition=None, timestamp_ms=None):
        self.sent.append({"topic": topic, "value": value, "key": key, "headers": headers})
        future = Future()
        self.futures.append(future)
        return future

    def flush(self) -> None:
        self.flushed = True


def ack(future: Future, partition: int = 2, offset: int = 17) -> None:
    future.success(RecordMetadata("orders", partition, None, offset, 0, None, 1, 1, 0))


class FakeConfluentMessage:
    """The parts of confluent-kafka's delivered ``Message`` a delivery report reads."""

    def __init__(self, partition: int | None = 0, offset: int | None = 0) -> None:
        self._partition = partition
        self._offset = offset

    def partition(self) -> int | None:
        return self._partition

    def offset(self) -> int | None:
        return self._offset


class RecordingConfluentProducer:
    """Stands in for ``Producer.produce()``: keeps each call, reports deliveries on demand."""

    def __init__(self) -> None:
        self.produced: list[dict[str, Any]] = []
        self.flushed = False

    def produce(self, topic, value=None, key=None, partition=-1, **kwargs):
        self.produced.append(
            {"topic": topic, "value": value, "key": key, "partition": partition, **kwargs}
        )

    def deliver(self, index: int = 0, err: Any = None, msg: Any = None) -> None:
        self.produced[index]["on_delivery"](err, msg if msg is not None else FakeConfluentMessage())

    def flush(self, timeout: float = -1) -> int:
        self.flushed = True
        return 0

    def __len__(self) -> int:
        return 7


class RecordingAIOKafkaProducer:
    """Stands in for ``AIOKafkaProducer``: ``send()`` returns a future the test resolves."""

    def __init__(self) -> None:
        self.client = type("Client", (), {"_bootstrap_servers": ["kafka-a:9095", "kafka-b:9095"]})
        self.sent: list[dict[str, Any]] = []
        self.futures: list[asyncio.Future[Any]] = []
        self.entered = self.exited = False

    async def send(
        self, topic, value=None, key=None, partition=None, timestamp_ms=None, headers=None
    ):
        self.sent.append({"topic": topic, "value": value, "key": key, "headers": headers})
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future

    async def __aenter__(self):
        self.entered = True
        return self

    async def __aexit__(self, *exc_info):
        self.exited = True


class BrokenTracerProvider(trace.TracerProvider):
    """A provider whose tracer cannot be had: an instrumentation failure on every send."""

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        raise RuntimeError("tracer provider broken")
