"""Exemplars of a latency histogram: the slowest bucket's, time windows, metric names."""

from __future__ import annotations

import math

import pytest

from kafkascope._reports.slowest import (
    LABEL_COLUMNS,
    describe,
    metric_name,
    parse_exemplars,
    slowest,
    window_seconds,
)
from kafkascope.cli import EXIT_USAGE, main


def _series(le: str, *exemplars: tuple[str, str]) -> dict[str, object]:
    return {
        "seriesLabels": {"__name__": "x_bucket", "le": le, "job": "billing"},
        "exemplars": [
            {"labels": {"trace_id": t, "span_id": "00f067aa0ba902b7"}, "value": v, "timestamp": 1.5}
            for t, v in exemplars
        ],
    }


def test_the_slowest_bucket_wins_then_the_slowest_value_in_it():
    data = [
        _series("5", ("a" * 32, "4.9")),
        _series("+Inf", ("b" * 32, "12"), ("c" * 32, "30")),
        _series("10", ("d" * 32, "9.5")),
    ]
    chosen = slowest(parse_exemplars(data))
    assert chosen is not None
    assert (chosen.trace_id, chosen.value, chosen.bucket) == ("c" * 32, 30.0, math.inf)
    assert chosen.series["job"] == "billing"


@pytest.mark.parametrize(
    "data",
    [None, "x", [1], [{"seriesLabels": {}}], [{"seriesLabels": {"le": "a"}, "exemplars": [{}]}]],
)
def test_unusable_answers_give_no_exemplar(data):
    assert slowest(parse_exemplars(data)) is None


def test_exemplars_without_a_trace_id_are_skipped():
    data = [{"seriesLabels": {"le": "1"}, "exemplars": [{"labels": {}, "value": "0.5"}]}]
    assert parse_exemplars(data) == []


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("1.5h", 5400)])
def test_windows(text, seconds):
    assert window_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "0m", "-1h", "1w", "1h30m"])
def test_bad_windows_are_refused(text):
    with pytest.raises(ValueError, match="not a duration"):
        window_seconds(text)


def test_metric_short_names_and_prometheus_names():
    assert metric_name("pipeline-latency") == "kafkascope_pipeline_latency_seconds"
    assert metric_name("processing-time") == "messaging_process_duration_seconds"
    assert metric_name("my_histogram_bucket") == "my_histogram"
    with pytest.raises(ValueError, match="not a metric"):
        metric_name('x{job="a"}')


def test_bad_arguments_exit_2(capsys):
    assert main(["slowest", "--window", "soon"]) == EXIT_USAGE
    assert main(["slowest", "--prometheus", "ftp://x"]) == EXIT_USAGE
    assert "not an http(s) URL for Prometheus" in capsys.readouterr().err


def test_label_values_are_escaped_and_cut_in_the_description():
    series = _series("+Inf", ("a" * 32, "3"))
    series["seriesLabels"] = {"le": "+Inf", "job": "billing\x1b]0;pwned\x07", "x": 1}
    series["seriesLabels"]["messaging_destination_name"] = "t" * 5000  # type: ignore[index]
    chosen = slowest(parse_exemplars([series]))
    assert chosen is not None
    line = describe(chosen)
    assert "\x1b" not in line
    assert "service=billing\\x1b]0;pwned\\x07 " in line
    assert f"topic={'t' * (LABEL_COLUMNS - 1)}…" in line
    assert len(line) < 200


@pytest.mark.parametrize("trace_id", ["\x1b[2J", "", "0x12", "g" * 32, "a" * 33, "ab cd", 12])
def test_an_exemplar_whose_trace_id_is_not_hex_is_skipped(trace_id):
    data = [_series("1", ("a" * 32, "0.5"))]
    data[0]["exemplars"].append(  # type: ignore[attr-defined]
        {"labels": {"trace_id": trace_id}, "value": "9", "timestamp": 1}
    )
    assert [e.trace_id for e in parse_exemplars(data)] == ["a" * 32]


@pytest.mark.parametrize(
    "exemplars",
    [
        5,
        "abc",
        [{"labels": {"trace_id": "ab"}, "value": "1", "timestamp": "soon"}],
        [{"labels": {"trace_id": "ab"}, "value": "1", "timestamp": {"a": 1}}],
        [{"labels": {"trace_id": "ab"}, "value": "NaN"}],
        [{"labels": {"trace_id": "ab"}, "value": [1]}],
        [{"labels": ["trace_id"], "value": "1"}],
    ],
)
def test_odd_exemplars_are_read_or_skipped_never_raised(exemplars):
    data = [{"seriesLabels": {"le": "1"}, "exemplars": exemplars}]
    for exemplar in parse_exemplars(data):
        assert exemplar.trace_id == "ab"
        assert exemplar.timestamp == 0.0
