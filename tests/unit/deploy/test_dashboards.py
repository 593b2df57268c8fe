"""Grafana dashboards: committed JSON is fresh, well formed, and queries only real series."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
GRAFANA = ROOT / "deploy" / "grafana"

# Series names as a worker exposes them on /metrics (streams/runtime/metrics.py plus Faust's sensor,
# prefix escucha_faust_). Histograms appear as _bucket/_sum/_count; prometheus_client adds
# _total to every counter, Faust's included (escucha_faust_messages_received is registered,
# escucha_faust_messages_received_total is exposed). To be replaced by a live-worker check.
EXPOSED_METRICS = frozenset({
    "escucha_mentions_in_total",
    "escucha_mentions_classified_total",
    "escucha_mentions_unmatched_total",
    "escucha_dead_letters_total",
    "escucha_consumer_hole_messages_total",
    "escucha_source_last_event_timestamp_seconds",
    "escucha_classify_batch_size_bucket",
    "escucha_classify_batch_size_sum",
    "escucha_classify_batch_size_count",
    "escucha_classify_batch_seconds_bucket",
    "escucha_classify_batch_seconds_sum",
    "escucha_classify_batch_seconds_count",
    "escucha_model_texts_total",
    "escucha_model_loaded",
    "escucha_end_to_end_latency_seconds_bucket",
    "escucha_end_to_end_latency_seconds_sum",
    "escucha_end_to_end_latency_seconds_count",
    "escucha_signals_total",
    "escucha_incidents_opened_total",
    "escucha_incidents",
    "escucha_incidents_overdue",
    "escucha_time_to_acknowledge_seconds_bucket",
    "escucha_time_to_acknowledge_seconds_sum",
    "escucha_time_to_acknowledge_seconds_count",
    "escucha_time_to_resolve_seconds_bucket",
    "escucha_time_to_resolve_seconds_sum",
    "escucha_time_to_resolve_seconds_count",
    "escucha_escalations_total",
    "escucha_acks_total",
    "escucha_silences_created_total",
    "escucha_silences_expired_total",
    "escucha_incidents_inhibited",
    "escucha_incidents_joined_total",
    "escucha_incidents_story_held_total",
    "escucha_store_mentions_written_total",
    "escucha_store_mentions_let_go_total",
    "escucha_store_mentions_expired_total",
    "escucha_store_errors_total",
    "escucha_store_enabled",
    "escucha_store_up",
    "escucha_store_last_write_timestamp_seconds",
    "escucha_store_size_bytes",
    "escucha_store_write_seconds_bucket",
    "escucha_store_write_seconds_sum",
    "escucha_store_write_seconds_count",
    "escucha_store_search_seconds_bucket",
    "escucha_store_search_seconds_sum",
    "escucha_store_search_seconds_count",
    "escucha_claims_total",
    "escucha_notifications_total",
    "escucha_delivery_seconds_bucket",
    "escucha_delivery_seconds_sum",
    "escucha_delivery_seconds_count",
    "escucha_ready",
    "escucha_faust_messages_received_total",
    "escucha_faust_active_messages",
    "escucha_faust_messages_received_per_topic_total",
    "escucha_faust_events_runtime_ms_bucket",
    "escucha_faust_events_runtime_ms_sum",
    "escucha_faust_events_runtime_ms_count",
    "escucha_faust_total_rebalances",
    "escucha_faust_table_operations_total",
    "escucha_faust_topic_partition_end_offset",
    "escucha_faust_topic_partition_offset_commited",
    "escucha_faust_producer_send_latency_bucket",
    "escucha_faust_producer_send_latency_sum",
    "escucha_faust_producer_send_latency_count",
    "escucha_faust_total_sent_messages_total",
    "escucha_faust_consumer_commit_latency_bucket",
    "escucha_faust_consumer_commit_latency_sum",
    "escucha_faust_consumer_commit_latency_count",
})

UIDS = {"escucha-pipeline", "escucha-connectors", "escucha-model", "escucha-incidents",
        "escucha-kafka", "escucha-store"}


def _load() -> ModuleType:
    # deploy/ is not a package: load the generator by path, as CI runs it as a script.
    spec = importlib.util.spec_from_file_location("escucha_grafana_dashboards",
                                                  GRAFANA / "dashboards.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


dashboards = _load()
BUILT: dict[str, dict[str, Any]] = dashboards.build_all()


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels") or [])
    return out


def _query_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in _panels(dashboard) if p["type"] != "row"]


def test_builds_the_six_dashboards() -> None:
    assert set(BUILT) == UIDS == set(dashboards.UIDS)
    assert all(d["uid"] == uid for uid, d in BUILT.items())


@pytest.mark.parametrize("uid", sorted(UIDS))
def test_committed_json_is_fresh(uid: str) -> None:
    path = GRAFANA / "dashboards" / f"{uid}.json"
    assert path.is_file(), "run: python deploy/grafana/dashboards.py"
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == BUILT[uid], "stale: run python deploy/grafana/dashboards.py"
    assert text == dashboards.render(BUILT[uid])
    assert text.endswith("}\n")


def test_no_stray_dashboard_files() -> None:
    committed = {p.stem for p in (GRAFANA / "dashboards").glob("*.json")}
    assert committed == UIDS


def test_output_is_deterministic() -> None:
    again = dashboards.build_all()
    assert [dashboards.render(d) for d in again.values()] == [
        dashboards.render(d) for d in BUILT.values()]


def test_check_mode_lists_stale_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert dashboards.main(["--check", "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err.count("stale:") == len(UIDS)

    assert dashboards.main(["--out", str(tmp_path)]) == 0
    assert dashboards.main(["--check", "--out", str(tmp_path)]) == 0

    (tmp_path / "escucha-model.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "old.json").write_text("{}\n", encoding="utf-8")
    capsys.readouterr()
    assert dashboards.main(["--check", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "escucha-model.json" in err and "old.json" in err
    assert "escucha-kafka.json" not in err


def test_check_mode_passes_on_the_committed_files() -> None:
    assert dashboards.main(["--check"]) == 0


@pytest.mark.parametrize("uid", sorted(UIDS))
def test_dashboard_shape(uid: str) -> None:
    d = BUILT[uid]
    assert d["title"].startswith("escucha / ")
    assert d["refresh"] == "30s"
    assert d["time"] == {"from": "now-6h", "to": "now"}
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"

    panels = _query_panels(d)
    assert len(panels) >= 6
    ids = [p["id"] for p in _panels(d)]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == "${datasource}"
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]


@pytest.mark.parametrize("uid", sorted(UIDS))
def test_every_metric_used_is_exposed(uid: str) -> None:
    used = dashboards.metric_names(BUILT[uid])
    assert used, uid
    assert used <= EXPOSED_METRICS, sorted(used - EXPOSED_METRICS)


def test_metric_names_reads_nested_panels_and_keeps_suffixes() -> None:
    dashboard = {"panels": [
        {"type": "row", "panels": [{"targets": [
            {"expr": 'sum(rate(escucha_a_total{x="escucha"}[5m])) / escucha_b_count'}]}]},
        {"targets": [{"expr": "histogram_quantile(0.9, sum by (le) "
                              "(rate(escucha_c_seconds_bucket[$__range])))"},
                     {"expr": ""}]},
        {"type": "text"},
    ]}
    assert dashboards.metric_names(dashboard) == {
        "escucha_a_total", "escucha_b_count", "escucha_c_seconds_bucket"}


def test_dashboards_cover_the_pipeline() -> None:
    used = {uid: dashboards.metric_names(d) for uid, d in BUILT.items()}
    assert "escucha_faust_topic_partition_end_offset" in used["escucha-kafka"]
    assert "escucha_source_last_event_timestamp_seconds" in used["escucha-connectors"]
    assert "escucha_model_loaded" in used["escucha-model"]
    assert {"escucha_time_to_acknowledge_seconds_sum", "escucha_time_to_resolve_seconds_bucket",
            "escucha_incidents_overdue"} <= used["escucha-incidents"]
    assert {"escucha_ready", "escucha_end_to_end_latency_seconds_bucket"} <= used[
        "escucha-pipeline"]


def test_every_escucha_series_used_is_registered_by_metrics() -> None:
    # The worker's own registry, as built at start-up: a name the boards query that no
    # Metrics series exposes would be an empty panel (Faust's own are checked live).
    from prometheus_client import CollectorRegistry, generate_latest

    from streams.runtime.metrics import Metrics

    registry = CollectorRegistry()
    Metrics(registry=registry, watches=["acme"], channels=["slack"], detectors=["spike"],
            sources=["rss"], topics=["escucha.mentions.raw"])
    exposed = {line.split("{")[0].split(" ")[0]
               for line in generate_latest(registry).decode().splitlines()
               if line.startswith("escucha_")}
    used = set().union(*(dashboards.metric_names(d) for d in BUILT.values()))
    ours = {n for n in used if not n.startswith("escucha_faust_")}
    assert ours <= exposed, sorted(ours - exposed)


def _exprs(uid: str) -> dict[str, str]:
    return {p["title"]: " ".join(t["expr"] for t in p["targets"])
            for p in _query_panels(BUILT[uid])}


def test_store_board_shows_the_store_and_the_responders() -> None:
    exprs = _exprs("escucha-store")
    used = dashboards.metric_names(BUILT["escucha-store"])
    assert {"escucha_store_mentions_written_total", "escucha_store_write_seconds_bucket",
            "escucha_store_last_write_timestamp_seconds", "escucha_store_search_seconds_bucket",
            "escucha_store_size_bytes", "escucha_store_mentions_expired_total",
            "escucha_store_errors_total", "escucha_claims_total"} <= used
    # Each responder figure counts exactly its own action and outcome.
    assert 'escucha_claims_total{action="claim",outcome="done"}' in exprs["Claimed (range)"]
    assert 'escucha_claims_total{action="answer",outcome="done"}' in exprs["Answered (range)"]
    assert ('escucha_claims_total{action="not-answering",outcome="done"}'
            in exprs["Declined (range)"])
    assert 'escucha_claims_total{outcome="taken"}' in exprs["Conflicts (range)"]
    # Only workers that write the store count as unavailable (store.enabled off is not down).
    assert ("escucha_store_enabled == 1 and escucha_store_up == 0"
            in exprs["Workers whose store is unavailable"])
    # The size is the leader's: max, never a sum over workers that report 0.
    assert exprs["Store size"].startswith("max(escucha_store_size_bytes)")


def test_incidents_board_shows_inhibition_and_expired_silences() -> None:
    exprs = _exprs("escucha-incidents")
    assert exprs["Inhibited now"] == "sum(escucha_incidents_inhibited)"
    assert "escucha_silences_expired_total" in exprs["Silences expired early (range)"]


def test_response_panels_keep_people_apart_from_auto_resolves() -> None:
    exprs = {p["title"]: " ".join(t["expr"] for t in p["targets"])
             for p in _query_panels(BUILT["escucha-incidents"])}

    def selectors(title: str) -> set[str]:
        # What follows every time-to-acknowledge/resolve series in the panel's queries.
        return set(re.findall(r"escucha_time_to_\w+?_seconds_(?:sum|count|bucket)(\{[^}]*\}|)",
                              exprs[title]))

    for title in ("MTTA (range)", "p90 time to acknowledge", "MTTR, people (range)",
                  "p90 time to resolve, people", "MTTA by severity (rolling 1 h)"):
        assert selectors(title) == {'{by="person"}'}, title
    for title in ("Auto-resolved (range)", "MTTR, auto-resolved (range)"):
        assert selectors(title) == {'{by="auto"}'}, title
    split = "MTTR by severity and how it ended (rolling 1 h)"
    assert selectors(split) == {""} and "sum by (severity, by)" in exprs[split]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian prometheus)")
def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    # Grafana's macros are not PromQL: give them values, then let promtool parse each query.
    macros = {"$__rate_interval": "1m", "$__range": "6h", "$__interval": "30s"}
    rules: list[dict[str, str]] = []
    for uid, d in BUILT.items():
        for panel in _query_panels(d):
            for target in panel["targets"]:
                expr = target["expr"]
                for macro, value in macros.items():
                    expr = expr.replace(macro, value)
                assert "$" not in expr, expr
                rules.append({"record": f"check:{re.sub(r'[^a-z]', '_', uid)}:{len(rules)}",
                              "expr": expr})
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_provisioning_files() -> None:
    prov = GRAFANA / "provisioning"
    ds = yaml.safe_load((prov / "datasources" / "prometheus.yaml").read_text())
    assert ds["apiVersion"] == 1
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus"
    assert source["uid"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert source["access"] == "proxy"

    dash = yaml.safe_load((prov / "dashboards" / "escucha.yaml").read_text())
    assert dash["apiVersion"] == 1
    (provider,) = dash["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/escucha"
    for d in BUILT.values():
        (variable,) = d["templating"]["list"]
        assert variable["current"]["value"] == source["uid"]
