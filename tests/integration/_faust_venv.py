"""A cached virtual environment for Faust: faust-streaming pins ``click<8.4``, which the suite's
own environment (mkdocs, constraints.txt) cannot hold, so Faust runs in a venv of its own,
built once per machine in ``~/.cache/kafkascope/venvs`` (``KAFKASCOPE_CACHE``)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from devstack._process import CACHE_DIR

REPO = Path(__file__).resolve().parents[2]
FAUST_PINS = ("faust-streaming==0.15.3", "opentelemetry-distro>=0.51b0")
"""Faust, and ``opentelemetry-instrument`` to run its workers zero-code."""


def faust_venv() -> Path:
    """The ``bin`` folder of a cached venv with kafkascope (its entry points) and Faust.

    kafkascope is installed from the checkout so that ``opentelemetry-instrument`` finds its
    entry points; the code that runs is the working tree's (put ``src`` first on PYTHONPATH).
    The cache key is pyproject.toml (the entry points, the dependencies) and the pins.
    """
    key = hashlib.sha256((REPO / "pyproject.toml").read_bytes() + repr(FAUST_PINS).encode())
    venv = CACHE_DIR / "venvs" / f"faust-{key.hexdigest()[:12]}"
    if (venv / ".complete").exists():
        return venv / "bin"
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True, timeout=300)
    subprocess.run([*pip, f"{REPO}[aiokafka]", *FAUST_PINS], check=True, timeout=900)
    (venv / ".complete").write_text("ok\n")
    return venv / "bin"


if __name__ == "__main__":
    print(faust_venv())
