"""The OpenTelemetry Collector (otelcol-kafkascope, built by scripts/build_collector.sh).

``Collector.start`` writes a config with every port on a free 127.0.0.1 port, checks it with
``otelcol-kafkascope validate``, starts the collector and waits for its health check:

- OTLP gRPC and HTTP receivers;
- processors ``memory_limiter`` then ``batch``;
- traces to Jaeger over OTLP gRPC (exporter ``otlp_grpc/jaeger``);
- metrics to the Prometheus exporter (``prometheus_metrics_url``);
- logs to the file exporter as JSON lines (``logs_path``) and to the debug exporter;
- the ``health_check`` extension and the collector's own metrics on free ports.

``Collector.start(..., config_file=SHIPPED_CONFIG)`` runs the user-facing
``collector/otelcol-config.yaml`` instead, its endpoints bound to the same free 127.0.0.1 ports
through the environment variables it reads (:func:`shipped_config_env`).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devstack._process import ManagedProcess, Server, ServerError, port_open
from devstack._support import REPO_ROOT, build_binary, free_ports, http_get, write_config

BINARY_NAME = "otelcol-kafkascope"
SHIPPED_CONFIG = REPO_ROOT / "collector" / "otelcol-config.yaml"
"""The Collector config shipped to users (also used by collector/docker-compose.yaml)."""


def collector_binary(*, build_timeout: float | None = None) -> Path:
    """Path of the cached collector binary, building it first if it is not cached yet."""
    return build_binary("build_collector.sh", what=BINARY_NAME, timeout=build_timeout)


def validate_config(
    binary: Path,
    config_path: Path,
    *,
    timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
) -> None:
    """Run ``<binary> validate --config=<path>``; raise ServerError with its output if bad.

    Any collector build works, Jaeger v2 included; ``env`` is added to our environment.
    """
    try:
        done = subprocess.run(
            [str(binary), "validate", f"--config={config_path}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
            text=True,
            env={**os.environ, **env} if env else None,
        )
    except subprocess.TimeoutExpired as exc:
        raise ServerError(f"{binary.name} validate did not finish within {timeout:.0f}s") from exc
    if done.returncode != 0:
        raise ServerError(f"{binary.name} rejected {config_path}:\n{done.stdout.strip()}")


def collector_config(
    *,
    jaeger_otlp_endpoint: str,
    otlp_grpc_port: int,
    otlp_http_port: int,
    health_port: int,
    prometheus_port: int,
    telemetry_port: int,
    logs_path: Path,
) -> dict[str, Any]:
    """The collector config for the given ports, as a dict (JSON, hence YAML, when dumped)."""
    pipeline_processors = ["memory_limiter", "batch"]
    return {
        "extensions": {"health_check": {"endpoint": f"127.0.0.1:{health_port}"}},
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": f"127.0.0.1:{otlp_grpc_port}"},
                    "http": {"endpoint": f"127.0.0.1:{otlp_http_port}"},
                }
            }
        },
        "processors": {
            "memory_limiter": {"check_interval": "1s", "limit_mib": 512, "spike_limit_mib": 128},
            "batch": {"timeout": "200ms"},
        },
        "exporters": {
            "otlp_grpc/jaeger": {"endpoint": jaeger_otlp_endpoint, "tls": {"insecure": True}},
            "prometheus": {
                "endpoint": f"127.0.0.1:{prometheus_port}",
                "enable_open_metrics": True,  # exemplars (as collector/otelcol-config.yaml)
            },
            "file/logs": {"path": str(logs_path), "format": "json", "flush_interval": "100ms"},
            "debug": {"verbosity": "basic"},
        },
        "service": {
            "extensions": ["health_check"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": pipeline_processors,
                    "exporters": ["otlp_grpc/jaeger"],
                },
                "metrics": {
                    "receivers": ["otlp"],
                    "processors": pipeline_processors,
                    "exporters": ["prometheus"],
                },
                "logs": {
                    "receivers": ["otlp"],
                    "processors": pipeline_processors,
                    "exporters": ["file/logs", "debug"],
                },
            },
            "telemetry": {
                "logs": {"level": "info"},
                "metrics": {
                    "level": "basic",
                    "readers": [
                        {
                            "pull": {
                                "exporter": {
                                    "prometheus": {"host": "127.0.0.1", "port": telemetry_port}
                                }
                            }
                        }
                    ],
                },
            },
        },
    }


def shipped_config_env(
    *,
    jaeger_otlp_endpoint: str,
    otlp_grpc_port: int,
    otlp_http_port: int,
    health_port: int,
    prometheus_port: int,
    telemetry_port: int,
    logs_path: Path,
) -> dict[str, str]:
    """The environment that binds ``collector/otelcol-config.yaml``'s endpoints to 127.0.0.1."""
    return {
        "OTLP_GRPC_ENDPOINT": f"127.0.0.1:{otlp_grpc_port}",
        "OTLP_HTTP_ENDPOINT": f"127.0.0.1:{otlp_http_port}",
        "JAEGER_OTLP_ENDPOINT": jaeger_otlp_endpoint,
        "JAEGER_OTLP_INSECURE": "true",
        "PROMETHEUS_EXPORTER_ENDPOINT": f"127.0.0.1:{prometheus_port}",
        "HEALTH_CHECK_ENDPOINT": f"127.0.0.1:{health_port}",
        "OTELCOL_TELEMETRY_HOST": "127.0.0.1",
        "OTELCOL_TELEMETRY_PORT": str(telemetry_port),
        "OTELCOL_LOGS_PATH": str(logs_path),
    }


class Collector(Server):
    """A running otelcol-kafkascope process on free 127.0.0.1 ports; stop it with ``stop()``."""

    def __init__(
        self,
        process: ManagedProcess,
        *,
        config_path: Path,
        otlp_grpc_port: int,
        otlp_http_port: int,
        health_port: int,
        prometheus_port: int,
        telemetry_port: int,
        logs_path: Path,
    ) -> None:
        self.process = process
        self.config_path = config_path
        self.otlp_grpc_port = otlp_grpc_port
        self.otlp_http_port = otlp_http_port
        self.health_port = health_port
        self.prometheus_port = prometheus_port
        self.telemetry_port = telemetry_port
        self.logs_path = logs_path

    @classmethod
    def start(
        cls,
        workdir: Path,
        *,
        jaeger_otlp_endpoint: str,
        timeout: float = 60.0,
        binary: Path | None = None,
        config_file: Path | None = None,
    ) -> Collector:
        """Write, validate and run a collector config in ``workdir``; return once it is healthy.

        ``jaeger_otlp_endpoint`` is where traces go over OTLP gRPC without TLS, as ``host:port``
        or ``http://host:port`` (for example ``Jaeger.otlp_grpc_endpoint``). ``binary`` defaults
        to the cached build of scripts/build_collector.sh (built first if missing). With
        ``config_file`` (such as :data:`SHIPPED_CONFIG`) the collector runs that file instead,
        with the environment of :func:`shipped_config_env` choosing the ports.
        """
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        exe = binary if binary is not None else collector_binary()
        grpc_port, http_port, health_port, prom_port, telemetry_port = free_ports(5)
        logs_path = workdir / "collector-logs.jsonl"
        ports = {
            "otlp_grpc_port": grpc_port,
            "otlp_http_port": http_port,
            "health_port": health_port,
            "prometheus_port": prom_port,
            "telemetry_port": telemetry_port,
        }
        env: dict[str, str] = {}
        if config_file is None:
            config = collector_config(
                jaeger_otlp_endpoint=jaeger_otlp_endpoint, logs_path=logs_path, **ports
            )
            config_path = write_config(workdir / "otelcol-config.yaml", config)
        else:
            config_path = Path(config_file).resolve()
            env = shipped_config_env(
                jaeger_otlp_endpoint=jaeger_otlp_endpoint, logs_path=logs_path, **ports
            )
        validate_config(exe, config_path, timeout=timeout, env=env)
        process = ManagedProcess(
            "otel-collector",
            [str(exe), f"--config={config_path}"],
            log_path=workdir / "collector.log",
            env=env,
            cwd=workdir,
        )
        collector = cls(
            process,
            config_path=config_path,
            otlp_grpc_port=grpc_port,
            otlp_http_port=http_port,
            health_port=health_port,
            prometheus_port=prom_port,
            telemetry_port=telemetry_port,
            logs_path=logs_path,
        )
        process.wait_until(collector.ready, timeout=timeout, what="healthy")
        return collector

    @property
    def otlp_grpc_endpoint(self) -> str:
        """OTLP gRPC endpoint for an SDK exporter (``http://`` means no TLS)."""
        return f"http://127.0.0.1:{self.otlp_grpc_port}"

    @property
    def otlp_http_endpoint(self) -> str:
        """OTLP HTTP base endpoint; signals go to ``/v1/traces``, ``/v1/metrics``, ``/v1/logs``."""
        return f"http://127.0.0.1:{self.otlp_http_port}"

    @property
    def prometheus_metrics_url(self) -> str:
        """The Prometheus exporter's scrape URL."""
        return f"http://127.0.0.1:{self.prometheus_port}/metrics"

    @property
    def health_url(self) -> str:
        """The health_check extension's URL: 200 once the collector is up."""
        return f"http://127.0.0.1:{self.health_port}/"

    @property
    def telemetry_metrics_url(self) -> str:
        """The collector's own metrics (otelcol_*), in Prometheus text format."""
        return f"http://127.0.0.1:{self.telemetry_port}/metrics"

    def ready(self) -> bool:
        """Whether the health check answers 200 and both OTLP ports accept connections."""
        status, _ = http_get(self.health_url, timeout=1.0)
        return status == 200 and port_open(self.otlp_grpc_port) and port_open(self.otlp_http_port)

    def scrape(self, *, timeout: float = 5.0) -> str:
        """The Prometheus exporter's current exposition text."""
        status, body = http_get(self.prometheus_metrics_url, timeout=timeout)
        if status != 200:
            raise ServerError(f"GET {self.prometheus_metrics_url} answered {status}")
        return body.decode("utf-8", errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        """Every OTLP log record the file exporter has written so far (JSON, OTLP field names).

        Each record gets ``"resource"`` (the resource's attributes as written) added to it.
        """
        records: list[dict[str, Any]] = []
        try:
            lines = self.logs_path.read_text().splitlines()
        except FileNotFoundError:
            return records
        for line in lines:
            if not line.strip():
                continue
            try:
                request = json.loads(line)
            except json.JSONDecodeError:  # a line being written right now
                continue
            for resource_logs in request.get("resourceLogs", []):
                resource = resource_logs.get("resource", {})
                for scope_logs in resource_logs.get("scopeLogs", []):
                    for record in scope_logs.get("logRecords", []):
                        records.append({**record, "resource": resource})
        return records
