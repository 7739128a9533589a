#!/usr/bin/env bash
# The demo: installs what is missing (scripts/setup.sh), then runs examples/quickstart.py, which
# starts a real Kafka broker, sends one traced message from one service to another and prints
# its trace.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/setup.sh
exec .venv/bin/python -m examples.quickstart "$@"
