#!/usr/bin/env bash
# The whole test suite: installs what is missing (scripts/setup.sh), then lint, types, the
# documentation site, tests.
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
echo "[test] mkdocs build --strict" >&2
# The site, reference pages generated from the code; a broken link, a missing reference or a
# docstring that does not render fails it. tests/unit/docs/ opens the built site in Chromium.
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet --site-dir .artefacts/site
echo "[test] pytest" >&2
exec .venv/bin/pytest "$@"
