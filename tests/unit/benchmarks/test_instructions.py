"""benchmarks.instructions without valgrind: each workload, run natively with a few messages
against in-memory exporters, still emits what its label says, so the instruction counts keep
measuring what they name; and the command's plumbing (a REF's src, the imported kafkascope,
callgrind's total)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from benchmarks import instructions
from benchmarks.harness import records
from benchmarks.instructions import PATHS, Sinks
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.semconv._incubating.attributes.messaging_attributes import (
    MESSAGING_DESTINATION_NAME,
)
from opentelemetry.semconv._incubating.metrics.messaging_metrics import (
    MESSAGING_CLIENT_OPERATION_DURATION,
    MESSAGING_PROCESS_DURATION,
)

from kafkascope._core import settings as _settings

ROOT = Path(__file__).resolve().parents[3]


def _sinks() -> Sinks:
    return Sinks(InMemorySpanExporter(), InMemoryMetricReader(), InMemoryLogRecordExporter())


def _spans(sinks: Sinks) -> list[ReadableSpan]:
    assert isinstance(sinks.span_exporter, InMemorySpanExporter)
    return list(sinks.span_exporter.get_finished_spans())


def _histogram_count(sinks: Sinks, name: str) -> int:
    assert isinstance(sinks.metric_reader, InMemoryMetricReader)
    data = sinks.metric_reader.get_metrics_data()
    assert data is not None
    return sum(
        point.count
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
        if isinstance(point, HistogramDataPoint)
    )


@pytest.mark.parametrize(
    "path_id", [i for i, p in PATHS.items() if p.sampled and p.kind in ("single", "send")]
)
def test_instruction_workload_exports_one_span_per_message(path_id: str) -> None:
    sinks = _sinks()
    instructions.run(PATHS[path_id], 5, built=7, sinks=sinks)
    assert len(_spans(sinks)) == 5


@pytest.mark.parametrize("path_id", ["zero-code", "zero-code-no-commit-spans"])
def test_zero_code_workload_exports_one_process_span_per_message(
    path_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The workload sets kafkascope's variables for its child process: restored afterwards.
    monkeypatch.setenv("OTEL_PYTHON_KAFKASCOPE_LAG", "true")
    monkeypatch.setenv("OTEL_PYTHON_KAFKASCOPE_COMMIT_SPANS", "true")
    _settings.reset(None)  # read them at the first message, as in the benchmark's process
    sinks = _sinks()
    instructions.run(PATHS[path_id], 5, built=7, sinks=sinks)
    spans = _spans(sinks)
    assert len(spans) == 5
    assert all(s.name.startswith("process") for s in spans)


def test_instruction_batch_workload_links_every_message_of_its_batch() -> None:
    sinks = _sinks()
    instructions.run(PATHS["batch-all"], 5, sinks=sinks)
    (span,) = _spans(sinks)
    assert len(span.links) == 5


@pytest.mark.parametrize("path_id", ["single-headers", "send-headers"])
def test_header_capture_workload_puts_both_named_headers_on_every_span(path_id: str) -> None:
    sinks = _sinks()
    instructions.run(PATHS[path_id], 5, sinks=sinks)
    spans = _spans(sinks)
    assert len(spans) == 5
    for span in spans:
        attributes = span.attributes or {}
        assert attributes["messaging.header.content_type"] == ("application/json",)
        request_ids = attributes["messaging.header.x_request_id"]
        assert isinstance(request_ids, tuple)
        assert len(request_ids) == 1
        assert str(request_ids[0]).startswith("req-")


def test_unsampled_instruction_workload_exports_no_span() -> None:
    sinks = _sinks()
    instructions.run(PATHS["single-unsampled"], 5, sinks=sinks)
    assert _spans(sinks) == []


def test_configured_workload_follows_unsampled_producers_and_measures_every_message(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # The workload sets the sampler's variables for its child process: restored afterwards.
    for name in ("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_METRICS_EXPORTER"):
        monkeypatch.setenv(name, "")
    sinks = _sinks()
    instructions.run(PATHS["configured-unsampled"], 5, built=7, sinks=sinks)
    assert _spans(sinks) == []
    # configure()'s console exporter, at the shutdown: every message in the histogram.
    exported = json.loads(capfd.readouterr().out)
    counts = [
        point["count"]
        for resource in exported["resource_metrics"]
        for scope in resource["scope_metrics"]
        for metric in scope["metrics"]
        if metric["name"] == MESSAGING_PROCESS_DURATION
        for point in metric["data"]["data_points"]
    ]
    assert sum(counts) == 5  # two topics
    # Its records carry their producers' trace context, not sampled.
    flags = {int(dict(r.headers)["traceparent"][-2:], 16) for r in records(5)}
    assert {flag & 1 for flag in flags} == {0}


@pytest.mark.parametrize(
    ("path_id", "histogram", "count"),
    [
        ("single-all", MESSAGING_PROCESS_DURATION, 5),
        ("single-logging", MESSAGING_PROCESS_DURATION, 5),
        ("batch-all", MESSAGING_PROCESS_DURATION, 1),
        ("send-all", MESSAGING_CLIENT_OPERATION_DURATION, 5),
    ],
)
def test_all_signals_instruction_workload_records_the_duration_histogram(
    path_id: str, histogram: str, count: int
) -> None:
    sinks = _sinks()
    instructions.run(PATHS[path_id], 5, sinks=sinks)
    assert _histogram_count(sinks, histogram) == count


def test_logging_instruction_workload_logs_each_message_with_its_trace_and_topic() -> None:
    sinks = _sinks()
    instructions.run(PATHS["single-logging"], 5, sinks=sinks)
    assert isinstance(sinks.log_exporter, InMemoryLogRecordExporter)
    logs = [r.log_record for r in sinks.log_exporter.get_finished_logs()]
    assert {log.trace_id for log in logs} == {s.context.trace_id for s in _spans(sinks)}
    assert [(log.attributes or {}).get(MESSAGING_DESTINATION_NAME) for log in logs] == [
        "payments",
        "orders",
        "orders",
        "payments",
        "orders",
    ]


def test_instruction_workload_leaves_no_log_handler_behind() -> None:
    instructions.run(PATHS["single-all"], 1, sinks=_sinks())
    handlers = logging.getLogger(instructions.LOGGER).handlers
    assert not [h for h in handlers if isinstance(h, LoggingHandler)]


def test_compare_exports_a_git_revisions_src() -> None:
    with instructions.checkout_src("HEAD") as src:
        assert (src / "kafkascope" / "__init__.py").is_file()


def test_compare_names_a_ref_that_is_neither_a_directory_nor_a_revision() -> None:
    with (
        pytest.raises(SystemExit, match="--compare no-such-ref"),
        instructions.checkout_src("no-such-ref"),
    ):
        pass


def test_the_instruction_command_itself_imports_no_kafkascope() -> None:
    # It measures other checkouts' kafkascope in children; the installed one may be broken.
    code = "import sys, benchmarks.instructions; print('kafkascope' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"


def test_a_src_that_does_not_hold_the_imported_kafkascope_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="kafkascope"):
        instructions.warm_up(sys.executable, tmp_path, "single-tracing")


@pytest.mark.skipif(
    not os.access(instructions.VALGRIND, os.X_OK), reason=f"needs {instructions.VALGRIND}"
)
def test_callgrind_counts_more_instructions_for_more_work() -> None:
    def ir(script: str) -> int:
        return instructions.callgrind_ir(["/bin/sh", "-c", script], env={}, cwd=ROOT)

    idle = ir(":")
    busy = ir("i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done")
    assert idle > 100_000
    assert busy - idle > 2_000 * 1_000
