"""Helpers shared by the server runners: build scripts, ports, configs, HTTP (the one GET)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from devstack._process import ServerError, free_port, run_script

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPTS_DIR = REPO_ROOT / "scripts"


def build_binary(script: str, *, what: str, timeout: float | None = None) -> Path:
    """Run ``scripts/<script>`` (cached and idempotent) and return the binary path it prints.

    When the binary is cached this returns at once; otherwise the script builds it from the Go
    module proxy, which the first time takes minutes.
    """
    binary = run_script(SCRIPTS_DIR / script, what=f"building {what}", timeout=timeout)
    if not os.access(binary, os.X_OK):
        raise ServerError(f"scripts/{script} reported {binary}, which is not an executable")
    return binary


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct TCP ports on 127.0.0.1 that are free right now."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def write_config(path: Path, config: dict[str, Any]) -> Path:
    """Write a collector-style config. JSON is valid YAML, so the file is YAML to both servers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def http_get(url: str, *, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET ``url``; return the status and body, also for 4xx/5xx answers (no exception)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as err:
        return int(err.code), bytes(err.read())


def get_json(url: str, *, timeout: float = 5.0) -> tuple[int, Any]:
    """GET ``url`` and decode its JSON body; return the status and the value, also for 4xx/5xx
    answers. Raises ServerError naming the URL if the body is not JSON."""
    status, body = http_get(url, timeout=timeout)
    try:
        return status, json.loads(body)
    except json.JSONDecodeError as exc:
        raise ServerError(f"GET {url} answered {status} with non-JSON {body[:200]!r}") from exc
