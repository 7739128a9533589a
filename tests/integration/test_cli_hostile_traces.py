"""The real ``kafkascope`` command on hostile traces stored in a real Jaeger v2, and the trace page
they make in a real headless Chromium.

Each trace is sent over OTLP by the SDK with the span ids it needs (a parent cycle cannot be
made any other way), read back by ``kafkascope trace`` run as a subprocess, and judged on the
bytes it wrote: what a terminal would have received.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from devstack.jaeger import Jaeger
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from kafkascope._reports.waterfall import LINE_COLUMNS, MAX_DEPTH, NAME_COLUMNS
from kafkascope.cli import EXIT_OK
from tests._browser import chromium_binary, run_chromium
from tests._cli_process import run_kafkascope, unsafe_characters, width

pytestmark = pytest.mark.integration

BASE_NS = 1_795_581_595_000_000_000


@dataclass(frozen=True)
class Span:
    """A span to store: its id, its parent's id (or None for a root), name and attributes."""

    span_id: int
    parent_id: int | None
    name: str
    attributes: dict[str, str] = field(default_factory=dict)


class _ChosenIds(IdGenerator):
    def __init__(self, trace_id: int) -> None:
        self.trace_id = trace_id
        self.span_id = 0

    def generate_span_id(self) -> int:
        return self.span_id

    def generate_trace_id(self) -> int:
        return self.trace_id


def store(jaeger: Jaeger, service: str, spans: Sequence[Span]) -> str:
    """Send ``spans`` as one trace of ``service`` to Jaeger, wait until it has them all, and
    return the trace id (hex). Each span starts 1 µs after the one before and lasts 50 µs."""
    trace_id = random.getrandbits(128) | 1
    ids = _ChosenIds(trace_id)
    provider = TracerProvider(resource=Resource.create({"service.name": service}), id_generator=ids)
    exporter = OTLPSpanExporter(endpoint=jaeger.otlp_grpc_endpoint, insecure=True, timeout=10)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("hostile")
    try:
        for i, span in enumerate(spans):
            context = Context()
            if span.parent_id is not None:
                parent = SpanContext(
                    trace_id, span.parent_id, is_remote=True, trace_flags=TraceFlags(1)
                )
                context = trace.set_span_in_context(NonRecordingSpan(parent))
            ids.span_id = span.span_id
            start = BASE_NS + i * 1_000
            tracer.start_span(
                span.name, context=context, attributes=span.attributes, start_time=start
            ).end(end_time=start + 50_000)
    finally:
        provider.shutdown()
    hex_id = format(trace_id, "032x")
    jaeger.wait_for_trace(hex_id, min_spans=len(spans), timeout=30)
    return hex_id


@pytest.fixture(scope="module")
def jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jaeger]:
    server = Jaeger.start(tmp_path_factory.mktemp("jaeger"))
    try:
        yield server
    finally:
        server.stop()


def waterfall(jaeger: Jaeger, trace_id: str, *extra: str) -> list[str]:
    """The lines ``kafkascope trace`` printed, after checking it exited 0, wrote nothing on
    stderr (but the --html note) and no byte a terminal would act on."""
    done = run_kafkascope("trace", trace_id, "--jaeger", jaeger.query_url, *extra)
    assert done.returncode == EXIT_OK, done.stderr.decode(errors="replace")[-2000:]
    assert unsafe_characters(done.stdout) == []
    assert unsafe_characters(done.stderr) == []
    return done.stdout.decode().splitlines()


def test_escape_sequences_in_names_reach_the_terminal_as_text(jaeger: Jaeger):
    trace_id = store(
        jaeger,
        "billing\x1b]0;pwned\x07",  # sets the window title
        [
            Span(1, None, "\x1b[2J\x1b[Hcleared"),  # clears the screen
            Span(2, 1, "\x9b31mred\u202eevil\r\nnext"),  # C1 CSI, right-to-left override
        ],
    )
    lines = waterfall(jaeger, trace_id)
    assert lines[0].endswith("services billing\\x1b]0;pwned\\x07")
    assert lines[1].startswith("billing\\x1b]0;pwned\\x07: \\x1b[2J\\x1b[Hcleared ")
    assert lines[2].startswith("  billing\\x1b]0;pwned\\x07: \\x9b31mred\\u202eevil\\r\\nnext ")


def test_a_5000_character_name_is_cut_and_no_line_passes_the_bound(jaeger: Jaeger):
    trace_id = store(jaeger, "orders", [Span(1, None, "POST /orders"), Span(2, 1, "x" * 5000)])
    lines = waterfall(jaeger, trace_id)
    assert lines[2].startswith("  orders: " + "x" * (NAME_COLUMNS - 1) + "… ")
    assert max(width(line) for line in lines) <= LINE_COLUMNS
    assert max(width(line) for line in lines[1:]) < 200  # was 5,404 on every line


def test_a_trace_3000_spans_deep_shows_24_levels_and_counts_the_rest(jaeger: Jaeger):
    chain = [Span(i + 1, i if i else None, f"hop {i}") for i in range(3000)]
    trace_id = store(jaeger, "loop", chain)
    lines = waterfall(jaeger, trace_id)
    assert lines[0].startswith(f"trace {trace_id}: 3000 spans, ")
    assert len(lines) == 1 + MAX_DEPTH + 1
    assert lines[MAX_DEPTH].startswith("  " * (MAX_DEPTH - 1) + f"loop: hop {MAX_DEPTH - 1} ")
    assert lines[-1] == "  " * MAX_DEPTH + (
        f"… {3000 - MAX_DEPTH} more spans deeper than {MAX_DEPTH} levels (--json lists every span)"
    )


def test_a_parent_cycle_is_printed_and_marked(jaeger: Jaeger):
    lines = waterfall(jaeger, store(jaeger, "ring", [Span(1, 2, "first"), Span(2, 1, "second")]))
    assert lines[1].startswith("ring: first ")
    assert lines[1].endswith("(parent cycle)")
    assert lines[2].startswith("  ring: second ")
    assert len(lines) == 3


# ---------------------------------------------------------------- the page, in Chromium


@pytest.fixture(scope="module")
def chromium() -> str:
    return chromium_binary()


def page_of(jaeger: Jaeger, trace_id: str, path: Path) -> Path:
    waterfall(jaeger, trace_id, "--html", str(path))
    return path


def test_a_comment_opener_in_an_attribute_leaves_the_page_script_working(
    jaeger: Jaeger, chromium: str, tmp_path: Path
):
    trace_id = store(
        jaeger, "billing", [Span(0xA1, None, "process orders", {"note": "<!--<script>"})]
    )
    page = page_of(jaeger, trace_id, tmp_path / "trace.html")
    url = f"{page.as_uri()}#span={0xA1:016x}"
    dom = run_chromium(
        chromium, tmp_path / "profile", "--virtual-time-budget=2000", "--dump-dom", url
    )
    detail = dom[dom.index('id="detail"') :]
    assert "billing: process orders" in detail  # the script ran and filled the panel
    assert "&lt;!--&lt;script&gt;" in detail


# Runs after the page's own script: selects the span, then measures the panel.
MEASURE = """<script>
(function () {
  var cells = Array.prototype.map.call(document.querySelectorAll('#detail td'), function (td) {
    var box = td.getBoundingClientRect();
    return {text: td.textContent.slice(0, 20), left: box.left, right: box.right};
  });
  document.body.setAttribute('data-measured', JSON.stringify({
    width: document.documentElement.clientWidth,
    scrolls: document.documentElement.scrollWidth,
    cells: cells
  }));
})();
</script></body>"""


def test_long_names_and_values_stay_within_the_page_width(
    jaeger: Jaeger, chromium: str, tmp_path: Path
):
    attributes = {"k" * 5000: "value-of-the-long-key", "long.value": "w" * 5000}
    trace_id = store(jaeger, "s" * 300, [Span(0xB2, None, "n" * 5000, attributes)])
    page = page_of(jaeger, trace_id, tmp_path / "trace.html")
    measured_page = tmp_path / "measured.html"
    measured_page.write_text(page.read_text().replace("</body>", MEASURE))
    dom = run_chromium(
        chromium,
        tmp_path / "profile",
        "--window-size=1200,900",
        "--virtual-time-budget=2000",
        "--dump-dom",
        f"{measured_page.as_uri()}#span={0xB2:016x}",
    )
    start = dom.index("data-measured=") + len("data-measured=") + 1
    raw = dom[start : dom.index('"', start)].replace("&quot;", '"').replace("&amp;", "&")
    measured = json.loads(raw)
    texts = [cell["text"] for cell in measured["cells"]]
    assert "value-of-the-long-ke" in texts  # the panel shows the span
    for cell in measured["cells"]:
        assert 0 <= cell["left"] < cell["right"] <= measured["width"], cell
    assert measured["scrolls"] <= measured["width"]
