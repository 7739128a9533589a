"""Running unmodified apps (``apps/``) under ``opentelemetry-instrument`` and reading what the
console exporters printed: for the zero-code tests."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import kafkascope

APPS = Path(__file__).parent / "apps"
SRC = Path(kafkascope.__file__).parents[1]
"""The kafkascope under test (this checkout's), for the apps too."""
INSTRUMENT = Path(sys.executable).parent / "opentelemetry-instrument"


def console_objects(text: str) -> list[dict[str, Any]]:
    """The JSON objects the console exporters printed, in order."""
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    index = 0
    while (start := text.find("{", index)) != -1:
        try:
            obj, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            index = start + 1
            continue
        if isinstance(obj, dict):
            found.append(obj)
        index = end
    return found


def zero_code_env(service: str, **env: str) -> dict[str, str]:
    """The environment of an app run under ``opentelemetry-instrument`` (``command(...)``):
    spans and logs to the console, only kafkascope's Kafka instrumentation, this checkout's."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    full.update(
        OTEL_SERVICE_NAME=service,
        OTEL_TRACES_EXPORTER="console",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="console",
        OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED="true",
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="kafka,confluent_kafka,aiokafka",
        PYTHONPATH=os.pathsep.join([str(APPS), str(SRC)]),
    )
    full.update(env)
    return full


def command(script: str, *args: str) -> list[str]:
    """``opentelemetry-instrument python apps/<script> args...``."""
    return [str(INSTRUMENT), sys.executable, str(APPS / script), *args]


def console_spans(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The spans among the console exporters' objects."""
    return [o for o in objects if "kind" in o and "context" in o]


def console_logs(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The log records among the console exporters' objects."""
    return [o for o in objects if "body" in o and "severity_text" in o]
