from __future__ import annotations

import logging

from kafkascope._setup.quiet_exporters import RepeatFilter, quiet_exporter_logs


def _record(msg: str, level: int = logging.WARNING, name: str = "x") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, None, None)


def test_first_of_a_kind_passes_then_repeats_are_held_back_until_the_interval():
    clock = [0.0]
    gate = RepeatFilter(interval=300, clock=lambda: clock[0])
    assert gate.filter(_record("Transient error %s retrying"))
    assert not any(gate.filter(_record("Transient error %s retrying")) for _ in range(50))
    assert gate.filter(_record("Failed to export %s"))  # another kind
    clock[0] = 301.0
    again = _record("Transient error %s retrying")
    assert gate.filter(again)
    assert "(50 similar messages suppressed by kafkascope)" in str(again.msg)


def test_info_records_are_never_held_back():
    gate = RepeatFilter(interval=300)
    assert all(gate.filter(_record("exported", logging.INFO)) for _ in range(3))


def test_installed_once_on_every_exporter_logger():
    from opentelemetry.exporter.otlp.proto.grpc import exporter as grpc_exporter
    from opentelemetry.exporter.otlp.proto.http import (
        _common,
        _log_exporter,
        metric_exporter,
        trace_exporter,
    )

    first = quiet_exporter_logs()
    assert quiet_exporter_logs() is first
    # The loggers the OTLP exporters write their retry warnings to, taken from the exporters
    # themselves rather than from kafkascope's list of them.
    loggers = [
        grpc_exporter.logger,
        trace_exporter._logger,
        metric_exporter._logger,
        _log_exporter._logger,
        _common._logger,
    ]
    assert [logger.filters.count(first) for logger in loggers] == [1] * 5


def test_forget_lets_the_next_record_of_each_kind_through():
    now = [0.0]
    repeat = RepeatFilter(interval=300, clock=lambda: now[0])
    assert repeat.filter(_record("export failed"))
    assert not repeat.filter(_record("export failed"))
    repeat.forget()
    assert repeat.filter(_record("export failed"))
