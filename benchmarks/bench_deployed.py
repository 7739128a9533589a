"""The deployed cost: a real broker, a real Collector over OTLP gRPC, each variant in its own
process, spans counted at the Collector.

The other benchmarks export to a discarding exporter, so they never see what a service pays
most: encoding every span to OTLP in its own process. Here a broker (devstack ``KafkaBroker``)
and an OpenTelemetry Collector (devstack ``Collector``, receiving OTLP and discarding after
counting) run; ``--messages`` records (3 partitions, distinct keys, two extra headers, no
trace context) are produced once, and as many again each with its producer's ``traceparent``
(one in ten sampled; read by the variants named ``…, traced``), then each consume variant reads
its records in a process of its own (:mod:`benchmarks.deployed_child`) with a fresh group,
timed from the first record to the last one handled plus the telemetry's final flush. The
send side runs ``--messages`` sends per round, two rounds per process, timed to the producer's
and the telemetry's flush, for a kafka-python producer and for confluent-kafka's and aiokafka's
(:mod:`benchmarks.deployed_send`: bare, contrib's instrumentation with a hand-written counter
and duration histogram, kafkascope with all signals). Process CPU is ``time.process_time`` in
the child (every thread, the export worker's included). Spans are the Collector's
``otelcol_receiver_accepted_spans``.

The consume variants that the ratios divide, and every send variant, run ``--repeats`` times
each, interleaved, and each ratio takes every variant's best run (or round): one run per
variant let a busy spell of the machine decide a ratio.

``--split`` adds, for the consume variants read from the broker, where each one's CPU goes: the
client's consumer (the main thread outside the handler), the handler, the other threads (the
export); and for kafka-python's send variants: the main thread (the send loop), kafka-python's
sender thread (batching, each batch's CRC, the acknowledgements), the other threads (the
export), and the garbage collector's share of these.

Run: .venv/bin/python -m benchmarks.bench_deployed [--messages N] [--quick] [--repeats N]
     [--split] [--side consume|send] [--clients kafka-python confluent-kafka aiokafka]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from devstack.collector import Collector
from devstack.kafka import KafkaBroker
from kafka import KafkaProducer
from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased

from benchmarks.deployed_child import CONSUME_VARIANTS, IN_MEMORY_FACTOR, SEND_CLIENTS, TRACED
from benchmarks.harness import target_line

ROOT = Path(__file__).resolve().parents[1]
PARTITIONS = 3

COLLECTOR_CONFIG = """\
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: ${env:OTLP_GRPC_ENDPOINT}
      http:
        endpoint: ${env:OTLP_HTTP_ENDPOINT}
exporters:
  debug:
    verbosity: basic
extensions:
  health_check:
    endpoint: ${env:HEALTH_CHECK_ENDPOINT}
service:
  extensions: [health_check]
  pipelines:
    traces: {receivers: [otlp], exporters: [debug]}
    metrics: {receivers: [otlp], exporters: [debug]}
    logs: {receivers: [otlp], exporters: [debug]}
  telemetry:
    logs:
      level: warn
    metrics:
      level: basic
      readers:
        - pull:
            exporter:
              prometheus:
                host: ${env:OTELCOL_TELEMETRY_HOST}
                port: ${env:OTELCOL_TELEMETRY_PORT}
"""
"""Receives OTLP, counts what it accepted (its own metrics), keeps nothing."""

VARIANT_ENV: Mapping[str, Mapping[str, str]] = {
    "sampled out": {
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    },
    # Every message sampled, continuing its producer's trace whether that was sampled or not.
    "all signals, traced": {"OTEL_TRACES_SAMPLER": "always_on"},
    # Each message as its producer decided (which kept one in ten).
    "sampled out, traced": {
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    },
    # configure() with the SDK's own batch span processor defaults, for comparison.
    "in-memory loop, SDK queue": {
        "OTEL_BSP_MAX_QUEUE_SIZE": "2048",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "512",
        "OTEL_BSP_SCHEDULE_DELAY": "5000",
    },
}
KEEPS_EVERY_SPAN: tuple[tuple[str, str], ...] = (
    ("consume", "all signals"),
    ("consume", "all signals, traced"),
    ("consume", "tracing only"),
    ("consume", "batch handler"),
    ("consume", "in-memory loop"),
)
"""configure()'s defaults lose no span in these, nor in any send variant of kafkascope (the
issue's "nothing lost silently")."""
SEND_KEEPS: tuple[str, ...] = ("all signals", "tracing only")
RUN_ONCE: frozenset[str] = frozenset(
    {"batch handler", "in-memory loop", "in-memory loop, SDK queue"}
)
"""The consume variants no ratio divides: one run each."""
REPEATED: frozenset[str] = frozenset(CONSUME_VARIANTS) - RUN_ONCE
"""The consume variants the ratios divide, run ``--repeats`` times each (interleaved, as every
send variant is); each ratio takes every variant's best run (highest msg/s, least CPU)."""


def send_label(client: str) -> str:
    """The prefix of a client's send targets (kafka-python's, the first, has none)."""
    return "send" if client == "kafka-python" else f"send ({client})"


TRACED_SAMPLED: Final = 0.1
"""The share of the traced records whose producer sampled its trace."""


def fill(bootstrap: str, topic: str, count: int, *, traced: bool = False) -> None:
    """``count`` records with distinct keys and two extra headers, from a bare producer; with
    ``traced``, also each one's producer's ``traceparent`` (a trace of its own, sampled as
    ``parentbased_traceidratio`` at :data:`TRACED_SAMPLED` decides a root: one in ten)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks=1)
    extra = [("content-type", b"application/json"), ("x-source", b"checkout")]
    payload = b'{"order_id": "A-1", "amount": 42.5}'
    ids = random.Random(23)  # the same records in every run
    upstream = TraceIdRatioBased(TRACED_SAMPLED)
    for i in range(count):
        headers = extra
        if traced:
            trace_id = ids.getrandbits(128) or 1
            decision = upstream.should_sample(None, trace_id, "send").decision
            sampled = decision is Decision.RECORD_AND_SAMPLE
            parent = f"00-{trace_id:032x}-{ids.getrandbits(64) or 1:016x}-{int(sampled):02x}"
            headers = [("traceparent", parent.encode()), *extra]
        producer.send(topic, payload, key=f"customer-{i:07d}".encode(), headers=headers)
    producer.flush(timeout=120)
    producer.close(timeout=10)


def run_child(
    side: str,
    variant: str,
    *,
    broker: KafkaBroker,
    collector: Collector,
    topic: str,
    count: int,
    rounds: int,
    client: str = "kafka-python",
    split: bool = False,
) -> list[dict[str, float]]:
    """One variant in a process of its own; its parts (one per round)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")])
    env.update(VARIANT_ENV.get(variant, {}))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.deployed_child",
            side,
            variant,
            "--bootstrap",
            broker.bootstrap_servers,
            "--topic",
            topic,
            "--count",
            str(count),
            "--rounds",
            str(rounds),
            "--endpoint",
            collector.otlp_grpc_endpoint,
            "--collector-metrics",
            f"http://127.0.0.1:{collector.telemetry_port}/metrics",
            "--client",
            client,
            *(["--split"] if split else []),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{side} {client} {variant} failed:\n{done.stdout}\n{done.stderr}")
    logged = [line for line in done.stderr.splitlines() if line.strip()]
    if logged:
        # What a variant's process logged (a full span queue's warning, an export that failed)
        # explains a count that falls short at the Collector.
        print(f"[{side} {client} {variant}] logged:", *logged[:5], sep="\n  ", file=sys.stderr)
    parts: list[dict[str, float]] = json.loads(done.stdout.strip().splitlines()[-1])["parts"]
    return parts


def _row(name: str, parts: Sequence[Mapping[str, float]]) -> str:
    """A variant's best msg/s and CPU, the range of both over its runs, its spans per run."""
    rates = [p["msg_s"] for p in parts]
    cpus = [p["cpu_us"] for p in parts]
    rate = f"{max(rates):,.0f}" + (f" ({min(rates):,.0f})" if len(parts) > 1 else "")
    cpu = f"{min(cpus):.0f}" + (f" ({max(cpus):.0f})" if len(parts) > 1 else "")
    spans = " / ".join(
        f"{int(p['spans']):,} of {int(p['made']):,}" if p["made"] else f"{int(p['spans']):,}"
        for p in parts
    )
    return f"| {name} | {rate} | {cpu} | {'-' if name.startswith('bare') else spans} |"


def _cells(parts: Sequence[Mapping[str, float]], keys: Sequence[str]) -> list[str]:
    """Per key, the best (least) value over ``parts`` and, when there are several, the worst."""
    cells = []
    for key in keys:
        values = [p[key] for p in parts]
        spread = f" ({max(values):.1f})" if len(values) > 1 else ""
        cells.append(f"{min(values):.1f}{spread}")
    return cells


def _print_send_split(client: str, variants: Mapping[str, Sequence[Mapping[str, float]]]) -> None:
    """The send side's CPU by thread (``--split``; kafka-python's producer only)."""
    rows = [(name, parts) for name, parts in variants.items() if "sender_us" in parts[0]]
    if not rows:
        return
    print(
        f"\nWhere a {client} send's CPU goes (--split), µs per send, best (worst) of the rounds\n"
        "| variant | main thread (the send loop) | the client's sender thread | "
        "other threads (export) | of these, garbage collection |\n|---|---|---|---|---|"
    )
    for name, parts in rows:
        cells = _cells(parts, ("main_us", "sender_us", "other_threads_us", "gc_us"))
        print(f"| {name} | {' | '.join(cells)} |")


def report(
    consumed: Mapping[str, list[dict[str, float]]],
    sent: Mapping[str, Mapping[str, list[dict[str, float]]]],
    messages: int,
    rounds: int,
) -> list[str]:
    """Print the tables and the targets of the sides that ran; return the target lines."""
    if consumed:
        print(
            f"\nConsume side: {messages:,} records (in-memory loops: {IN_MEMORY_FACTOR}x), "
            "one process per variant and run; the best of "
            f"{max(len(parts) for parts in consumed.values())} runs where repeated"
        )
        print(
            "| variant | msg/s, best (worst) | CPU µs/msg, best (worst) | spans at the Collector |"
            "\n|---|---|---|---|"
        )
        for name, parts in consumed.items():
            print(_row(name, parts))
        split_rows = [(name, parts) for name, parts in consumed.items() if "handler_us" in parts[0]]
        if split_rows:
            print(
                "\nWhere the CPU goes (--split), µs per message, best (worst) of the runs\n"
                "| variant | client's consumer (main thread) | handler (main thread) | "
                "other threads (export) |\n|---|---|---|---|"
            )
            for name, parts in split_rows:
                cells = _cells(parts, ("consumer_us", "handler_us", "other_threads_us"))
                print(f"| {name} | {' | '.join(cells)} |")
    for client, variants in sent.items():
        runs = max(len(parts) for parts in variants.values()) // max(rounds, 1)
        print(
            f"\nSend side, {client}: {messages:,} sends per round, {rounds} round(s) per process, "
            f"{runs} process(es) per variant; the best round"
        )
        print(
            "| variant | msg/s, best (worst) | CPU µs/msg, best (worst) | spans at the Collector "
            "(per round) |\n"
            "|---|---|---|---|"
        )
        for name, parts in variants.items():
            print(_row(name, parts))
        _print_send_split(client, variants)

    def rate(parts: Sequence[Mapping[str, float]]) -> float:
        return max(p["msg_s"] for p in parts)

    def cpu(name: str) -> float:
        return min(p["cpu_us"] for p in consumed[name])

    def kept(parts: Sequence[Mapping[str, float]]) -> float:
        return min(p["spans"] / p["made"] for p in parts)

    lines = []
    if consumed:
        bare = cpu("bare")
        lines += [
            target_line(
                "all signals / contrib + metrics, throughput",
                rate(consumed["all signals"]) / rate(consumed["contrib+metrics"]),
                1.0,
                at_least=True,
            ),
            target_line(
                "tracing only / contrib, throughput",
                rate(consumed["tracing only"]) / rate(consumed["contrib"]),
                0.8,
                at_least=True,
            ),
            target_line(
                "sampled out / sampled, all signals, CPU above bare",
                (cpu("sampled out") - bare) / max(cpu("all signals") - bare, 1e-9),
                0.3,
            ),
        ]
        lines.extend(
            target_line(
                f"{side}: {name}, spans at the Collector / made",
                kept(consumed[name]),
                1.0,
                at_least=True,
            )
            for side, name in KEEPS_EVERY_SPAN
        )
    for client, variants in sent.items():
        label = send_label(client)
        lines.append(
            target_line(
                f"{label}: all signals / contrib + metrics, throughput",
                rate(variants["all signals"]) / rate(variants["contrib+metrics"]),
                1.0,
                at_least=True,
            )
        )
        lines.extend(
            target_line(
                f"{label}: {name}, spans at the Collector / made",
                kept(variants[name]),
                1.0,
                at_least=True,
            )
            for name in SEND_KEEPS
            if name in variants
        )
    if consumed:
        # Records that carry trace context, as in a pipeline: the parent-based sampler follows
        # each producer's decision; the target is set on records without it.
        above = cpu("bare, traced")
        traced_ratio = (cpu("sampled out, traced") - above) / max(
            cpu("all signals, traced") - above, 1e-9
        )
        print(
            "\nsampled out / sampled, all signals, CPU above bare, records with their producers' "
            f"trace context (not a target): {traced_ratio:.2f}"
        )
    if sent:
        # Wall-clock throughput follows the share of the cores a process gets; on shared cores
        # the CPU each message costs is the steadier comparison, printed beside the targets.
        print("\nsend, all signals / contrib + metrics, CPU per message (not a target):")
        for client, variants in sent.items():
            ratio = min(p["cpu_us"] for p in variants["all signals"]) / min(
                p["cpu_us"] for p in variants["contrib+metrics"]
            )
            print(f"  {client:<16} {ratio:.2f}")
    print("\ntargets (ratios from this run):")
    for line in lines:
        print(line)
    return lines


def run_deployed_benchmark(
    messages: int,
    rounds: int = 2,
    *,
    repeats: int = 3,
    split: bool = False,
    sides: Sequence[str] = ("consume", "send"),
    clients: Sequence[str] = tuple(SEND_CLIENTS),
) -> list[str]:
    """Start a broker and a Collector, run every variant of ``sides`` (the send side for each
    of ``clients``), print the tables and targets."""
    consumed: dict[str, list[dict[str, float]]] = {}
    sent: dict[str, dict[str, list[dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="kafkascope-deployed-") as tmp:
        config = Path(tmp) / "collector.yaml"
        config.write_text(COLLECTOR_CONFIG)
        collector = Collector.start(
            Path(tmp) / "collector", jaeger_otlp_endpoint="127.0.0.1:1", config_file=config
        )
        try:
            broker = KafkaBroker.start(Path(tmp) / "kafka", jvm_options=("-Xms512m", "-Xmx512m"))
            try:
                common: dict[str, Any] = {"broker": broker, "collector": collector}
                if "consume" in sides:
                    topic = broker.create_topic(f"deployed-{uuid.uuid4().hex[:6]}", PARTITIONS)
                    fill(broker.bootstrap_servers, topic, messages)
                    traced = broker.create_topic(f"traced-{uuid.uuid4().hex[:6]}", PARTITIONS)
                    fill(broker.bootstrap_servers, traced, messages, traced=True)
                    consumed = {name: [] for name in CONSUME_VARIANTS}
                    # Interleaved, so that a busy spell of the machine hits every variant alike.
                    for repeat in range(repeats):
                        for name in CONSUME_VARIANTS:
                            if repeat == 0 or name in REPEATED:
                                consumed[name] += run_child(
                                    "consume",
                                    name,
                                    topic=traced if name.endswith(TRACED) else topic,
                                    count=messages,
                                    rounds=1,
                                    split=split,
                                    **common,
                                )
                if "send" in sides:
                    sink = broker.create_topic(f"deployed-send-{uuid.uuid4().hex[:6]}", PARTITIONS)
                    for client in clients:
                        sent[client] = {name: [] for name in SEND_CLIENTS[client]}
                        for _ in range(repeats):  # interleaved, as on the consume side
                            for name in SEND_CLIENTS[client]:
                                sent[client][name] += run_child(
                                    "send",
                                    name,
                                    topic=sink,
                                    count=messages,
                                    rounds=rounds,
                                    client=client,
                                    split=split,
                                    **common,
                                )
            finally:
                broker.stop()
        finally:
            collector.stop()
    return report(consumed, sent, messages, rounds)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the deployed-cost benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="500 messages, one send round")
    parser.add_argument(
        "--side", choices=("consume", "send"), help="run only this side (default: both)"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        help="runs of each send variant and of each consume variant a ratio divides, "
        "interleaved (default: 3; --quick: 1)",
    )
    parser.add_argument(
        "--split",
        action="store_true",
        help="also the CPU split by thread: consume side, the client's consumer, the handler, "
        "the export (the thread clock read around each message costs every variant alike); "
        "kafka-python's send side, the send loop, the client's sender thread, the export and "
        "the garbage collector's share",
    )
    parser.add_argument(
        "--clients",
        nargs="+",
        choices=list(SEND_CLIENTS),
        default=list(SEND_CLIENTS),
        help="the producers of the send side (default: all)",
    )
    args = parser.parse_args(argv)
    sides = (args.side,) if args.side else ("consume", "send")
    repeats = max(1, args.repeats if args.repeats is not None else 1 if args.quick else 3)
    common = {"sides": sides, "clients": args.clients, "repeats": repeats, "split": args.split}
    if args.quick:
        run_deployed_benchmark(500, rounds=1, **common)
    else:
        run_deployed_benchmark(args.messages, **common)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
