"""MkDocs hook (``hooks:`` in mkdocs.yml): adds the generated reference pages to the build."""

from __future__ import annotations

import sys
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

# MkDocs loads this file by path: the checkout's root makes ``docgen`` importable.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from docgen.pages import PAGES  # noqa: E402


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add each page of :data:`docgen.pages.PAGES`, written from the code at build time."""
    for path, write in PAGES.items():
        files.append(File.generated(config, path, content=write()))
    return files
