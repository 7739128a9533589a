"""The agent -> gateway Collector tier of ``collector/gateway/``, on 127.0.0.1 free ports.

:meth:`GatewayTier.start` runs gateway Collectors with ``collector/gateway/gateway.yaml`` (tail
sampling, traces to Jaeger) and agent Collectors with ``collector/gateway/agent.yaml`` (traces
routed by trace ID to the gateways, metrics exposed for Prometheus), all from the same
otelcol-kafkascope binary, their endpoints chosen through the environment variables the files
read. Each process is validated first, waited for by its health check and stopped by its PID.
"""

from __future__ import annotations

import re
from pathlib import Path

from devstack._process import ManagedProcess, Server, ServerError, port_open
from devstack._support import REPO_ROOT, free_ports, http_get
from devstack.collector import collector_binary, validate_config

GATEWAY_DIR = REPO_ROOT / "collector" / "gateway"
AGENT_CONFIG = GATEWAY_DIR / "agent.yaml"
GATEWAY_CONFIG = GATEWAY_DIR / "gateway.yaml"

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?P<labels>\{[^}]*\})?\s+(?P<value>\S+)")


def metric_samples(text: str, name: str, **labels: str) -> list[float]:
    """The values of the samples called ``name`` in a Prometheus text exposition whose labels
    include ``labels``."""
    values = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None or match["name"] != name:
            continue
        label_text = match["labels"] or ""
        if all(f'{key}="{value}"' in label_text for key, value in labels.items()):
            values.append(float(match["value"]))
    return values


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels`` (0 if none)."""
    return sum(metric_samples(text, name, **labels))


class Node(Server):
    """One running Collector of the tier (an agent or a gateway)."""

    def __init__(
        self,
        role: str,
        process: ManagedProcess,
        *,
        otlp_grpc_port: int,
        otlp_http_port: int | None,
        health_port: int,
        telemetry_port: int,
        prometheus_port: int | None,
        logs_path: Path | None,
    ) -> None:
        self.role = role
        self.process = process
        self.otlp_grpc_port = otlp_grpc_port
        self.otlp_http_port = otlp_http_port
        self.health_port = health_port
        self.telemetry_port = telemetry_port
        self.prometheus_port = prometheus_port
        self.logs_path = logs_path

    @property
    def otlp_grpc_endpoint(self) -> str:
        """OTLP gRPC endpoint for an SDK exporter (``http://`` means no TLS)."""
        return f"http://127.0.0.1:{self.otlp_grpc_port}"

    @property
    def telemetry_metrics_url(self) -> str:
        """The Collector's own metrics (``otelcol_*``)."""
        return f"http://127.0.0.1:{self.telemetry_port}/metrics"

    @property
    def prometheus_metrics_url(self) -> str:
        """An agent's Prometheus exporter: the services' metrics."""
        if self.prometheus_port is None:
            raise ServerError(f"a {self.role} exposes no service metrics")
        return f"http://127.0.0.1:{self.prometheus_port}/metrics"

    def ready(self) -> bool:
        """Whether the health check answers 200 and the OTLP gRPC port accepts."""
        status, _ = http_get(f"http://127.0.0.1:{self.health_port}/", timeout=1.0)
        return status == 200 and port_open(self.otlp_grpc_port)

    def scrape(self, url: str | None = None) -> str:
        """The exposition text at ``url`` (default: the Collector's own metrics)."""
        target = url or self.telemetry_metrics_url
        status, body = http_get(target, timeout=5.0)
        if status != 200:
            raise ServerError(f"GET {target} answered {status}")
        return body.decode("utf-8", errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of this Collector's own log."""
        return self.process.log_tail(lines)


class GatewayTier(Server):
    """Agents and gateways running ``collector/gateway/``'s configs; build with :meth:`start`."""

    def __init__(self, agents: list[Node], gateways: list[Node]) -> None:
        self.agents = agents
        self.gateways = gateways

    @classmethod
    def start(
        cls,
        workdir: Path,
        *,
        jaeger_otlp_endpoint: str,
        agents: int = 1,
        sampling_percentage: float = 10,
        latency_threshold_ms: int = 500,
        decision_wait: str = "10s",
        timeout: float = 60.0,
        binary: Path | None = None,
    ) -> GatewayTier:
        """Start two gateways, then ``agents`` agents; return once every one is healthy.

        ``agent.yaml`` names two gateways, so the tier has two. On failure, whatever started is
        stopped again.
        """
        workdir = Path(workdir).resolve()
        exe = binary if binary is not None else collector_binary()
        tier = cls([], [])
        try:
            for index in (1, 2):
                grpc, health, telemetry = free_ports(3)
                env = {
                    "OTLP_GRPC_ENDPOINT": f"127.0.0.1:{grpc}",
                    "JAEGER_OTLP_ENDPOINT": jaeger_otlp_endpoint,
                    "JAEGER_OTLP_INSECURE": "true",
                    "TAIL_SAMPLING_PERCENTAGE": str(sampling_percentage),
                    "TAIL_SAMPLING_LATENCY_THRESHOLD_MS": str(latency_threshold_ms),
                    "TAIL_SAMPLING_DECISION_WAIT": decision_wait,
                    "HEALTH_CHECK_ENDPOINT": f"127.0.0.1:{health}",
                    "OTELCOL_TELEMETRY_HOST": "127.0.0.1",
                    "OTELCOL_TELEMETRY_PORT": str(telemetry),
                    "OTELCOL_MEMORY_LIMIT_MIB": "512",  # a ceiling, not an allocation
                }
                process = cls._launch(exe, GATEWAY_CONFIG, workdir / f"gateway-{index}", env)
                tier.gateways.append(
                    Node(
                        "gateway",
                        process,
                        otlp_grpc_port=grpc,
                        otlp_http_port=None,
                        health_port=health,
                        telemetry_port=telemetry,
                        prometheus_port=None,
                        logs_path=None,
                    )
                )
            for index in range(1, agents + 1):
                grpc, http, health, telemetry, prom = free_ports(5)
                logs_path = workdir / f"agent-{index}" / "logs.jsonl"
                env = {
                    "OTLP_GRPC_ENDPOINT": f"127.0.0.1:{grpc}",
                    "OTLP_HTTP_ENDPOINT": f"127.0.0.1:{http}",
                    "GATEWAY_1_ENDPOINT": f"127.0.0.1:{tier.gateways[0].otlp_grpc_port}",
                    "GATEWAY_2_ENDPOINT": f"127.0.0.1:{tier.gateways[1].otlp_grpc_port}",
                    "PROMETHEUS_EXPORTER_ENDPOINT": f"127.0.0.1:{prom}",
                    "HEALTH_CHECK_ENDPOINT": f"127.0.0.1:{health}",
                    "OTELCOL_TELEMETRY_HOST": "127.0.0.1",
                    "OTELCOL_TELEMETRY_PORT": str(telemetry),
                    "OTELCOL_LOGS_PATH": str(logs_path),
                    "OTELCOL_MEMORY_LIMIT_MIB": "256",
                }
                process = cls._launch(exe, AGENT_CONFIG, workdir / f"agent-{index}", env)
                tier.agents.append(
                    Node(
                        "agent",
                        process,
                        otlp_grpc_port=grpc,
                        otlp_http_port=http,
                        health_port=health,
                        telemetry_port=telemetry,
                        prometheus_port=prom,
                        logs_path=logs_path,
                    )
                )
            for node in tier.gateways + tier.agents:
                node.process.wait_until(node.ready, timeout=timeout, what="healthy")
        except BaseException:
            tier.stop()
            raise
        return tier

    @staticmethod
    def _launch(exe: Path, config: Path, workdir: Path, env: dict[str, str]) -> ManagedProcess:
        workdir.mkdir(parents=True, exist_ok=True)
        validate_config(exe, config, env=env)
        return ManagedProcess(
            f"otelcol-{workdir.name}",
            [str(exe), f"--config={config}"],
            log_path=workdir / "collector.log",
            env=env,
            cwd=workdir,
        )

    def log_tails(self, lines: int = 30) -> str:
        """Every Collector's log tail, for a failing test's output."""
        parts = []
        for node in self.gateways + self.agents:
            header = f"--- {node.process.name} ({node.process.log_path})"
            parts.append(f"{header}\n{node.log_tail(lines)}")
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop the agents first (they flush to the gateways), then the gateways."""
        for node in self.agents + self.gateways:
            node.stop()
