"""Exemplars of a latency histogram: the slowest bucket's, time windows, metric names."""

from __future__ import annotations

import math

import pytest

from kafkascope._reports.slowest import metric_name, parse_exemplars, slowest, window_seconds


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
