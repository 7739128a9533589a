#!/usr/bin/env bash
# Installs everything the demo and the test suite need, idempotently and cached:
#   - a virtual environment in .venv with kafkascope (editable), its extras, contrib's Kafka
#     and threading instrumentations (the dependency group contrib) and MkDocs for the
#     documentation site, at the versions pinned in constraints.txt;
#   - the Apache Kafka broker jars from Maven Central (scripts/fetch_kafka.sh);
#   - the OpenTelemetry Java agent and kafka-clients from Maven Central, and the interop tests'
#     Java apps compiled with javac (scripts/fetch_java.sh);
#   - Prometheus and promtool from Debian's package (scripts/install_prometheus.sh);
#   - headless Chromium from Debian's package, for the HTML page tests (scripts/install_chromium.sh);
#   - the OpenTelemetry Collector and Jaeger v2, built with Go (scripts/build_collector.sh,
#     scripts/build_jaeger.sh; the first build takes several minutes).
# A second run only checks stamps and returns in seconds.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
say() { printf '[setup] %s\n' "$*" >&2; }
need() { command -v "$1" >/dev/null 2>&1 || { say "missing tool: $1 ($2)"; exit 1; }; }

py="${PYTHON:-python3.11}"
command -v "$py" >/dev/null 2>&1 || py=python3
need "$py" "Python 3.11 or newer"
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { say "Python 3.11+ required, found $("$py" --version)"; exit 1; }

if [ ! -x .venv/bin/python ]; then
  say "creating virtual environment .venv"
  "$py" -m venv .venv
fi
stamp=".venv/.kafkascope-deps"
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing kafkascope and its dev dependencies into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  # --group (pip >= 25.1, just upgraded): contrib's Kafka and threading instrumentations, for
  # the tests and benchmarks that run beside them (pyproject.toml says why not in an extra).
  .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt \
    -e '.[dev,docs,confluent,aiokafka]' --group contrib
  echo "$want" > "$stamp"
else
  say "python dependencies up to date"
fi

bash scripts/fetch_kafka.sh >/dev/null
bash scripts/fetch_java.sh >/dev/null
bash scripts/install_prometheus.sh
bash scripts/install_chromium.sh >/dev/null
# Both print the binary's path on stdout (devstack reads it); here only their [..] progress shows.
bash scripts/build_collector.sh >/dev/null
bash scripts/build_jaeger.sh >/dev/null
