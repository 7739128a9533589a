"""One variant of the deployed-cost benchmark, in a process of its own (run by bench_deployed).

Consume side: reads ``--count`` records with a fresh group and times from the first record to
the last one handled plus the telemetry's final flush. Send side: ``--rounds`` rounds of
``--count`` sends, each timed to the producer's flush and the telemetry's flush. Spans are
counted at the Collector (its ``otelcol_receiver_accepted_spans``) before and after each timed
part. Prints one JSON line: per part, messages/s, process CPU µs per message and spans.

The confluent-kafka and aiokafka producers' send rounds are in :mod:`benchmarks.deployed_send`.

Run: python -m benchmarks.deployed_child consume|send VARIANT --bootstrap HOST:PORT
     --topic T --count N --endpoint http://127.0.0.1:PORT --collector-metrics URL
     [--client kafka-python|confluent-kafka|aiokafka] [--split]
"""

from __future__ import annotations

import argparse
import gc
import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Final

from devstack.kafka import subscribe_once_visible
from kafka import KafkaConsumer, KafkaProducer
from kafka.producer.sender import Sender

from benchmarks.deployed_setup import Clock, Setup, accepted_spans

CONSUME_VARIANTS = (
    "bare",
    "contrib",
    "contrib+metrics",
    "all signals",
    "tracing only",
    "sampled out",
    "bare, traced",
    "all signals, traced",
    "sampled out, traced",
    "batch handler",
    "in-memory loop",
    "in-memory loop, SDK queue",
)
TRACED: Final = ", traced"
"""The suffix of the variants that read the records carrying their producers' trace context
(:func:`benchmarks.bench_deployed.fill`'s ``traced``); otherwise the variant without it."""
IN_MEMORY_FACTOR = 4
"""The in-memory loops handle this many times ``--count`` records (no broker: as fast as the
handler goes)."""
SEND_VARIANTS = ("bare", "contrib", "contrib+metrics", "all signals", "tracing only")
SEND_CLIENTS = {
    "kafka-python": SEND_VARIANTS,
    "confluent-kafka": ("bare", "contrib+metrics", "all signals"),
    "aiokafka": ("bare", "contrib+metrics", "all signals"),
}
"""The send variants run for each producer client."""


def _handler(setup: Setup, group: str) -> Callable[[Any], None]:
    def handle(record: Any) -> None:
        return None

    if setup.telemetry is not None:
        from kafkascope import traced_handler

        return traced_handler(group=group)(handle)
    hook = setup.count_hook
    if hook is None:
        return handle

    def counted(record: Any) -> None:
        start = time.perf_counter()
        handle(record)
        hook(time.perf_counter() - start)

    return counted


def in_memory(args: argparse.Namespace) -> list[dict[str, float]]:
    """A tight loop over records already in memory, all signals."""
    from benchmarks.bench_handlers import records

    setup = Setup("all signals", args.endpoint, "bench-loop")
    handle = _handler(setup, "bench")
    batch = records(args.count * IN_MEMORY_FACTOR)
    before = accepted_spans(args.collector_metrics)
    clock = Clock()
    clock.start()
    for record in batch:
        handle(record)
    setup.flush()
    spans = accepted_spans(args.collector_metrics) - before
    return [clock.stop(len(batch), spans, len(batch))]


def batches(args: argparse.Namespace) -> list[dict[str, float]]:
    """``poll()``'s batches through a batch handler, all signals."""
    from kafkascope import traced_batch_handler

    setup = Setup("all signals", args.endpoint, "bench-batch")
    group = f"bench-{uuid.uuid4().hex[:8]}"
    handle = traced_batch_handler(group=group)(lambda batch: None)
    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=500,
    )
    subscribe_once_visible(consumer, args.topic)
    before = accepted_spans(args.collector_metrics)
    clock = Clock()
    seen = calls = 0
    deadline = time.monotonic() + 120
    try:
        while seen < args.count and time.monotonic() < deadline:
            polled = consumer.poll(timeout_ms=1000, max_records=500)
            count = sum(len(chunk) for chunk in polled.values())
            if not count:
                continue
            if seen == 0:
                clock.start()
            handle(polled)
            seen += count
            calls += 1
        setup.flush()
        result = clock.stop(seen, accepted_spans(args.collector_metrics) - before, calls)
    finally:
        consumer.close(autocommit=False)
    if seen < args.count:
        raise RuntimeError(f"read {seen} of {args.count} records")
    return [result]


class _ThreadSplit:
    """Where a consume variant's CPU goes (``--split``): the main thread's CPU inside the
    handler, the rest of the main thread (the client's consumer), and the other threads (the
    telemetry's export). Reading the thread clock around each call costs every variant alike
    (the bare loop's "handler" is that cost)."""

    def start(self) -> None:
        self.inside = 0.0
        self.main = time.thread_time()

    def handle(self, handle: Callable[[Any], None], record: Any) -> None:
        before = time.thread_time()
        handle(record)
        self.inside += time.thread_time() - before

    def stop(self, messages: int, cpu_us: float) -> dict[str, float]:
        main_us = (time.thread_time() - self.main) / messages * 1e6
        handler_us = self.inside / messages * 1e6
        return {
            "handler_us": handler_us,
            "consumer_us": main_us - handler_us,
            "other_threads_us": cpu_us - main_us,
        }


def consume(args: argparse.Namespace) -> list[dict[str, float]]:
    """Read every record once with a fresh group through the variant's handler."""
    if args.variant.startswith("in-memory loop"):
        return in_memory(args)
    if args.variant == "batch handler":
        return batches(args)
    variant = args.variant.removesuffix(TRACED)
    setup = Setup(variant, args.endpoint, "bench-consumer")
    group = f"bench-{uuid.uuid4().hex[:8]}"
    handle = _handler(setup, group)
    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=120_000,
        max_poll_records=500,
    )
    subscribe_once_visible(consumer, args.topic)
    before = accepted_spans(args.collector_metrics)
    clock = Clock()
    seen = 0
    split = _ThreadSplit() if args.split else None
    try:
        for record in consumer:
            if seen == 0:
                clock.start()  # the group join is not the handler's cost
                if split is not None:
                    split.start()
            if split is None:
                handle(record)
            else:
                split.handle(handle, record)
            seen += 1
            if seen == args.count:
                break
        setup.flush()
        # Sampled out: how many spans the sampler keeps is its business, not a count to meet.
        made = 0 if variant in ("bare", "sampled out") else seen
        result = clock.stop(seen, accepted_spans(args.collector_metrics) - before, made)
        if split is not None:
            result.update(split.stop(seen, result["cpu_us"]))
    finally:
        consumer.close(autocommit=False)
    if seen < args.count:
        raise RuntimeError(f"read {seen} of {args.count} records")
    return [result]


class _SendSplit:
    """Where a kafka-python send variant's CPU goes (``--split``), per round: the main thread
    (the send loop and the flushes), kafka-python's sender thread, the other threads (the
    telemetry's export), and, within these, the garbage collector's time in any thread. Each
    thread's CPU clock is read at the round's start and end only; the collector's time through
    a ``gc.callbacks`` hook, which every variant runs alike."""

    def __init__(self) -> None:
        self._collecting = 0.0
        self._collected = 0.0
        gc.callbacks.append(self._on_collection)

    def _on_collection(self, phase: str, info: dict[str, int]) -> None:
        # A collection holds the interpreter until it ends: at most one runs at a time.
        if phase == "start":
            self._collecting = time.thread_time()
        else:
            self._collected += time.thread_time() - self._collecting

    @staticmethod
    def _clocks() -> dict[int, tuple[str, float]]:
        """Each live thread's kind (main, sender or other) and CPU seconds so far."""
        main = threading.main_thread()
        out: dict[int, tuple[str, float]] = {}
        for thread in threading.enumerate():
            if thread.ident is None:
                continue
            kind = "main" if thread is main else "sender" if isinstance(thread, Sender) else "other"
            try:
                seconds = time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
            except OSError:  # it ended meanwhile
                continue
            out[thread.ident] = (kind, seconds)
        return out

    def start(self) -> None:
        self._collected = 0.0
        self._at_start = self._clocks()

    def stop(self, messages: int) -> dict[str, float]:
        spent = {"main": 0.0, "sender": 0.0, "other": 0.0}
        for ident, (kind, seconds) in self._clocks().items():
            # A thread started during the round counts from zero.
            spent[kind] += seconds - self._at_start.get(ident, (kind, 0.0))[1]
        return {
            "main_us": spent["main"] / messages * 1e6,
            "sender_us": spent["sender"] / messages * 1e6,
            "other_threads_us": spent["other"] / messages * 1e6,
            "gc_us": self._collected / messages * 1e6,
        }


def send(args: argparse.Namespace) -> list[dict[str, float]]:
    """``--rounds`` rounds of ``--count`` sends as fast as the producer goes."""
    setup = Setup(args.variant, args.endpoint, "bench-producer")
    producer: Any = KafkaProducer(bootstrap_servers=args.bootstrap, linger_ms=5, acks=1)
    if setup.telemetry is not None:
        from kafkascope import TracedProducer

        producer = TracedProducer(producer)
    hook = setup.count_hook
    payload = b'{"order_id": "A-1", "amount": 42.5}'
    results = []
    split = _SendSplit() if args.split else None
    for round_index in range(args.rounds):
        headers = [("content-type", b"application/json"), ("x-source", b"bench")]
        keys = [f"r{round_index}-{i}".encode() for i in range(args.count)]
        before = accepted_spans(args.collector_metrics)
        clock = Clock()
        clock.start()
        if split is not None:
            split.start()
        for key in keys:
            if hook is None:
                producer.send(args.topic, payload, key=key, headers=list(headers))
            else:
                start = time.perf_counter()
                producer.send(args.topic, payload, key=key, headers=list(headers))
                hook(time.perf_counter() - start)
        producer.flush(timeout=120)
        setup.flush()
        spans = accepted_spans(args.collector_metrics) - before
        made = 0 if args.variant == "bare" else args.count
        results.append(clock.stop(args.count, spans, made))
        if split is not None:
            results[-1].update(split.stop(args.count))
    producer.close(timeout=10)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Run one variant and print its JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("side", choices=("consume", "send"))
    parser.add_argument("variant")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--collector-metrics", required=True)
    parser.add_argument("--client", choices=list(SEND_CLIENTS), default="kafka-python")
    parser.add_argument(
        "--split",
        action="store_true",
        help="consume and kafka-python's send side: the CPU split by thread as well",
    )
    args = parser.parse_args(argv)
    allowed = CONSUME_VARIANTS if args.side == "consume" else SEND_CLIENTS[args.client]
    if args.variant not in allowed:
        parser.error(f"variant must be one of {', '.join(allowed)}")
    if args.side == "consume":
        results = consume(args)
    elif args.client == "kafka-python":
        results = send(args)
    else:
        from benchmarks import deployed_send

        results = deployed_send.SENDERS[args.client](args)
    print(json.dumps({"side": args.side, "variant": args.variant, "parts": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
