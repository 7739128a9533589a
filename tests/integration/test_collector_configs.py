"""The files in collector/, checked by the tools that will read them.

- prometheus.yml and alerts.yaml: ``promtool check config``, ``check rules``, ``test rules``;
- otelcol-config.yaml and jaeger-config.yaml: ``validate`` of the Collector and Jaeger builds
  (devstack), whose ``print-config`` also serves as their YAML parser here;
- docker-compose.yaml: structure and ports against the configs (needs PyYAML: skipped without);
- grafana-dashboard.json: panels, and PromQL naming only metrics kafkascope emits, each query
  accepted by a real Prometheus;
- the metric names themselves: kafkascope's instruments through otelcol-config.yaml, scraped.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from devstack import collector as devstack_collector
from devstack import jaeger as devstack_jaeger
from devstack._process import free_port
from devstack.collector import Collector, collector_binary, validate_config
from devstack.jaeger import jaeger_binary
from devstack.prometheus import Prometheus
from devstack.wait import wait_until
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from kafkascope import process_span
from kafkascope.testing import make_record, pipeline_stamp

pytestmark = pytest.mark.integration

COLLECTOR_DIR = Path(__file__).resolve().parents[2] / "collector"
PROMETHEUS_YML = COLLECTOR_DIR / "prometheus.yml"
ALERTS = COLLECTOR_DIR / "alerts.yaml"
ALERTS_TEST = COLLECTOR_DIR / "alerts.test.yaml"
COMPOSE = COLLECTOR_DIR / "docker-compose.yaml"
DASHBOARD = COLLECTOR_DIR / "grafana-dashboard.json"

# kafkascope's instruments as the Collector's prometheus exporter names them (the
# docs' metrics reference, generated from the code).
KAFKASCOPE_METRICS = frozenset(
    {
        *(
            f"{histogram}_{suffix}"
            for histogram in (
                "messaging_process_duration_seconds",
                "messaging_client_operation_duration_seconds",
                "kafkascope_message_time_in_queue_seconds",
                "kafkascope_pipeline_latency_seconds",
            )
            for suffix in ("bucket", "sum", "count")
        ),
        "messaging_client_consumed_messages_total",
        "messaging_client_sent_messages_total",
        "kafkascope_consumer_lag",
        "kafkascope_consumer_time_lag_seconds",
        "kafkascope_messages_poison_total",
        "kafkascope_consumer_rebalances_total",
        "kafkascope_consumer_assigned_partitions",
        # the clients' own statistics, as test_client_statistics_prometheus.py reads them
        "kafkascope_client_broker_rtt_seconds",
        "kafkascope_client_request_retries_total",
        "kafkascope_client_request_timeouts_total",
        "kafkascope_client_producer_queue_usage_ratio",
    }
)
# Their attributes as labels, plus what the exporter and Prometheus add.
KAFKASCOPE_LABELS = frozenset(
    {
        "job",
        "instance",
        "le",
        "messaging_system",
        "messaging_operation_name",
        "messaging_operation_type",
        "messaging_destination_name",
        "messaging_consumer_group_name",
        "messaging_destination_partition_id",
        "error_type",
        "server_address",
        "server_port",
        "kafkascope_message_timestamp_type",
        "kafkascope_pipeline_origin",
        "kafkascope_rebalance_type",
        "messaging_client_id",
    }
)


# ---------------------------------------------------------------- promtool


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool") or (
        "/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None
    )
    if found is None:
        pytest.fail(
            "promtool is missing: it comes with Debian's prometheus package "
            "(bash scripts/install_prometheus.sh, or apt-get install prometheus)",
            pytrace=False,
        )
    return found


def run_tool(*argv: str | Path, timeout: float = 60.0) -> str:
    done = subprocess.run(
        [str(arg) for arg in argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
        text=True,
        cwd=COLLECTOR_DIR,
    )
    assert done.returncode == 0, f"{' '.join(map(str, argv))} failed:\n{done.stdout}"
    return done.stdout


def test_prometheus_config_and_its_rule_files_are_valid(promtool: str) -> None:
    out = run_tool(promtool, "check", "config", PROMETHEUS_YML)
    assert "1 rule files found" in out


def test_alert_rules_are_valid(promtool: str) -> None:
    out = run_tool(promtool, "check", "rules", ALERTS)
    assert "SUCCESS: 13 rules found" in out


def test_alert_rules_fire_and_stay_silent_as_their_tests_say(promtool: str) -> None:
    out = run_tool(promtool, "test", "rules", ALERTS_TEST)
    assert "SUCCESS" in out


def test_alert_rules_and_their_tests_name_only_kafkascope_metrics() -> None:
    for path in (ALERTS, ALERTS_TEST):
        names = set(re.findall(r"\b(?:messaging|kafkascope)_[a-z_]+\b", path.read_text()))
        labels = {"messaging_consumer_group_name", "messaging_destination_name"}
        labels |= {"messaging_destination_partition_id", "kafkascope_message_timestamp_type"}
        labels |= {"messaging_client_id", "messaging_system"}
        assert names - labels, f"{path.name}: no metric found"
        assert names - labels <= KAFKASCOPE_METRICS, path.name


def test_every_alert_is_tested_firing_and_silent() -> None:
    alerts = set(re.findall(r"^\s+- alert: (\w+)$", ALERTS.read_text(), re.MULTILINE))
    tests = ALERTS_TEST.read_text()
    silent = set(re.findall(r"alertname: (\w+)\n\s+exp_alerts: \[\]", tests))
    firing = set(re.findall(r"alertname: (\w+)\n\s+exp_alerts:\n", tests))
    assert len(alerts) == 13
    assert alerts == silent == firing


# ---------------------------------------------------------------- Collector and Jaeger configs


def print_config(binary: Path, config: Path) -> dict[str, Any]:
    """The config as the binary resolves it (environment defaults filled in), as JSON."""
    out = subprocess.run(
        [str(binary), "print-config", f"--config={config}", "--format=json", "--mode=unredacted"],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=True,
        text=True,
    ).stdout
    resolved: dict[str, Any] = json.loads(out)
    return resolved


@pytest.fixture(scope="module")
def otelcol_config() -> dict[str, Any]:
    return print_config(collector_binary(), devstack_collector.SHIPPED_CONFIG)


@pytest.fixture(scope="module")
def jaeger_config() -> dict[str, Any]:
    return print_config(jaeger_binary(), devstack_jaeger.SHIPPED_CONFIG)


def port_of(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


def test_otelcol_config_is_valid_for_the_collector_build() -> None:
    validate_config(collector_binary(), devstack_collector.SHIPPED_CONFIG)


def test_jaeger_config_is_valid_for_the_jaeger_build() -> None:
    validate_config(jaeger_binary(), devstack_jaeger.SHIPPED_CONFIG)


def test_otelcol_pipelines_are_the_documented_ones(otelcol_config: dict[str, Any]) -> None:
    pipelines = otelcol_config["service"]["pipelines"]
    for pipeline in pipelines.values():
        assert pipeline["receivers"] == ["otlp"]
        assert pipeline["processors"] == ["memory_limiter", "batch"]
    assert pipelines["traces"]["exporters"] == ["otlp_grpc/jaeger"]
    assert pipelines["metrics"]["exporters"] == ["prometheus"]
    assert pipelines["logs"]["exporters"] == ["file/logs", "debug"]
    assert otelcol_config["exporters"]["file/logs"]["format"] == "json"
    assert otelcol_config["service"]["extensions"] == ["health_check"]


def test_collector_sends_traces_to_jaegers_otlp_port(
    otelcol_config: dict[str, Any], jaeger_config: dict[str, Any]
) -> None:
    jaeger_endpoint = otelcol_config["exporters"]["otlp_grpc/jaeger"]["endpoint"]
    jaeger_grpc = jaeger_config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    assert jaeger_endpoint == f"jaeger:{port_of(jaeger_grpc)}"


def test_prometheus_scrapes_the_collectors_exporter_honouring_its_labels(
    otelcol_config: dict[str, Any],
) -> None:
    text = PROMETHEUS_YML.read_text()
    exporter_port = port_of(otelcol_config["exporters"]["prometheus"]["endpoint"])
    job = re.search(
        r"- job_name: otel-collector\n\s+honor_labels: true\n\s+static_configs:\n"
        r'\s+- targets: \["collector:(\d+)"\]',
        text,
    )
    assert job is not None, "job otel-collector with honor_labels: true not found"
    assert int(job.group(1)) == exporter_port


# ---------------------------------------------------------------- docker-compose.yaml


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (dev extras)")
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def container_ports(service: dict[str, Any]) -> set[int]:
    return {int(str(mapping).rsplit(":", 1)[1].split("/")[0]) for mapping in service["ports"]}


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of the service's bind mounts of files in collector/."""
    found = {}
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith("."):
            found[target] = source
    return found


def test_compose_file_parses_with_the_collectors_yaml_reader() -> None:
    """Without PyYAML, the Collector's config loader at least parses the file as YAML."""
    done = subprocess.run(
        [str(collector_binary()), "validate", f"--config={COMPOSE}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=60,
        check=False,
        text=True,
    )
    # Parsed: the loader complains about the keys, not about the YAML.
    assert "has invalid keys: name, services, volumes" in done.stdout, done.stdout


def test_compose_services_have_pinned_images(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"kafka", "collector", "jaeger", "prometheus"}
    for name, service in services.items():
        image = service["image"]
        assert ":" in image, name
        assert not image.endswith(":latest"), name


def test_compose_mounts_exist_in_collector_dir(compose: dict[str, Any]) -> None:
    configured = set()
    for name, service in compose["services"].items():
        for target, source in mounts(service).items():
            assert (COLLECTOR_DIR / source).is_file(), f"{name}: {source} -> {target}"
        for arg in service.get("command", []):
            match = re.match(r"--config(?:\.file)?=(/etc/\S+)", str(arg))
            if match:
                assert match.group(1) in mounts(service), f"{name}: {arg} is not mounted"
                configured.add(name)
    assert configured == {"collector", "jaeger", "prometheus"}


def test_compose_mounts_the_files_the_configs_name(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert mounts(services["collector"])["/etc/otelcol-contrib/config.yaml"] == (
        "./otelcol-config.yaml"
    )
    assert mounts(services["jaeger"])["/etc/jaeger/config.yaml"] == "./jaeger-config.yaml"
    prometheus = mounts(services["prometheus"])
    assert prometheus["/etc/prometheus/prometheus.yml"] == "./prometheus.yml"
    # rule_files are relative to prometheus.yml, in the container as here
    assert prometheus["/etc/prometheus/alerts.yaml"] == "./alerts.yaml"
    assert "  - alerts.yaml\n" in PROMETHEUS_YML.read_text()


def test_compose_ports_match_the_configs(
    compose: dict[str, Any], otelcol_config: dict[str, Any], jaeger_config: dict[str, Any]
) -> None:
    services = compose["services"]
    otlp = otelcol_config["receivers"]["otlp"]["protocols"]
    collector_ports = {
        port_of(otlp["grpc"]["endpoint"]),
        port_of(otlp["http"]["endpoint"]),
        port_of(otelcol_config["exporters"]["prometheus"]["endpoint"]),
        port_of(otelcol_config["extensions"]["health_check"]["endpoint"]),
    }
    assert collector_ports == {4317, 4318, 8889, 13133}
    assert collector_ports <= container_ports(services["collector"])
    query = jaeger_config["extensions"]["jaeger_query"]
    jaeger_ports = {
        port_of(query["http"]["endpoint"]),
        port_of(query["grpc"]["endpoint"]),
        port_of(jaeger_config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]),
    }
    assert jaeger_ports == {16686, 16685, 14317}
    assert jaeger_ports <= container_ports(services["jaeger"])
    assert container_ports(services["prometheus"]) == {9090}
    assert 9092 in container_ports(services["kafka"])
    environment = services["collector"]["environment"]
    assert (
        environment["JAEGER_OTLP_ENDPOINT"]
        == otelcol_config["exporters"]["otlp_grpc/jaeger"]["endpoint"]
    )
    for mapping in (m for s in services.values() for m in s["ports"]):
        assert str(mapping).startswith("127.0.0.1:"), mapping


# ---------------------------------------------------------------- Grafana dashboard

_PROMQL_WORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless"}
    | {"bool", "offset", "inf", "nan"}
)


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def queries() -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and query variable of the dashboard."""
    found = [
        (f"panel {panel['title']!r} {target['refId']}", target["expr"])
        for panel in dashboard()["panels"]
        for target in panel.get("targets", ())
    ]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            inner = re.fullmatch(r"label_values\((.+), \w+\)", variable["query"]["query"])
            assert inner is not None, variable["name"]
            found.append((f"variable {variable['name']}", inner.group(1)))
    return found


def metric_and_label_names(expr: str) -> tuple[set[str], set[str]]:
    labels: set[str] = set()
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\$\w+", "", text)  # Grafana variables
    for matchers in re.findall(r"\{([^}]*)\}", text):
        labels |= set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers))
    text = re.sub(r"\{[^}]*\}", " ", text)
    for grouping in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", text):
        labels |= {name.strip() for name in grouping.split(",") if name.strip()}
    text = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range selectors
    identifiers = re.findall(r"\b[A-Za-z_:][A-Za-z0-9_:]*\b(?!\s*\()", text)
    functions = set(re.findall(r"([A-Za-z_]\w*)\s*\(", text))
    metrics = {
        name for name in identifiers if name not in functions and name.lower() not in _PROMQL_WORDS
    }
    return metrics, labels


def test_dashboard_is_grafana_json_with_the_panels_we_promise() -> None:
    board = dashboard()
    assert board["uid"] == "kafkascope-consumers"
    titles = " | ".join(panel["title"].lower() for panel in board["panels"])
    for topic in (
        "throughput",
        "error rate",
        "p95",
        "p99",
        "time in queue",
        "lag",
        "time lag",
        "end-to-end",
        "round-trip time",
        "retries and timeouts",
        "producer queue",
    ):
        assert topic in titles, topic
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    rows = [panel["title"] for panel in board["panels"] if panel["type"] == "row"]
    assert rows == ["Client statistics (the Kafka clients' own view)"]
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"], panel["title"]


def test_dashboard_queries_name_only_metrics_and_labels_kafkascope_emits() -> None:
    used: set[str] = set()
    for where, expr in queries():
        metrics, labels = metric_and_label_names(expr)
        assert metrics, f"{where}: no metric in {expr}"
        assert metrics <= KAFKASCOPE_METRICS, f"{where}: {sorted(metrics - KAFKASCOPE_METRICS)}"
        assert labels <= KAFKASCOPE_LABELS, f"{where}: {sorted(labels - KAFKASCOPE_LABELS)}"
        used |= metrics
    assert used >= KAFKASCOPE_METRICS - {
        f"{h}_{s}"
        for h in (
            "messaging_process_duration_seconds",
            "messaging_client_operation_duration_seconds",
            "kafkascope_message_time_in_queue_seconds",
            "kafkascope_pipeline_latency_seconds",
        )
        for s in ("sum", "count")
    }


def test_metric_name_check_catches_a_foreign_name() -> None:
    metrics, labels = metric_and_label_names(
        'sum by (topic) (rate(kafka_consumergroup_lag{job=~"$job"}[$__rate_interval]))'
    )
    assert metrics == {"kafka_consumergroup_lag"}
    assert labels == {"topic", "job"}


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    server = Prometheus.start(
        tmp_path_factory.mktemp("prometheus"), [("nothing", f"127.0.0.1:{free_port()}")]
    )
    try:
        yield server
    finally:
        server.stop()


def test_dashboard_queries_are_accepted_by_prometheus(prometheus: Prometheus) -> None:
    found = queries()
    assert len(found) >= len(dashboard()["panels"]) > 0  # each panel has a query at least
    for where, expr in found:
        promql = expr.replace("$__rate_interval", "1m")
        promql = re.sub(r"\$\{?\w+\}?", ".*", promql)
        url = f"{prometheus.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as err:
            pytest.fail(f"{where}: Prometheus rejected {promql}: {err.read()!r}")
        assert answer["status"] == "success", where


# ---------------------------------------------------------------- the names, for real


def test_collector_exposes_kafkascope_metrics_under_the_listed_names(tmp_path: Path) -> None:
    """process_span's metrics through otelcol-config.yaml, scraped from the exporter."""
    with Collector.start(
        tmp_path,
        jaeger_otlp_endpoint=f"127.0.0.1:{free_port()}",  # no traces are sent
        config_file=devstack_collector.SHIPPED_CONFIG,
    ) as collector:
        exporter = OTLPMetricExporter(endpoint=collector.otlp_grpc_endpoint, insecure=True)
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=60_000)
        provider = MeterProvider(
            resource=Resource.create({"service.name": "billing"}), metric_readers=[reader]
        )
        now = time.time() * 1000
        record = make_record(
            "orders", b"{}", timestamp=int(now) - 30, headers=[pipeline_stamp(now - 2000, "cart")]
        )
        tracer = TracerProvider().get_tracer("test")
        try:
            with (
                tracer.start_as_current_span("poll") as poll,
                process_span(record, group="billing", meter_provider=provider),
            ):
                pass
            provider.force_flush()

            def scraped() -> tuple[set[str], str] | None:
                text = collector.scrape()
                found = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{", text, re.MULTILINE))
                return (
                    (found, text) if "messaging_process_duration_seconds_bucket" in found else None
                )

            names, text = wait_until(
                scraped, 15, "the process duration on the Collector's scrape", interval=0.2
            )
            # Asked for OpenMetrics (as Prometheus asks), the exporter adds the exemplars: the
            # pipeline latency's carries the trace of the process span it was recorded in. Only
            # until the next export replaces the point: the SDK sends each exemplar once (so the
            # provider is shut down, exporting again, only after this read).
            request = urllib.request.Request(
                collector.prometheus_metrics_url,
                headers={"Accept": "application/openmetrics-text;version=1.0.0"},
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                openmetrics = response.read().decode()
        finally:
            provider.shutdown()
    trace_id = format(poll.get_span_context().trace_id, "032x")
    (exemplar,) = re.findall(
        r"^kafkascope_pipeline_latency_seconds_bucket\{.*\} \d+ # \{(.*)\} ([0-9.e+-]+)",
        openmetrics,
        re.MULTILINE,
    )
    assert f'trace_id="{trace_id}"' in exemplar[0]
    assert 2.0 <= float(exemplar[1]) < 10.0
    ours = {name for name in names if name != "target_info"}
    assert ours == {
        "messaging_process_duration_seconds_bucket",
        "messaging_process_duration_seconds_sum",
        "messaging_process_duration_seconds_count",
        "messaging_client_consumed_messages_total",
        "kafkascope_message_time_in_queue_seconds_bucket",
        "kafkascope_message_time_in_queue_seconds_sum",
        "kafkascope_message_time_in_queue_seconds_count",
        "kafkascope_pipeline_latency_seconds_bucket",
        "kafkascope_pipeline_latency_seconds_sum",
        "kafkascope_pipeline_latency_seconds_count",
    }
    assert ours <= KAFKASCOPE_METRICS
    assert re.search(r'\bjob="billing"', text)
