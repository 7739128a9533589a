"""collector/gateway/: the agent and gateway configs, their Prometheus config and compose file.

- agent.yaml and gateway.yaml: ``otelcol-kafkascope validate`` with their defaults and with
  the environment devstack/gateway.py sets; a bad sampling setting is rejected;
- prometheus.yml: ``promtool check config`` (with collector/alerts.yaml beside it, as the
  compose file mounts it);
- docker-compose.yaml: the topology (two agents, two gateways) and the mounts of these files.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from devstack._process import ServerError
from devstack.collector import validate_config
from devstack.gateway import AGENT_CONFIG, GATEWAY_CONFIG, GATEWAY_DIR

pytestmark = pytest.mark.scale

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (dev extras)")


@pytest.mark.parametrize("config", [AGENT_CONFIG, GATEWAY_CONFIG], ids=["agent", "gateway"])
def test_config_is_valid_with_its_defaults(collector_exe: Path, config: Path) -> None:
    validate_config(collector_exe, config)


def test_gateway_rejects_a_latency_threshold_that_is_not_a_number(collector_exe: Path) -> None:
    with pytest.raises(ServerError, match="threshold_ms"):
        validate_config(
            collector_exe, GATEWAY_CONFIG, env={"TAIL_SAMPLING_LATENCY_THRESHOLD_MS": "fast"}
        )


def test_agent_routes_traces_by_trace_id_and_keeps_metrics_local() -> None:
    agent = yaml.safe_load(AGENT_CONFIG.read_text())
    pipelines = agent["service"]["pipelines"]
    assert pipelines["traces"]["exporters"] == ["loadbalancing"]
    assert agent["exporters"]["loadbalancing"]["routing_key"] == "traceID"
    assert pipelines["metrics"]["exporters"] == ["prometheus"]
    gateway = yaml.safe_load(GATEWAY_CONFIG.read_text())
    assert set(gateway["service"]["pipelines"]) == {"traces"}  # metrics are never sampled
    policies = {p["name"]: p["type"] for p in gateway["processors"]["tail_sampling"]["policies"]}
    assert policies == {"errors": "status_code", "slow": "latency", "share": "probabilistic"}


def test_prometheus_config_is_valid(tmp_path: Path) -> None:
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    if not Path(promtool).exists():
        pytest.skip("promtool is missing: it comes with Debian's prometheus package")
    shutil.copy(GATEWAY_DIR / "prometheus.yml", tmp_path / "prometheus.yml")
    shutil.copy(GATEWAY_DIR.parent / "alerts.yaml", tmp_path / "alerts.yaml")
    done = subprocess.run(
        [promtool, "check", "config", "prometheus.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_file_runs_two_agents_and_two_gateways_on_these_configs() -> None:
    compose: dict[str, Any] = yaml.safe_load((GATEWAY_DIR / "docker-compose.yaml").read_text())
    services = compose["services"]
    assert {"agent-1", "agent-2", "gateway-1", "gateway-2", "jaeger", "prometheus"} <= set(services)
    for name in ("agent-1", "agent-2"):
        assert "./agent.yaml:/etc/otelcol-contrib/agent.yaml:ro" in services[name]["volumes"]
        env = services[name]["environment"]
        assert (env["GATEWAY_1_ENDPOINT"], env["GATEWAY_2_ENDPOINT"]) == (
            "gateway-1:4317",
            "gateway-2:4317",
        )
    for name in ("gateway-1", "gateway-2"):
        assert "./gateway.yaml:/etc/otelcol-contrib/gateway.yaml:ro" in services[name]["volumes"]
    prometheus = yaml.safe_load((GATEWAY_DIR / "prometheus.yml").read_text())
    targets = prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == ["agent-1:8889", "agent-2:8889"]
