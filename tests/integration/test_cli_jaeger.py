"""`kafkascope trace` against a real Jaeger v2 (and the Collector), both from collector/'s configs.

Jaeger runs ``collector/jaeger-config.yaml`` and the Collector ``collector/otelcol-config.yaml``,
their endpoints moved to free 127.0.0.1 ports through the environment variables they read.

With ``KAFKASCOPE_RECORD_JAEGER_FIXTURE=1`` the test that reads a trace straight from Jaeger also
rewrites the unit tests' recorded answer, ``tests/unit/data/jaeger_trace.json``.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from devstack import collector as devstack_collector
from devstack import jaeger as devstack_jaeger
from devstack._process import free_port
from devstack.collector import Collector
from devstack.jaeger import Jaeger
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from kafkascope import extract_context, inject_headers, process_batch_span, process_span
from kafkascope.cli import EXIT_NOT_FOUND, EXIT_OK, EXIT_UNAVAILABLE, main
from kafkascope.testing import make_record

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).resolve().parent.parent / "unit" / "data" / "jaeger_trace.json"
RECORD_ENV = "KAFKASCOPE_RECORD_JAEGER_FIXTURE"


class CardDeclinedError(Exception):
    """The handler's failure in the sample trace."""


@dataclass(frozen=True)
class SampleTrace:
    """The ids of the sample trace's spans (hex), by role."""

    trace_id: str
    request: str
    send: str
    failed_process: str
    charge: str
    retried_process: str
    send_invoice: str
    poll: str
    batch: str
    other_trace_send: str


def _span_id(span: trace.Span) -> str:
    return format(span.get_span_context().span_id, "016x")


def send_sample_trace(otlp_grpc_endpoint: str) -> SampleTrace:
    """Send one trace across three services, shaped as kafkascope makes them, over OTLP gRPC.

    orders: ``POST /orders`` > ``send orders``; billing: a ``process orders`` that fails in
    ``charge card``, then one that succeeds and sends ``send invoices``; audit: ``poll orders``
    > a batch ``process orders`` linked to this trace's message and to one from another trace.
    """
    providers = {}
    for service in ("orders", "billing", "audit"):
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        exporter = OTLPSpanExporter(endpoint=otlp_grpc_endpoint, insecure=True, timeout=10)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        providers[service] = provider
    orders = providers["orders"].get_tracer("sample.orders")
    billing = providers["billing"].get_tracer("sample.billing")
    audit = providers["audit"].get_tracer("sample.audit")
    try:
        with orders.start_as_current_span("send orders", kind=SpanKind.PRODUCER) as other_send:
            other_headers = inject_headers()
        with (
            orders.start_as_current_span("POST /orders", kind=SpanKind.SERVER) as request,
            orders.start_as_current_span("send orders", kind=SpanKind.PRODUCER) as send,
        ):
            headers = inject_headers()
        record = make_record("orders", b"{}", key=b"A-1", headers=headers, offset=7)
        other = make_record("orders", b"{}", key=b"B-2", headers=other_headers, offset=8)
        with (
            pytest.raises(CardDeclinedError),
            process_span(record, group="billing", tracer_provider=providers["billing"]) as failed,
            billing.start_as_current_span("charge card") as charge,
        ):
            raise CardDeclinedError("card declined")
        with (
            process_span(record, group="billing", tracer_provider=providers["billing"]) as retry,
            billing.start_as_current_span("send invoices", kind=SpanKind.PRODUCER) as invoice,
        ):
            pass
        with (
            audit.start_as_current_span(
                "poll orders", context=extract_context(record.headers)
            ) as poll,
            process_batch_span(
                [record, other], group="audit", tracer_provider=providers["audit"]
            ) as batch,
        ):
            pass
    finally:
        for provider in providers.values():
            provider.shutdown()
    return SampleTrace(
        trace_id=format(send.get_span_context().trace_id, "032x"),
        request=_span_id(request),
        send=_span_id(send),
        failed_process=_span_id(failed),
        charge=_span_id(charge),
        retried_process=_span_id(retry),
        send_invoice=_span_id(invoice),
        poll=_span_id(poll),
        batch=_span_id(batch),
        other_trace_send=_span_id(other_send),
    )


@pytest.fixture(scope="module")
def jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jaeger]:
    """Jaeger running collector/jaeger-config.yaml on free ports."""
    server = Jaeger.start(
        tmp_path_factory.mktemp("jaeger"), config_file=devstack_jaeger.SHIPPED_CONFIG
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sample(jaeger: Jaeger) -> SampleTrace:
    """The sample trace, sent straight to Jaeger and stored there."""
    sent = send_sample_trace(jaeger.otlp_grpc_endpoint)
    jaeger.wait_for_trace(sent.trace_id, min_spans=8)
    return sent


def test_trace_prints_the_waterfall_from_jaeger(
    jaeger: Jaeger, sample: SampleTrace, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["trace", sample.trace_id, "--jaeger", jaeger.query_url])
    out = capsys.readouterr().out
    assert status == EXIT_OK
    lines = out.splitlines()
    assert lines[0].startswith(f"trace {sample.trace_id}: 8 spans, ")
    assert lines[0].endswith("services audit, billing, orders")
    assert lines[1].startswith("orders: POST /orders ")
    assert lines[2].startswith("  orders: send orders ")
    charge_line = next(line for line in lines if "billing: charge card" in line)
    assert charge_line.startswith("      billing: charge card ")
    assert charge_line.endswith("ERROR")


def test_trace_json_has_parents_links_and_errors_from_jaeger(
    jaeger: Jaeger, sample: SampleTrace, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["trace", sample.trace_id.upper(), "--jaeger", jaeger.query_url + "/", "--json"])
    rows = {row["span_id"]: row for row in json.loads(capsys.readouterr().out)}
    assert status == EXIT_OK
    assert len(rows) == 8
    expected = {
        sample.request: ("orders", "POST /orders", None, False, []),
        sample.send: ("orders", "send orders", sample.request, False, []),
        # A process span whose parent is the send links to nothing more (the lighter span)
        sample.failed_process: ("billing", "process orders", sample.send, True, []),
        sample.charge: ("billing", "charge card", sample.failed_process, True, []),
        sample.retried_process: ("billing", "process orders", sample.send, False, []),
        sample.send_invoice: ("billing", "send invoices", sample.retried_process, False, []),
        sample.poll: ("audit", "poll orders", sample.send, False, []),
        sample.batch: (
            "audit",
            "process orders",
            sample.poll,
            False,
            [sample.send, sample.other_trace_send],
        ),
    }
    for span_id, (service, name, parent, error, links) in expected.items():
        row = rows[span_id]
        assert (row["service"], row["name"], row["parent_id"], row["error"]) == (
            service,
            name,
            parent,
            error,
        ), row
        assert sorted(row["links"]) == sorted(links), row
        assert row["end_ns"] >= row["start_ns"] > 0


def test_jaeger_answer_recorded_for_the_unit_tests(jaeger: Jaeger, sample: SampleTrace) -> None:
    """The unit tests' fixture has the shape of today's answer (rewritten when recording)."""
    url = f"{jaeger.query_url}/api/traces/{sample.trace_id}"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read()
    answer = json.loads(body)
    if os.environ.get(RECORD_ENV) == "1":
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        FIXTURE.write_text(json.dumps(answer, indent=1) + "\n")
    recorded = json.loads(FIXTURE.read_text())
    assert sorted(answer) == sorted(recorded)
    live_span, recorded_span = answer["data"][0]["spans"][0], recorded["data"][0]["spans"][0]
    assert sorted(live_span) == sorted(recorded_span)
    assert sorted(answer["data"][0]["processes"]["p1"]) == sorted(
        recorded["data"][0]["processes"]["p1"]
    )


def test_unknown_trace_exits_1(jaeger: Jaeger, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["trace", "0123456789abcdef0123456789abcdef", "--jaeger", jaeger.query_url])
    err = capsys.readouterr().err
    assert status == EXIT_NOT_FOUND
    assert f"Jaeger at {jaeger.query_url} has no trace 0123456789abcdef0123456789abcdef" in err
    assert "trace not found" in err


def test_nothing_listening_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    status = main(["trace", "0123456789abcdef", "--jaeger", url, "--timeout", "5"])
    err = capsys.readouterr().err
    assert status == EXIT_UNAVAILABLE
    assert f"cannot reach Jaeger at {url}" in err
    assert "refused" in err.lower()


def test_trace_through_the_shipped_collector_config(
    jaeger: Jaeger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """services -> Collector (collector/otelcol-config.yaml) -> Jaeger -> kafkascope trace."""
    with Collector.start(
        tmp_path,
        jaeger_otlp_endpoint=jaeger.otlp_grpc_endpoint,
        config_file=devstack_collector.SHIPPED_CONFIG,
    ) as collector:
        sent = send_sample_trace(collector.otlp_grpc_endpoint)
        jaeger.wait_for_trace(sent.trace_id, min_spans=8, timeout=30)
    status = main(["trace", sent.trace_id, "--jaeger", jaeger.query_url, "--json"])
    rows = {row["span_id"]: row for row in json.loads(capsys.readouterr().out)}
    assert status == EXIT_OK
    assert rows[sent.charge]["parent_id"] == sent.failed_process
    assert rows[sent.charge]["error"] is True
    assert rows[sent.batch]["service"] == "audit"
