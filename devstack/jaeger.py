"""Jaeger v2 all-in-one with in-memory storage (built by scripts/build_jaeger.sh).

``Jaeger.start`` writes a Jaeger v2 config (it is a collector build) with every port on a free
127.0.0.1 port: OTLP gRPC and HTTP receivers, the query service's HTTP API and gRPC, the
``healthcheckv2`` extension and Jaeger's own metrics. Built from source, Jaeger has no web UI
(``/`` shows a placeholder page); the HTTP API (``/api/traces/{id}``, ``/api/services``, ...)
works.

``Jaeger.start(workdir, config_file=SHIPPED_CONFIG)`` runs the user-facing
``collector/jaeger-config.yaml`` instead, its endpoints bound to free 127.0.0.1 ports through the
environment variables it reads (:func:`shipped_config_env`).
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

from devstack._process import ManagedProcess, Server, ServerError, port_open
from devstack._support import REPO_ROOT, build_binary, free_ports, get_json, http_get, write_config
from devstack.wait import wait_until

STORAGE = "memstore"
SHIPPED_CONFIG = REPO_ROOT / "collector" / "jaeger-config.yaml"
"""The Jaeger config shipped to users (also used by collector/docker-compose.yaml)."""


def jaeger_binary(*, build_timeout: float | None = None) -> Path:
    """Path of the cached Jaeger binary, building it first if it is not cached yet."""
    return build_binary("build_jaeger.sh", what="jaeger", timeout=build_timeout)


def jaeger_config(
    *,
    otlp_grpc_port: int,
    otlp_http_port: int,
    query_http_port: int,
    query_grpc_port: int,
    health_port: int,
    metrics_port: int,
    max_traces: int = 100_000,
) -> dict[str, Any]:
    """The Jaeger v2 config for the given ports, as a dict (JSON, hence YAML, when dumped)."""
    return {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["batch"],
                    "exporters": ["jaeger_storage_exporter"],
                }
            },
            "telemetry": {
                "resource": {"service.name": "jaeger"},
                "logs": {"level": "info"},
                "metrics": {
                    "level": "basic",
                    "readers": [
                        {
                            "pull": {
                                "exporter": {
                                    "prometheus": {"host": "127.0.0.1", "port": metrics_port}
                                }
                            }
                        }
                    ],
                },
            },
        },
        "extensions": {
            "healthcheckv2": {
                "use_v2": True,
                "http": {"endpoint": f"127.0.0.1:{health_port}"},
            },
            "jaeger_storage": {"backends": {STORAGE: {"memory": {"max_traces": max_traces}}}},
            "jaeger_query": {
                "storage": {"traces": STORAGE},
                # On by default at v1.76.0 (Jaeger v2.13.0): the query service then sends its own
                # spans over OTLP to localhost:4317, i.e. into whatever collector listens there.
                "enable_tracing": False,
                "http": {"endpoint": f"127.0.0.1:{query_http_port}"},
                "grpc": {"endpoint": f"127.0.0.1:{query_grpc_port}"},
            },
        },
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": f"127.0.0.1:{otlp_grpc_port}"},
                    "http": {"endpoint": f"127.0.0.1:{otlp_http_port}"},
                }
            }
        },
        "processors": {"batch": {"timeout": "200ms"}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": STORAGE}},
    }


def shipped_config_env(
    *,
    otlp_grpc_port: int,
    otlp_http_port: int,
    query_http_port: int,
    query_grpc_port: int,
    health_port: int,
    metrics_port: int,
) -> dict[str, str]:
    """The environment that binds ``collector/jaeger-config.yaml``'s endpoints to 127.0.0.1."""
    return {
        "JAEGER_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{otlp_grpc_port}",
        "JAEGER_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{otlp_http_port}",
        "JAEGER_QUERY_HTTP_ENDPOINT": f"127.0.0.1:{query_http_port}",
        "JAEGER_QUERY_GRPC_ENDPOINT": f"127.0.0.1:{query_grpc_port}",
        "JAEGER_HEALTH_ENDPOINT": f"127.0.0.1:{health_port}",
        "JAEGER_METRICS_HOST": "127.0.0.1",
        "JAEGER_METRICS_PORT": str(metrics_port),
    }


class Jaeger(Server):
    """A running Jaeger v2 process on free 127.0.0.1 ports; stop it with ``stop()``."""

    def __init__(
        self,
        process: ManagedProcess,
        *,
        config_path: Path,
        otlp_grpc_port: int,
        otlp_http_port: int,
        query_http_port: int,
        query_grpc_port: int,
        health_port: int,
        metrics_port: int,
    ) -> None:
        self.process = process
        self.config_path = config_path
        self.otlp_grpc_port = otlp_grpc_port
        self.otlp_http_port = otlp_http_port
        self.query_http_port = query_http_port
        self.query_grpc_port = query_grpc_port
        self.health_port = health_port
        self.metrics_port = metrics_port

    @classmethod
    def start(
        cls,
        workdir: Path,
        *,
        timeout: float = 60.0,
        binary: Path | None = None,
        config_file: Path | None = None,
    ) -> Jaeger:
        """Write a config into ``workdir``, run Jaeger, and return once it is ready.

        ``binary`` defaults to the cached build of scripts/build_jaeger.sh (built if missing).
        With ``config_file`` (such as :data:`SHIPPED_CONFIG`) Jaeger runs that file instead, with
        the environment of :func:`shipped_config_env` choosing the ports.
        """
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        exe = binary if binary is not None else jaeger_binary()
        grpc_port, http_port, query_http, query_grpc, health_port, metrics_port = free_ports(6)
        ports = {
            "otlp_grpc_port": grpc_port,
            "otlp_http_port": http_port,
            "query_http_port": query_http,
            "query_grpc_port": query_grpc,
            "health_port": health_port,
            "metrics_port": metrics_port,
        }
        env: dict[str, str] = {}
        if config_file is None:
            config_path = write_config(workdir / "jaeger-config.yaml", jaeger_config(**ports))
        else:
            config_path = Path(config_file).resolve()
            env = shipped_config_env(**ports)
        process = ManagedProcess(
            "jaeger",
            [str(exe), f"--config={config_path}"],
            log_path=workdir / "jaeger.log",
            env=env,
            cwd=workdir,
        )
        jaeger = cls(
            process,
            config_path=config_path,
            otlp_grpc_port=grpc_port,
            otlp_http_port=http_port,
            query_http_port=query_http,
            query_grpc_port=query_grpc,
            health_port=health_port,
            metrics_port=metrics_port,
        )
        process.wait_until(jaeger.ready, timeout=timeout, what="ready")
        return jaeger

    @property
    def otlp_grpc_endpoint(self) -> str:
        """OTLP gRPC endpoint (``http://`` means no TLS), for an SDK or a collector exporter."""
        return f"http://127.0.0.1:{self.otlp_grpc_port}"

    @property
    def otlp_http_endpoint(self) -> str:
        """OTLP HTTP base endpoint; traces go to ``/v1/traces``."""
        return f"http://127.0.0.1:{self.otlp_http_port}"

    @property
    def query_url(self) -> str:
        """Base URL of the query API: ``/api/traces/{id}``, ``/api/services``, ``/api/v3/..``."""
        return f"http://127.0.0.1:{self.query_http_port}"

    @property
    def health_url(self) -> str:
        """The healthcheckv2 status URL: 200 once every component is up."""
        return f"http://127.0.0.1:{self.health_port}/status"

    @property
    def metrics_url(self) -> str:
        """Jaeger's own metrics, in Prometheus text format."""
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def ready(self) -> bool:
        """Whether the health check and the query API answer 200 and OTLP gRPC accepts."""
        status, _ = http_get(self.health_url, timeout=1.0)
        if status != 200:
            return False
        status, _ = http_get(f"{self.query_url}/api/services", timeout=1.0)
        return status == 200 and port_open(self.otlp_grpc_port)

    def get_json(self, path: str, *, timeout: float = 5.0) -> dict[str, Any]:
        """GET ``query_url + path`` and decode the JSON body (also for a 404 answer)."""
        status, decoded = get_json(self.query_url + path, timeout=timeout)
        if not isinstance(decoded, dict):
            raise ServerError(f"GET {path} answered {status} with {decoded!r}")
        return decoded

    def get_trace(self, trace_id_hex: str) -> dict[str, Any]:
        """The trace from ``/api/traces/{id}``: ``{"traceID", "spans": [...], "processes"}``.

        ``trace_id_hex`` is the 32-hex-digit trace id (``format(span_context.trace_id, "032x")``).
        Raises LookupError if Jaeger does not have the trace (yet). The answer's ``traceID`` has
        only 16 digits when the id's high 64 bits are zero: compare as ``int(..., 16)``.
        """
        trace_id = trace_id_hex.lower()
        answer = self.get_json(f"/api/traces/{urllib.parse.quote(trace_id)}")
        data = answer.get("data") or []
        if not data:
            raise LookupError(f"Jaeger has no trace {trace_id}: {answer.get('errors')}")
        trace = data[0]
        if not isinstance(trace, dict):
            raise ServerError(f"unexpected /api/traces answer: {answer!r}")
        return trace

    def wait_for_trace(
        self, trace_id_hex: str, *, min_spans: int = 1, timeout: float = 15.0
    ) -> dict[str, Any]:
        """Poll ``get_trace`` until the trace has ``min_spans`` spans; raise TimeoutError if not."""
        last = "not found"

        def complete() -> dict[str, Any] | None:
            nonlocal last
            try:
                trace = self.get_trace(trace_id_hex)
            except LookupError as exc:
                last = str(exc)
                return None
            spans = trace.get("spans") or []
            if len(spans) >= min_spans:
                return trace
            last = f"{len(spans)} of {min_spans} spans"
            return None

        return wait_until(
            complete, timeout, lambda: f"trace {trace_id_hex} in Jaeger ({last})", interval=0.2
        )
