"""The send rounds of the confluent-kafka and aiokafka producers for the deployed-cost benchmark
(run by :mod:`benchmarks.deployed_child` with ``--client``).

As the kafka-python rounds: ``--rounds`` rounds of ``--count`` sends as fast as the producer
goes, each timed to the producer's flush and the telemetry's flush, spans counted at the
Collector. confluent-kafka: ``produce()`` then ``poll(0)`` per message (the client's documented
loop, which serves delivery reports as they come), waiting in ``poll`` when the local queue is
full; kafkascope wraps the producer in ``TracedConfluentProducer``, contrib in
``ConfluentKafkaInstrumentor.instrument_producer``. aiokafka: ``await send()`` per message (the
future kept), then ``flush()`` and the futures gathered; kafkascope wraps the producer in
``TracedAIOKafkaProducer``, contrib instruments the class (``AIOKafkaInstrumentor``).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any

from benchmarks.deployed_setup import Clock, Setup, accepted_spans

PAYLOAD = b'{"order_id": "A-1", "amount": 42.5}'
HEADERS = (("content-type", b"application/json"), ("x-source", b"bench"))


def _keys(round_index: int, count: int) -> list[bytes]:
    return [f"r{round_index}-{i}".encode() for i in range(count)]


def _made(args: argparse.Namespace) -> int:
    return 0 if args.variant == "bare" else args.count


def confluent(args: argparse.Namespace) -> list[dict[str, float]]:
    """confluent-kafka's ``Producer``: ``produce()`` and ``poll(0)`` per message."""
    from confluent_kafka import Producer

    setup = Setup(args.variant, args.endpoint, "bench-producer", client="confluent-kafka")
    raw = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 5, "acks": 1})
    producer: Any = raw
    if setup.telemetry is not None:
        from kafkascope import TracedConfluentProducer

        producer = TracedConfluentProducer(raw, server=args.bootstrap)
    elif setup.contrib_tracer_provider is not None:
        from opentelemetry.instrumentation.confluent_kafka import ConfluentKafkaInstrumentor

        producer = ConfluentKafkaInstrumentor.instrument_producer(
            raw, tracer_provider=setup.contrib_tracer_provider
        )
    hook = setup.count_hook
    results = []

    def produce(key: bytes) -> None:
        while True:
            try:
                producer.produce(args.topic, PAYLOAD, key=key, headers=list(HEADERS))
                return
            except BufferError:  # the local queue is full: serve delivery reports, retry
                producer.poll(0.05)

    for round_index in range(args.rounds):
        keys = _keys(round_index, args.count)
        before = accepted_spans(args.collector_metrics)
        clock = Clock()
        clock.start()
        for key in keys:
            if hook is None:
                produce(key)
            else:
                start = time.perf_counter()
                produce(key)
                hook(time.perf_counter() - start)
            producer.poll(0)
        left = producer.flush(120)
        setup.flush()
        spans = accepted_spans(args.collector_metrics) - before
        if left:
            raise RuntimeError(f"{left} messages still undelivered after flush")
        results.append(clock.stop(args.count, spans, _made(args)))
    return results


def aiokafka(args: argparse.Namespace) -> list[dict[str, float]]:
    """aiokafka's ``AIOKafkaProducer``: ``await send()`` per message."""
    setup = Setup(args.variant, args.endpoint, "bench-producer", client="aiokafka")
    return asyncio.run(_aiokafka_rounds(args, setup))


async def _aiokafka_rounds(args: argparse.Namespace, setup: Setup) -> list[dict[str, float]]:
    from aiokafka import AIOKafkaProducer

    raw = AIOKafkaProducer(bootstrap_servers=args.bootstrap, linger_ms=5, acks=1)
    await raw.start()
    producer: Any = raw
    if setup.telemetry is not None:
        from kafkascope import TracedAIOKafkaProducer

        producer = TracedAIOKafkaProducer(raw)
    hook = setup.count_hook
    results = []
    try:
        for round_index in range(args.rounds):
            keys = _keys(round_index, args.count)
            before = accepted_spans(args.collector_metrics)
            clock = Clock()
            clock.start()
            futures = []
            for key in keys:
                if hook is None:
                    futures.append(
                        await producer.send(args.topic, PAYLOAD, key=key, headers=list(HEADERS))
                    )
                else:
                    start = time.perf_counter()
                    futures.append(
                        await producer.send(args.topic, PAYLOAD, key=key, headers=list(HEADERS))
                    )
                    hook(time.perf_counter() - start)
            await raw.flush()
            # Every send's done callbacks (kafkascope's span end among them) ran before
            # gather's own, added after them.
            await asyncio.gather(*futures)
            setup.flush()
            spans = accepted_spans(args.collector_metrics) - before
            results.append(clock.stop(args.count, spans, _made(args)))
    finally:
        await raw.stop()
    return results


SENDERS: dict[str, Callable[[argparse.Namespace], list[dict[str, float]]]] = {
    "confluent-kafka": confluent,
    "aiokafka": aiokafka,
}
"""The send rounds of each client but kafka-python (``deployed_child.send``)."""
