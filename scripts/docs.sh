#!/usr/bin/env bash
# Serves the documentation site on http://127.0.0.1:8000, rebuilt as docs/, mkdocs.yml, docgen/
# or the docstrings change (scripts/setup.sh installs MkDocs, pinned by constraints.txt).
# Extra arguments go to mkdocs serve (e.g. scripts/docs.sh -a 127.0.0.1:8001).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/setup.sh
NO_MKDOCS_2_WARNING=1 exec .venv/bin/mkdocs serve -a 127.0.0.1:8000 --watch src --watch docgen "$@"
