"""What kafkascope exports for a fixed set of inputs is exactly what it exported when the fixture
was recorded (``python -m tests.unit._golden_telemetry --record``, only on purpose)."""

from __future__ import annotations

import difflib

from tests.unit import _golden_telemetry as golden_telemetry


def test_exported_telemetry_matches_the_recorded_fixture():
    assert golden_telemetry.FIXTURE.is_file(), (
        f"{golden_telemetry.FIXTURE} is missing; record it from a known-good commit with "
        "`python -m tests.unit._golden_telemetry --record`"
    )
    expected = golden_telemetry.FIXTURE.read_text()
    actual = golden_telemetry.dumps(golden_telemetry.capture())
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(), actual.splitlines(), "recorded", "now", n=8, lineterm=""
        )
        raise AssertionError(
            "exported telemetry changed (spans, metric points, handler observations, logs or "
            "injected headers); if the change is intended, re-record the fixture:\n"
            + "\n".join(diff)
        )


def test_the_golden_run_is_deterministic():
    assert golden_telemetry.capture() == golden_telemetry.capture()
