#!/usr/bin/env bash
# The demo: installs what is missing (scripts/setup.sh: the venv, Kafka's jars, Prometheus, and
# the Collector and Jaeger built with Go, cached), then runs examples/pipeline: Kafka, Jaeger v2,
# the OpenTelemetry Collector and Prometheus on free 127.0.0.1 ports, four services as separate
# processes (orders -> enricher -> billing -> dead letters; audit, unmodified, under
# opentelemetry-instrument), and prints one message's trace read back from Jaeger and the
# messaging metrics read back from Prometheus. Everything is stopped by PID at the end.
# Extra arguments go to the demo (--seconds, --rate, --workdir DIR to keep the logs).
# The smaller single-broker example is `.venv/bin/python -m examples.quickstart`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/setup.sh
exec .venv/bin/python -m examples.pipeline "$@"
