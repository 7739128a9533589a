"""benchmarks.send_gc, run small: its census sees what a traced send keeps alive (kafkascope's
observer and deferred span per send in flight, nothing of the SDK's span until it completes,
nothing of kafkascope's per queued span), and the command prints its four lines."""

from __future__ import annotations

import pytest
from benchmarks import send_gc


def test_census_finds_kafkascope_send_and_its_deferred_span_in_flight_not_the_sdk_span():
    found = send_gc.census(300)
    assert found.in_flight["SendObserver"] == 1.0
    # configure()'s providers make the SDK's span when the send completes.
    assert found.in_flight["DeferredSpan"] == 1.0
    assert "_Span" not in found.in_flight
    assert "BoundedAttributes" not in found.in_flight


def test_census_finds_no_kafkascope_object_per_queued_span():
    found = send_gc.census(300)
    assert found.queued["ReadableSpan"] == 1.0
    assert not [name for name in found.queued if name.startswith("Send")]


def test_command_prints_the_census_and_the_collections(capsys: pytest.CaptureFixture[str]):
    assert send_gc.main(["--sends", "1000", "--in-flight", "50", "--heap", "1000"]) == 0
    labels = [line.split(":")[0].rsplit(" ", 1)[0] for line in capsys.readouterr().out.splitlines()]
    assert labels == [
        "tracked objects per send in flight",
        "tracked objects per queued span",
        "collections per send by generation",
        "collection CPU us per send by generation",
    ]
