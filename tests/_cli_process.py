"""Running the real ``kafkascope`` command (the console script pip installed) as a subprocess,
on the checkout under test, and reading what it wrote as the terminal would get it: bytes."""

from __future__ import annotations

import os
import subprocess
import sys
import unicodedata
from collections.abc import Mapping
from pathlib import Path

import kafkascope

SRC = Path(kafkascope.__file__).resolve().parents[1]
COMMAND = Path(sys.executable).with_name("kafkascope")
TERMINAL_UNSAFE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
"""Unicode categories that may act on a terminal (controls, bidi overrides, ...) or be unknown."""


def run_kafkascope(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[bytes]:
    """``kafkascope *args``, with this checkout's package first on the path; stdout and stderr
    as bytes. ``env`` is added to the environment (less any ``OTEL_*`` and ``KAFKASCOPE_*``)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "KAFKASCOPE_"))}
    full["PYTHONPATH"] = os.pathsep.join([str(SRC), full.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    full.update(env or {})
    return subprocess.run(
        [str(COMMAND), *args],
        env=full,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )


def unsafe_characters(output: bytes) -> list[str]:
    """The characters of ``output`` (UTF-8) a terminal could act on, other than line ends."""
    text = output.decode("utf-8")  # raises if the command wrote bytes that are not UTF-8
    return [c for c in text if c != "\n" and unicodedata.category(c) in TERMINAL_UNSAFE]


def width(line: str) -> int:
    """Columns a terminal gives ``line``: wide characters 2, combining marks 0, others 1."""
    return sum(
        0
        if unicodedata.category(c) in ("Mn", "Me")
        else 2
        if unicodedata.east_asian_width(c) in ("W", "F")
        else 1
        for c in line
    )
