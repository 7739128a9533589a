#!/usr/bin/env bash
# The whole test suite: installs what is missing (scripts/setup.sh), then lint, types, tests.
# Extra arguments go to pytest (e.g. scripts/test.sh -k lag).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/setup.sh
echo "[test] ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "[test] mypy --strict" >&2
.venv/bin/mypy
echo "[test] pytest" >&2
exec .venv/bin/pytest "$@"
