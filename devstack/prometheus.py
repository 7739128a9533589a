"""A real Prometheus server (Debian's package) on a free 127.0.0.1 port, with its own storage.

:meth:`Prometheus.start` writes a configuration scraping the given targets, starts
``prometheus`` and waits until ``/-/ready`` answers; :meth:`Prometheus.query` runs PromQL over
the HTTP API.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from devstack._process import ManagedProcess, Server, ServerError, free_port
from devstack._support import get_json, http_get
from devstack.wait import wait_until

HOST = "127.0.0.1"


def prometheus_binary() -> str:
    """The ``prometheus`` executable, or a ServerError saying how to install it."""
    found = shutil.which("prometheus")
    if found is None:
        raise ServerError("missing tool: prometheus (run scripts/install_prometheus.sh)")
    return found


def scrape_config(
    targets: Sequence[tuple[str, str]],
    *,
    interval: str = "1s",
    rule_files: Sequence[Path] = (),
) -> str:
    """A prometheus.yml scraping ``(job, "host:port")`` targets, honouring their labels."""
    lines = [
        "global:",
        f"  scrape_interval: {interval}",
        f"  evaluation_interval: {interval}",
    ]
    if rule_files:
        lines.append("rule_files:")
        lines.extend(f"  - {json.dumps(str(path))}" for path in rule_files)
    lines.append("scrape_configs:")
    for job, target in targets:
        lines += [
            f"  - job_name: {json.dumps(job)}",
            "    honor_labels: true",
            "    static_configs:",
            f"      - targets: [{json.dumps(target)}]",
        ]
    return "\n".join(lines) + "\n"


class Prometheus(Server):
    """One running Prometheus, stopped by its own PID."""

    def __init__(self, process: ManagedProcess, port: int, config_path: Path) -> None:
        self.process = process
        self.port = port
        self.config_path = config_path

    @classmethod
    def start(
        cls,
        workdir: Path,
        targets: Sequence[tuple[str, str]],
        *,
        interval: str = "1s",
        rule_files: Sequence[Path] = (),
        timeout: float = 60.0,
    ) -> Prometheus:
        """Start Prometheus scraping ``targets`` every ``interval``; wait until it is ready."""
        workdir.mkdir(parents=True, exist_ok=True)
        config_path = workdir / "prometheus.yml"
        config_path.write_text(scrape_config(targets, interval=interval, rule_files=rule_files))
        port = free_port()
        process = ManagedProcess(
            "prometheus",
            [
                prometheus_binary(),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address={HOST}:{port}",
                "--storage.tsdb.retention.time=1d",
                "--web.enable-lifecycle",
                "--enable-feature=exemplar-storage",
            ],
            log_path=workdir / "prometheus.log",
        )
        server = cls(process, port, config_path)
        process.wait_until(server.ready, timeout=timeout, what="ready on /-/ready")
        return server

    @property
    def url(self) -> str:
        """Base URL of the HTTP API."""
        return f"http://{HOST}:{self.port}"

    def ready(self) -> bool:
        """Whether ``/-/ready`` answers 200."""
        status, _ = http_get(f"{self.url}/-/ready", timeout=2)
        return status == 200

    def _get(self, path: str, params: dict[str, str]) -> Any:
        query = urllib.parse.urlencode(params)
        status, body = get_json(f"{self.url}{path}?{query}", timeout=10)
        if not isinstance(body, dict) or body.get("status") != "success":
            raise ServerError(f"prometheus {path} failed ({status}): {body}")
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query; the result vector."""
        result: list[dict[str, Any]] = self._get("/api/v1/query", {"query": promql})["result"]
        return result

    def exemplars(self, promql: str, *, start: float, end: float) -> list[dict[str, Any]]:
        """``/api/v1/query_exemplars`` over ``[start, end]`` (Unix seconds): one entry per
        series, ``{"seriesLabels": ..., "exemplars": [{"labels", "value", "timestamp"}]}``."""
        data: list[dict[str, Any]] = self._get(
            "/api/v1/query_exemplars", {"query": promql, "start": str(start), "end": str(end)}
        )
        return data

    def scalar(self, promql: str) -> float | None:
        """The single value of an instant query, or None when the result is empty."""
        result = self.query(promql)
        if not result:
            return None
        if len(result) != 1:
            raise ServerError(f"{promql!r} returned {len(result)} series, expected one")
        return float(result[0]["value"][1])

    def wait_for(
        self, promql: str, accept: Callable[[float | None], bool], *, timeout: float = 30.0
    ) -> float | None:
        """Poll ``promql`` until ``accept(value)``; returns the last value either way."""
        value: float | None = None

        def accepted() -> bool:
            nonlocal value
            value = self.scalar(promql)
            return accept(value)

        with contextlib.suppress(TimeoutError):  # the caller judges the last value
            wait_until(accepted, timeout, f"{promql!r} accepted", interval=0.5)
        return value

    def targets(self) -> list[dict[str, Any]]:
        """Active scrape targets with their health."""
        active: list[dict[str, Any]] = self._get("/api/v1/targets", {})["activeTargets"]
        return active
