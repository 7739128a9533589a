"""The deployed-cost benchmark's --quick mode runs end to end on a real broker and Collector and
prints every table row and target, the ratios' variants repeated as asked, and the CPU split by
thread on the consume side and kafka-python's send side (a smoke test of the benchmark: no
timing is asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SPLIT_CELL = re.compile(r"\d+\.\d \(\d+\.\d\)")  # best (worst) of two runs
TARGET = re.compile(r"^  (?P<label>.+?)\s+(?P<ratio>-?\d+\.\d\d)  target [<>]= \S+\s+(MET|MISSED)$")


def test_quick_deployed_benchmark_prints_every_variant_and_target():
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_deployed",
            "--quick",
            "--repeats",
            "2",
            "--split",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "the best of 2 runs where repeated" in done.stdout
    before, after = done.stdout.split("Where the CPU goes (--split)")
    split, rest = after.split("\n\n", 1)
    assert {line.split(" | ")[0].lstrip("| ") for line in split.splitlines()[3:]} == {
        "bare",
        "contrib",
        "contrib+metrics",
        "all signals",
        "tracing only",
        "sampled out",
        "bare, traced",
        "all signals, traced",
        "sampled out, traced",
    }, done.stdout
    sends, send_split = rest.split("Where a kafka-python send's CPU goes (--split)")
    send_split, after_split = send_split.split("\n\n", 1)
    split_lines = send_split.splitlines()[3:]
    assert [line.split(" | ")[0].lstrip("| ") for line in split_lines] == [
        "bare",
        "contrib",
        "contrib+metrics",
        "all signals",
        "tracing only",
    ], done.stdout
    for line in split_lines:  # main thread, sender thread, other threads, garbage collection
        cells = [cell.strip() for cell in line.strip("| ").split(" | ")[1:]]
        assert len(cells) == 4, line
        assert all(SPLIT_CELL.fullmatch(cell) for cell in cells), line
        # The send loop runs on the main thread, and kafka-python's sender thread batches and
        # sends every record: neither can cost nothing.
        assert float(cells[0].split()[0]) > 0, line
        assert float(cells[1].split()[0]) > 0, line
    assert "Where a confluent-kafka send's CPU goes" not in done.stdout, done.stdout
    # The tables of msg/s and CPU, and the targets.
    lines = (before + sends + after_split).splitlines()
    rows = [line.split(" | ")[0].lstrip("| ") for line in lines if line.startswith("| ")]
    # Consume, then kafka-python's, confluent-kafka's and aiokafka's sends.
    for variant in ("bare", "contrib+metrics", "all signals"):
        assert rows.count(variant) == 4, done.stdout
    for variant in ("contrib", "tracing only"):
        assert rows.count(variant) == 2, done.stdout
    for variant in (
        "sampled out",
        "bare, traced",
        "all signals, traced",
        "sampled out, traced",
        "batch handler",
        "in-memory loop",
        "in-memory loop, SDK queue",
    ):
        assert rows.count(variant) == 1, done.stdout
    informational = re.search(r"trace context \(not a target\): (\d+\.\d\d)$", done.stdout, re.M)
    assert informational is not None, done.stdout
    labels = {m["label"] for line in lines if (m := TARGET.match(line))}
    assert labels == {
        "all signals / contrib + metrics, throughput",
        "tracing only / contrib, throughput",
        "send: all signals / contrib + metrics, throughput",
        "sampled out / sampled, all signals, CPU above bare",
        "consume: all signals, spans at the Collector / made",
        "consume: all signals, traced, spans at the Collector / made",
        "consume: tracing only, spans at the Collector / made",
        "consume: batch handler, spans at the Collector / made",
        "consume: in-memory loop, spans at the Collector / made",
        "send: all signals, spans at the Collector / made",
        "send: tracing only, spans at the Collector / made",
        "send (confluent-kafka): all signals / contrib + metrics, throughput",
        "send (confluent-kafka): all signals, spans at the Collector / made",
        "send (aiokafka): all signals / contrib + metrics, throughput",
        "send (aiokafka): all signals, spans at the Collector / made",
    }, done.stdout


def test_deployed_benchmark_runs_one_side_for_chosen_clients():
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_deployed",
            "--quick",
            "--side",
            "send",
            "--clients",
            "aiokafka",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    labels = {m["label"] for line in done.stdout.splitlines() if (m := TARGET.match(line))}
    assert labels == {
        "send (aiokafka): all signals / contrib + metrics, throughput",
        "send (aiokafka): all signals, spans at the Collector / made",
    }, done.stdout
