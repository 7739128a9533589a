"""Each benchmark's --quick mode runs to the end and prints every target line (a smoke test of
the benchmarks themselves: no timing is asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
TARGET = re.compile(r"^  (?P<label>.+?)\s+(?P<ratio>-?\d+\.\d\d)  target [<>]= \S+\s+(MET|MISSED)$")


def _quick(module: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", module, "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _targets(output: str) -> set[str]:
    return {m["label"] for line in output.splitlines() if (m := TARGET.match(line))}


@pytest.mark.parametrize(
    ("module", "labels"),
    [
        (
            "benchmarks.bench_handlers",
            {
                "all signals / contrib per-record wrapper",
                "tracing only / raw SDK recipe",
                "not sampled / sampled, tracing only",
                "not sampled / sampled, all signals",
                "batch handler per message / single, all signals",
            },
        ),
        (
            "benchmarks.bench_producers",
            {
                "kafka-python: all signals / contrib's send wrapper",
                "confluent-kafka: all signals / contrib's send wrapper",
                "aiokafka: all signals / contrib's send wrapper",
            },
        ),
    ],
)
def test_quick_benchmark_prints_every_target(module, labels):
    output = _quick(module)
    assert _targets(output) == labels, output


def test_handler_benchmark_prints_the_exemplar_and_memory_lines():
    output = _quick("benchmarks.bench_handlers")
    assert re.search(r"exemplar filter cost .*: -?\d+ ns/msg", output), output
    assert re.search(r"RSS growth over \d+ messages: .* (MET|MISSED)", output), output
