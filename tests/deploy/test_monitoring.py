"""Monitoring of the deployment: Prometheus config and alert rules, Grafana provisioning
and the adaptd dashboard.

The central check: every metric name in every PromQL expression (alerts, their unit
tests, dashboard panels) is one the daemon exports, taken from the daemon's own
registry. promtool, where installed, checks the config, the rules' syntax, the
dashboard's PromQL syntax, and runs the alert unit tests.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from adaptd.daemon.io.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERT_TESTS = PROMETHEUS_DIR / "alerts_test.yml"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "adaptd.json"
DATASOURCES = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = GRAFANA_DIR / "provisioning" / "dashboards" / "adaptd.yml"

# ---- the metric names the daemon exports


def exported_sample_names() -> set[str]:
    """Every sample name of a daemon's /metrics once each labelled metric has a child
    (a labelled metric shows no sample before), plus Prometheus' own `up`."""
    metrics = Metrics()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase) and value._labelnames:
            value.labels(*["x"] * len(value._labelnames))
    metrics.set_build_info("0.0.0", "0.0.0")
    empty = {family.name for family in metrics.registry.collect() if not family.samples}
    assert not empty, f"families still without samples: {empty}"
    families = text_string_to_metric_families(metrics.render().decode())
    return {sample.name for family in families for sample in family.samples} | {"up"}


@pytest.fixture(scope="module")
def exported() -> set[str]:
    return exported_sample_names()


def test_exported_names_follow_the_exposition_conventions(exported: set[str]) -> None:
    assert {"adaptd_events_total", "adaptd_events_created"} <= exported
    assert {f"adaptd_adaptation_latency_seconds_{s}" for s in ("bucket", "sum", "count")} <= (
        exported
    )
    assert {"adaptd_build_info", "adaptd_consumer_lag", "up"} <= exported
    assert "adaptd_events" not in exported  # a counter is only ever exposed with _total


# ---- metric names in PromQL

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_TOKEN = re.compile(
    r"(?P<number>(?:0x[0-9a-f]+|(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)[a-z]*)"
    r"|(?P<variable>\$\w+)"
    r"|(?P<name>[a-z_:][a-z0-9_:]*)(?P<call>\s*\()?",
    re.IGNORECASE,
)
_KEYWORDS = {
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "inf", "nan", "atan2",
    # aggregation operators, which may be followed by `by (...)` instead of `(`
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects.

    Strings, label matchers, range and subquery brackets, and the label lists of
    by/without/on/ignoring/group_* are removed first; then an identifier is a metric
    unless it calls (function or aggregation), is a keyword, a number, a duration
    or a Grafana variable.
    """
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    names = set()
    for match in _TOKEN.finditer(text):
        name = match.group("name")
        if name and not match.group("call") and name.lower() not in _KEYWORDS:
            names.add(name)
    return names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'histogram_quantile(0.99, sum by (le) (rate(a_bucket{le!="x", i=~"$i"}'
            "[$__rate_interval])))",
            {"a_bucket"},
        ),
        ('up{job="adaptd"} == 0', {"up"}),
        ('absent(up{job="adaptd"})', {"up"}),
        ("sum(rate(a_total[5m])) by (outcome) / ignoring(outcome) group_left b", {"a_total", "b"}),
        ("max without (pod) (avg_over_time(g[2m])) > 1e3 and on() h offset 5m", {"g", "h"}),
        ("count by (le) (x) unless bool y:recorded", {"x", "y:recorded"}),
        ('label_replace(m, "dst", "$1", "src", "(by|on) (.*)")', {"m"}),
        ("deriv(lag[10m:1m]) * 0x1F + .5 - Inf", {"lag"}),
        ("topk(3, z) or vector(1)", {"z"}),
    ],
)
def test_metric_names_are_extracted_exactly(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_a_misspelled_metric_is_caught(exported: set[str]) -> None:
    typo = 'sum by (outcome) (rate(adaptd_event_total{instance=~"$instance"}[5m]))'
    assert metric_names(typo) - exported == {"adaptd_event_total"}
    fine = 'sum by (outcome) (rate(adaptd_events_total{instance=~"$instance"}[5m]))'
    assert metric_names(fine) - exported == set()


# ---- where the expressions are


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in _load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels(container: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in container.get("panels", []):
        yield panel
        yield from panels(panel)  # a collapsed row holds its panels


def dashboard_exprs() -> list[str]:
    return [
        target["expr"]
        for panel in panels(dashboard())
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def _template_queries() -> list[str]:
    out = []
    for variable in dashboard()["templating"]["list"]:
        query = variable.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        if variable["type"] == "query" and query:
            # label_values(selector, label): only the selector is PromQL.
            match = re.fullmatch(r"label_values\((.*),\s*\w+\)", query.strip())
            out.append(match.group(1) if match else query)
    return out


def _unit_test_series() -> list[str]:
    tests = _load_yaml(ALERT_TESTS)["tests"]
    return [series["series"] for test in tests for series in test["input_series"]]


def test_every_promql_metric_is_one_the_daemon_exports(exported: set[str]) -> None:
    sources = {
        "alerts.yml": [rule["expr"] for rule in alert_rules()],
        "alerts_test.yml": _unit_test_series(),
        "adaptd.json": dashboard_exprs() + _template_queries(),
    }
    for where, exprs in sources.items():
        assert exprs, f"no expressions found in {where}"
        for expr in exprs:
            names = metric_names(expr)
            assert names, f"{where}: no metric in {expr!r}"
            assert names <= exported, f"{where}: {sorted(names - exported)} in {expr!r}"


_COUNTER_SUFFIXES = ("_total", "_bucket", "_count", "_sum")


def test_counters_are_only_read_through_rate_or_increase() -> None:
    for expr in [rule["expr"] for rule in alert_rules()] + dashboard_exprs():
        for name in metric_names(expr):
            if not name.endswith(_COUNTER_SUFFIXES):
                continue
            for match in re.finditer(rf"\b{name}\b", expr):
                before = expr[: match.start()].rstrip()
                assert re.search(r"\b(rate|irate|increase)\($", before), (
                    f"{name} read raw in {expr!r}"
                )


def _quantile_args(expr: str) -> Iterator[str]:
    for match in re.finditer(r"histogram_quantile\(", expr):
        depth, start = 1, match.end()
        for i in range(start, len(expr)):
            depth += {"(": 1, ")": -1}.get(expr[i], 0)
            if depth == 0:
                yield expr[start:i]
                break


def test_quantiles_aggregate_bucket_rates_by_le() -> None:
    exprs = [rule["expr"] for rule in alert_rules()] + dashboard_exprs()
    quantiles = [arg for expr in exprs for arg in _quantile_args(expr)]
    assert quantiles
    for arg in quantiles:
        phi, _, inner = arg.partition(",")
        assert 0 < float(phi) <= 1, arg
        by = re.match(r"\s*sum by \(([^)]*)\) \(rate\(", inner)
        assert by, arg
        assert "le" in {label.strip() for label in by.group(1).split(",")}, arg
        (name,) = metric_names(inner)
        assert name.endswith("_bucket"), arg


# ---- Prometheus


def test_prometheus_scrapes_adaptd_every_5s() -> None:
    config = _load_yaml(PROMETHEUS_CONFIG)
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "adaptd"]
    assert job["scrape_interval"] == "5s"
    targets = [t for s in job.get("static_configs", []) for t in s["targets"]]
    targets += [
        f"{name}:{sd['port']}" for sd in job.get("dns_sd_configs", []) for name in sd["names"]
    ]
    assert targets == ["adaptd:9464"]


def test_prometheus_loads_the_mounted_rule_file() -> None:
    config = _load_yaml(PROMETHEUS_CONFIG)
    compose = _load_yaml(ROOT / "docker-compose.yml")
    mounts = dict(
        v.split(":")[:2] for v in compose["services"]["prometheus"]["volumes"] if v[0] == "."
    )
    config_in_container = Path(mounts["./deploy/prometheus/prometheus.yml"])
    rules_in_container = Path(mounts["./deploy/prometheus/alerts.yml"])
    # Relative rule paths resolve against the config file's folder, in the repository
    # and in the container alike.
    (rule_file,) = config["rule_files"]
    assert (PROMETHEUS_CONFIG.parent / rule_file).resolve() == ALERTS
    assert config_in_container.parent / rule_file == rules_in_container


def test_alert_rules_are_complete() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)) >= 6
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
    exprs = " ".join(rule["expr"] for rule in rules)
    for metric in (
        "up",
        "adaptd_dead_letters_total",
        "adaptd_consumer_lag",
        "adaptd_adaptation_latency_seconds_bucket",
        "adaptd_shift_to_publish_seconds_bucket",
        "adaptd_event_loop_lag_seconds",
        "adaptd_redis_errors_total",
    ):
        assert metric in metric_names(exprs), metric


def test_every_alert_with_a_unit_test_is_one_that_exists() -> None:
    tested = {
        case["alertname"]
        for test in _load_yaml(ALERT_TESTS)["tests"]
        for case in test["alert_rule_test"]
    }
    assert tested
    assert tested <= {rule["alert"] for rule in alert_rules()}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120)


def test_promtool_accepts_the_config_and_rules() -> None:
    config = _promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert config.returncode == 0, config.stdout + config.stderr
    rules = _promtool("check", "rules", str(ALERTS))
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_promtool_alert_unit_tests_pass() -> None:
    result = _promtool("test", "rules", str(ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    rule = {"alert": "Broken", "expr": "sum by (le (rate(adaptd_events_total[5m]))"}
    broken.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [rule]}]}))
    result = _promtool("check", "rules", str(broken))
    assert result.returncode != 0


def test_dashboard_promql_parses(tmp_path: Path) -> None:
    # Grafana's variables are not PromQL; give them values Prometheus would see.
    rules = [
        {
            "record": f"dashboard:expr_{i}",
            "expr": expr.replace("$__rate_interval", "1m").replace("$instance", ".*"),
        }
        for i, expr in enumerate(dashboard_exprs())
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = _promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


# ---- Grafana


def _datasource_uid() -> str:
    (source,) = _load_yaml(DATASOURCES)["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    return str(source["uid"])


def test_every_panel_and_query_uses_the_provisioned_datasource() -> None:
    uid = _datasource_uid()
    board = dashboard()
    data_panels = [p for p in panels(board) if p["type"] != "row"]
    assert data_panels
    for panel in data_panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid, panel["title"]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == uid


def test_dashboard_layout_is_consistent() -> None:
    board = dashboard()
    assert board["uid"]
    assert board["title"]
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids))
    for panel in panels(board):
        grid = panel["gridPos"]
        assert 0 <= grid["x"] < grid["x"] + grid["w"] <= 24, panel["title"]
        refs = [t["refId"] for t in panel.get("targets", [])]
        assert len(refs) == len(set(refs)), panel["title"]


def test_dashboard_covers_the_daemon() -> None:
    used = set().union(*(metric_names(e) for e in dashboard_exprs()))
    for metric in (
        "adaptd_events_total",
        "adaptd_dead_letters_total",
        "adaptd_processing_latency_seconds_bucket",
        "adaptd_shifts_total",
        "adaptd_adaptations_total",
        "adaptd_adaptation_latency_seconds_bucket",
        "adaptd_shift_to_publish_seconds_bucket",
        "adaptd_replay_items",
        "adaptd_replay_seen",
        "adaptd_replay_inserts_total",
        "adaptd_consumer_lag",
        "adaptd_event_loop_lag_seconds",
        "adaptd_meta_updates_total",
        "adaptd_meta_query_loss",
        "adaptd_build_info",
    ):
        assert metric in used, metric


def test_grafana_loads_the_dashboard_folder_it_mounts() -> None:
    (provider,) = _load_yaml(DASHBOARD_PROVIDERS)["providers"]
    compose = _load_yaml(ROOT / "docker-compose.yml")
    grafana = compose["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"] if v[0] == ".")
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/{DASHBOARD.name}"
