"""deploy/prometheus and deploy/grafana: the scrape configuration, the alert rules (and their
unit tests) pass promtool, and every query of the alerts and of the dashboard is valid PromQL
naming only metrics that exist: the gateway's (its registry) and RabbitMQ's (a real RabbitMQ
3.10 with rabbitmq_prometheus, scraped like the configuration does), plus Prometheus's `up`.

promtool comes from PATH, PARLEY_PROMTOOL or var/tools/promtool (`make observability-deps`
puts it there); without it those checks are skipped, saying why."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from contextlib import closing
from pathlib import Path

import pytest
import yaml

from parley_common.private_servers import RABBIT_BIN, PrivateRabbit
from parley_gateway.metrics import Metrics

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "parley.json"
BUILTIN = {"up"}  # what Prometheus itself records for every target

# Metrics the dashboard must draw (issue #16): sockets, messages, RPC latency, event lag,
# broker queue depths, error rate, readiness.
REQUIRED_ON_DASHBOARD = {
    "parley_gateway_ws_connections", "parley_gateway_ws_frames_in_total",
    "parley_gateway_rpc_latency_seconds_bucket", "parley_gateway_event_lag_seconds_bucket",
    "rabbitmq_detailed_queue_messages_ready", "parley_gateway_http_requests_total",
    "parley_gateway_ready", "parley_gateway_ready_check"}


def _promtool() -> str:
    for candidate in (os.environ.get("PARLEY_PROMTOOL"), shutil.which("promtool"),
                      str(ROOT / "var" / "tools" / "promtool")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("no promtool (PATH, PARLEY_PROMTOOL, var/tools/promtool): `make "
                "observability-deps` fetches it from the Prometheus release or Debian's package")


def run_promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> str:
    result = subprocess.run([_promtool(), *args], cwd=cwd, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


# --- PromQL: the metric names an expression reads ---------------------------------------------
_NOT_METRICS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "bool", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, aggregations,
    keywords, label names, numbers or durations, or inside strings, matchers and ranges."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b[0-9][0-9A-Za-z_.]*", "", expr)  # numbers, durations (offset 5m)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        word = match.group()
        if word.lower() in _NOT_METRICS or re.match(r"\s*\(", expr[match.end():]):
            continue
        names.add(word)
    return names


def test_metric_names_are_found_in_promql():
    expr = ('histogram_quantile(0.99, sum by (le, instance) (rate(a_seconds_bucket{x=~"5..", '
            'route="/r/{id}"}[5m]))) / on (instance) group_left (job) b_total offset 5m '
            '> bool 1e3 and absent(up{job="gateway"} == 1) * 0x1f')
    assert metric_names(expr) == {"a_seconds_bucket", "b_total", "up"}


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [target["expr"] for panel in dashboard["panels"]
               for target in panel.get("targets", [])]
    assert queries, "the dashboard has no queries"
    # Grafana's own variables, as Grafana substitutes them
    return [query.replace("$__rate_interval", "5m") for query in queries]


def rule_queries() -> list[str]:
    rules = yaml.safe_load((PROMETHEUS_DIR / "rules.yml").read_text())
    queries = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert queries
    return queries


def gateway_metric_names() -> set[str]:
    """Every sample name the gateway's /metrics can carry (labelled metrics included, before
    they have any child)."""
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
    return {family.name + suffix for family in Metrics().registry.collect()
            for suffix in suffixes[family.type]}


# --- promtool ---------------------------------------------------------------------------------
def test_scrape_configurations_pass_promtool():
    out = run_promtool("check", "config", "prometheus.yml", "prometheus.swarm.yml")
    assert out.count("is valid prometheus config file syntax") == 2, out


def test_alert_rules_pass_promtool_and_their_unit_tests():
    assert "SUCCESS: 9 rules found" in run_promtool("check", "rules", "rules.yml")
    assert "SUCCESS" in run_promtool("test", "rules", "rules.test.yml")


def test_dashboard_queries_are_valid_promql(tmp_path):
    # promtool parses the expressions of recording rules: one rule per dashboard query.
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"parley:dashboard_query_{i}", "expr": query}
        for i, query in enumerate(dashboard_queries())]}]}
    (tmp_path / "dashboard.rules.yml").write_text(yaml.safe_dump(rules))
    out = run_promtool("check", "rules", "dashboard.rules.yml", cwd=tmp_path)
    assert f"SUCCESS: {len(rules['groups'][0]['rules'])} rules found" in out, out


# --- the configuration's shape ----------------------------------------------------------------
def _config(name: str) -> dict:
    return yaml.safe_load((PROMETHEUS_DIR / name).read_text())


def test_every_gateway_replica_is_found_by_dns_in_compose_and_swarm():
    compose, swarm = _config("prometheus.yml"), _config("prometheus.swarm.yml")
    jobs = {job["job_name"]: job for job in compose["scrape_configs"]}
    gateway = jobs["gateway"]["dns_sd_configs"]
    assert gateway == [{"names": ["gateway"], "type": "A", "port": 8080, "refresh_interval": "15s"}]
    assert jobs["rabbitmq"]["dns_sd_configs"][0]["names"] == ["rabbitmq"]
    # The swarm file is the compose file with swarm's per-task names, nothing else.
    for job in swarm["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            assert all(name.startswith("tasks.") for name in sd["names"]), job
            sd["names"] = [name.removeprefix("tasks.") for name in sd["names"]]
    assert swarm == compose


def test_dashboard_json_has_the_console_panels():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    panel_ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(panel_ids) == len(set(panel_ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}, panel["title"]
    used = set().union(*(metric_names(query) for query in dashboard_queries()))
    assert REQUIRED_ON_DASHBOARD <= used, REQUIRED_ON_DASHBOARD - used


# --- every query names a metric that exists ---------------------------------------------------
def _free_port_pair() -> int:
    """A port p with p and p + 1 free (PrivateRabbit: AMQP on p, Erlang distribution p + 1)."""
    for _ in range(50):
        with closing(socket.socket()) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        try:
            with closing(socket.socket()) as a, closing(socket.socket()) as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no pair of free ports")


def _free_port() -> int:
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RabbitWithExporter(PrivateRabbit):
    """A private RabbitMQ with rabbitmq_prometheus on ``metrics_port``."""

    def __init__(self, directory: Path, port: int, metrics_port: int) -> None:
        super().__init__(directory, port, node=f"parley-obs-{uuid.uuid4().hex[:8]}")
        (directory / "enabled_plugins").write_text("[rabbitmq_prometheus].\n")
        with open(directory / "rabbitmq.conf", "a") as conf:
            conf.write(f"prometheus.tcp.port = {metrics_port}\nprometheus.tcp.ip = 127.0.0.1\n")

    def env(self) -> dict:
        return {**super().env(), "RABBITMQ_ENABLED_PLUGINS": "rabbitmq_prometheus"}


@pytest.fixture(scope="module")
def rabbitmq_metric_names(tmp_path_factory) -> set[str]:
    """Names RabbitMQ 3.10's rabbitmq_prometheus serves on the path and parameters the
    rabbitmq job of prometheus.yml scrapes (deploy/rabbitmq-init.sh enables the plugin)."""
    if not (RABBIT_BIN / "rabbitmq-server").exists():
        pytest.skip(f"no rabbitmq-server in {RABBIT_BIN} (PARLEY_RABBITMQ_BIN)")
    job = next(job for job in _config("prometheus.yml")["scrape_configs"]
               if job["job_name"] == "rabbitmq")
    metrics_port = _free_port()
    rabbit = RabbitWithExporter(tmp_path_factory.mktemp("rabbit"), _free_port_pair(), metrics_port)
    query = urllib.parse.urlencode(job["params"], doseq=True)
    url = f"http://127.0.0.1:{metrics_port}{job['metrics_path']}?{query}"
    try:
        rabbit.start()
        deadline = time.monotonic() + 60
        while True:  # the plugin's listener opens a moment after AMQP's
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    text = response.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
    finally:
        rabbit.stop()
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def test_every_query_names_a_metric_that_exists(rabbitmq_metric_names):
    known = gateway_metric_names() | rabbitmq_metric_names | BUILTIN
    assert "rabbitmq_detailed_queue_messages_ready" in rabbitmq_metric_names
    for source, queries in (("dashboard", dashboard_queries()), ("rules.yml", rule_queries())):
        for query in queries:
            names = metric_names(query)
            assert names, (source, query)
            assert names <= known, f"{source}: {query} reads unknown {names - known}"


def test_label_values_the_queries_match_exist():
    """A typo in a matcher's value selects nothing, silently: the routes and frame types the
    dashboard and the alerts pick must be the gateway's."""
    from parley_gateway.app import ENDPOINTS
    from parley_gateway.ws import CLIENT_FRAME_TYPES

    routes = {endpoint.path for endpoint in ENDPOINTS}
    queries = dashboard_queries() + rule_queries()
    picked_routes = {route for query in queries for route in re.findall(r'route="([^"]+)"', query)}
    assert picked_routes and picked_routes <= routes, picked_routes - routes
    frames_in = {frame for query in queries
                 for frame in re.findall(r'ws_frames_in_total\{type="([^"]+)"', query)}
    assert frames_in and frames_in <= CLIENT_FRAME_TYPES, frames_in - CLIENT_FRAME_TYPES


def _host_path(volumes: list[str], container_path: str) -> Path:
    """The file under ROOT that a compose bind mount (``./host:/container[:ro]``) puts at
    ``container_path``."""
    for volume in volumes:
        host, target = volume.split(":")[:2]
        if host.startswith("./") and (container_path + "/").startswith(target.rstrip("/") + "/"):
            return ROOT / host / container_path[len(target):].lstrip("/")
    raise AssertionError(f"nothing mounted at {container_path}")


def test_compose_and_swarm_files_mount_what_they_name():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    prometheus, grafana = compose["prometheus"], compose["grafana"]
    assert prometheus["profiles"] == ["observability"] and grafana["profiles"] == ["grafana"]
    config = next(arg for arg in prometheus["command"] if arg.startswith("--config.file="))
    assert _host_path(prometheus["volumes"], config.split("=", 1)[1]) == \
        PROMETHEUS_DIR / "prometheus.yml"
    provisioning = _host_path(grafana["volumes"], grafana["environment"]["GF_PATHS_PROVISIONING"])
    provider = yaml.safe_load((provisioning / "dashboards" / "parley.yml").read_text())
    dashboards = _host_path(grafana["volumes"], provider["providers"][0]["options"]["path"])
    assert dashboards / DASHBOARD.name == DASHBOARD
    assert "prometheus:9090" in (provisioning / "datasources" / "prometheus.yml").read_text()

    stack = yaml.safe_load((ROOT / "deploy" / "stack.observability.yml").read_text())
    service = stack["services"]["prometheus"]
    config = next(arg for arg in service["command"] if arg.startswith("--config.file="))
    mounted = {entry["target"]: ROOT / "deploy" / stack["configs"][entry["source"]]["file"]
               for entry in service["configs"]}
    assert mounted[config.split("=", 1)[1]].resolve() == PROMETHEUS_DIR / "prometheus.swarm.yml"
    # rule_files are relative to the configuration file: rules.yml must sit beside it.
    assert mounted[str(Path(config.split("=", 1)[1]).parent / "rules.yml")].resolve() == \
        PROMETHEUS_DIR / "rules.yml"
