"""Coverage-guided fuzzing of header extraction and record adapters with atheris.

Builds arbitrary headers (keys and values of every type clients hand over, propagation names
in any case, huge and undecodable values) and records of every client from the fuzzer's bytes,
then checks kafkascope's promises through its public API: ``extract_context`` never raises
and gives a valid remote span or none, with baggage within the W3C limits the docs state;
``inject_headers`` returns sendable pairs or raises TypeError; a traced handler runs exactly
once and returns its value, and no internal error is reported (the one warning kafkascope
logs per kind of internal error is turned into a crash of the run). The header getter and the
record adapters alone are checked by the property tests
(``tests/unit/propagation/test_carrier_properties.py``, ``tests/unit/adapters/``).

Not part of the suite (atheris is not a dependency). Run:
    .venv/bin/pip install atheris
    .venv/bin/python -m benchmarks.fuzz_carrier --seconds 120
libFuzzer prints the number of executions ("Done N runs in S second(s)") when time is up.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

atheris: Any = importlib.import_module("atheris")

with atheris.instrument_imports():
    from aiokafka.structs import ConsumerRecord as AioRecord
    from confluent_kafka import Message
    from kafka.consumer.fetcher import ConsumerRecord as KafkaPythonRecord
    from opentelemetry import baggage, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    from kafkascope import extract_context, inject_headers, traced_handler

NAMES = ("traceparent", "tracestate", "baggage", "uberctx-x", "other")
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
SENTINEL = object()
MAX_BAGGAGE_ENTRIES = 180
MAX_BAGGAGE_BYTES = 8192
"""Inbound baggage is cut to the W3C limits: 180 entries, 8 KiB (docs/guides/configuration.md,
"Inbound headers are untrusted")."""
TRACER_PROVIDER = TracerProvider()
METER_PROVIDER = MeterProvider()


class Input:
    """Typed draws from the fuzzer's bytes."""

    def __init__(self, data: bytes) -> None:
        self._fdp = atheris.FuzzedDataProvider(data)

    def pick(self, n: int) -> int:
        return int(self._fdp.ConsumeIntInRange(0, n - 1))

    def text(self, size: int = 40) -> str:
        return str(self._fdp.ConsumeUnicodeNoSurrogates(self.pick(size)))

    def any_text(self, size: int = 40) -> str:
        return str(self._fdp.ConsumeUnicode(self.pick(size)))

    def raw(self, size: int = 40) -> bytes:
        return bytes(self._fdp.ConsumeBytes(self.pick(size)))

    def integer(self) -> int:
        return int(self._fdp.ConsumeInt(self.pick(12) + 1))

    def key(self) -> Any:
        choice = self.pick(8)
        if choice < 3:
            name = NAMES[self.pick(len(NAMES))]
            return [name, name.upper(), name.encode()][choice]
        other: list[Callable[[], object]] = [
            self.text,
            self.raw,
            self.integer,
            lambda: None,
            self.any_text,
        ]
        return other[choice - 3]()

    def value(self) -> Any:
        choice = self.pick(11)
        if choice == 0:
            return TRACEPARENT.encode()
        if choice == 1:  # a mutated traceparent
            at = self.pick(len(TRACEPARENT))
            return (TRACEPARENT[:at] + self.text(3) + TRACEPARENT[at + 1 :]).encode()
        if choice == 2:  # baggage/tracestate lists, possibly long
            members = [f"{self.text(8)}={self.text(8)}" for _ in range(self.pick(30))]
            return (",".join(members) * (1 + self.pick(300))).encode()
        if choice == 3:
            return self.raw(200) * (1 + self.pick(5000))
        producers: list[Callable[[], object]] = [
            self.text,
            self.any_text,
            self.raw,
            lambda: None,
            self.integer,
            lambda: bytearray(self.raw()),
            lambda: memoryview(self.raw()),
        ]
        return producers[choice - 4]()

    def headers(self) -> Any:
        pairs = [(self.key(), self.value()) for _ in range(self.pick(12))]
        if self.pick(10) == 0:  # many duplicates of one header
            pairs.extend([(self.key(), self.value())] * self.pick(3000))
        shape = self.pick(6)
        if shape == 0:
            return tuple(pairs)
        if shape == 1:
            try:
                return dict(pairs)
            except TypeError:  # an unhashable key
                return pairs
        if shape == 2:
            return [*pairs, (self.key(),), self.integer()]
        if shape == 3:
            scalars: list[Callable[[], object]] = [self.text, self.raw, self.integer, lambda: None]
            return scalars[self.pick(4)]()
        return pairs

    def field(self) -> Any:
        choice = self.pick(8)
        if choice < 3:
            return self.integer()
        others: list[Callable[[], object]] = [
            self.text,
            self.any_text,
            self.raw,
            lambda: None,
            self.headers,
        ]
        return others[choice - 3]()

    def record(self) -> object:
        headers = self.headers()
        kind = self.pick(4)
        if kind == 0:
            return Message(
                topic=self.field(),
                partition=self.pick(2**31),
                offset=self.pick(2**62),
                key=self.field(),
                value=self.field(),
                headers=headers,
                timestamp=(self.pick(4), self.pick(2**62)),
            )
        fields = {n: self.field() for n in ("topic", "partition", "offset", "timestamp")}
        fields.update(key=self.field(), value=self.field(), timestamp_type=self.field())
        if kind == 1:
            return KafkaPythonRecord(
                leader_epoch=-1,
                headers=headers,
                checksum=None,
                serialized_key_size=-1,
                serialized_value_size=-1,
                serialized_header_size=-1,
                **fields,
            )
        if kind == 2:
            return AioRecord(
                fields["topic"],
                fields["partition"],
                fields["offset"],
                fields["timestamp"],
                fields["timestamp_type"],
                fields["key"],
                fields["value"],
                None,
                -1,
                -1,
                headers,
            )
        return SimpleNamespace(headers=headers, **fields)


@traced_handler(tracer_provider=TRACER_PROVIDER, meter_provider=METER_PROVIDER)
def handle(record: object) -> object:
    return SENTINEL


def check_headers(headers: Any) -> None:
    ctx = extract_context(headers)
    span_context = trace.get_current_span(ctx).get_span_context()
    assert not span_context.is_valid or span_context.is_remote
    entries = baggage.get_all(ctx)
    assert len(entries) <= MAX_BAGGAGE_ENTRIES
    joined = ",".join(f"{k}={v}" for k, v in entries.items())
    assert len(joined.encode("utf-8", "surrogatepass")) <= MAX_BAGGAGE_BYTES
    assert not baggage.get_all(extract_context(headers, trust_baggage=False))
    try:
        out = inject_headers(headers)
    except TypeError:
        return
    for name, value in out:
        assert type(name) is str
        name.encode("utf-8")
        assert value is None or type(value) is bytes


class InternalErrors(logging.Handler):
    """Keeps what kafkascope logs of its own failures ("instrumentation error in ...")."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


INTERNAL_ERRORS = InternalErrors()


def test_one_input(data: bytes) -> None:
    draw = Input(data)
    if draw.pick(2):
        check_headers(draw.headers())
    else:
        assert handle(draw.record()) is SENTINEL
    if INTERNAL_ERRORS.records:
        record = INTERNAL_ERRORS.records[0]
        if record.exc_info is not None and record.exc_info[1] is not None:
            raise record.exc_info[1]
        raise AssertionError(record.getMessage())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=60, help="how long to fuzz")
    args, rest = parser.parse_known_args()
    logging.getLogger("kafkascope").addHandler(INTERNAL_ERRORS)
    # The SDK warns once per malformed baggage entry or tracestate member: mute it, or the run
    # spends its time printing.
    for name in ("opentelemetry.baggage.propagation", "opentelemetry.trace.span"):
        logging.getLogger(name).setLevel(logging.ERROR)
    argv = [sys.argv[0], f"-max_total_time={args.seconds}", "-rss_limit_mb=4096", *rest]
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
