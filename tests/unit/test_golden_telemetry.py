"""What kafkascope exports for a fixed set of inputs is exactly what it exported when the fixture
was recorded (``python -m tests.unit._golden_telemetry --record``, only on purpose); the same
for those inputs under a sampler that records nothing (what unsampled messages still export)."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from tests.unit import _golden_telemetry as golden_telemetry


def _compare(fixture: Path, *, sampled: bool, presampled: bool = False) -> None:
    assert fixture.is_file(), (
        f"{fixture} is missing; record it from a known-good commit with "
        "`python -m tests.unit._golden_telemetry --record`"
    )
    expected = fixture.read_text()
    actual = golden_telemetry.dumps(
        golden_telemetry.capture(sampled=sampled, presampled=presampled)
    )
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(), actual.splitlines(), "recorded", "now", n=8, lineterm=""
        )
        raise AssertionError(
            "exported telemetry changed (spans, metric points, handler observations, logs or "
            "injected headers); if the change is intended, re-record the fixture:\n"
            + "\n".join(diff)
        )


def test_exported_telemetry_matches_the_recorded_fixture():
    _compare(golden_telemetry.FIXTURE, sampled=True)


def test_unsampled_messages_export_what_the_recorded_fixture_says():
    _compare(golden_telemetry.FIXTURE_UNSAMPLED, sampled=False)


def test_presampling_exports_what_the_recorded_fixture_says():
    # The inputs carry unsampled parents too: those spans are dropped before the SDK is asked.
    _compare(golden_telemetry.FIXTURE, sampled=True, presampled=True)


def test_presampled_unsampled_messages_export_what_the_recorded_fixture_says():
    _compare(golden_telemetry.FIXTURE_UNSAMPLED, sampled=False, presampled=True)


@pytest.mark.parametrize("sampled", [True, False])
def test_the_golden_run_is_deterministic(sampled):
    assert golden_telemetry.capture(sampled=sampled) == golden_telemetry.capture(sampled=sampled)
