"""escucha's Grafana dashboards, generated from code and committed as JSON.

    python deploy/grafana/dashboards.py          # (re)write deploy/grafana/dashboards/*.json
    python deploy/grafana/dashboards.py --check  # exit 1, listing stale files, if any differ

The committed JSON is what Grafana provisions (see provisioning/dashboards/escucha.yaml); this
module is the source of truth, so edit here and regenerate. Every query uses only the series a
worker exposes on /metrics (streams/runtime/metrics.py and Faust's Prometheus sensor).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import attr
from grafanalib import core as gl
from grafanalib._gen import DashboardEncoder

__all__ = ["OUT_DIR", "UIDS", "build_all", "metric_names", "render", "main"]

OUT_DIR = Path(__file__).resolve().parent / "dashboards"
UIDS = ("escucha-pipeline", "escucha-connectors", "escucha-model", "escucha-incidents",
        "escucha-kafka")

_DS = {"type": "prometheus", "uid": "${datasource}"}
_RATE = "$__rate_interval"
_RANGE = "$__range"
# Incidents are rare: a rolling hour gives a readable MTTA/MTTR line where a scrape-sized
# window would be mostly gaps.
_HOUR = "1h"
_NONE = "no data"  # for averages and quantiles, where 0 would be a claim
_PERSON, _AUTO = '{by="person"}', '{by="auto"}'  # who ended the wait (metrics.ENDED_BY)
_METRIC = re.compile(r"escucha_[a-z0-9_]+")
_WIDTH = 24
_SCHEMA_VERSION = 39  # Grafana 10/11: no legacy migrations run on load


class _Cell(NamedTuple):
    panel: Any
    w: int
    h: int


# PromQL helpers -------------------------------------------------------------------------------

def _by(labels: Sequence[str]) -> str:
    return f" by ({', '.join(labels)})" if labels else ""


def _rate(metric: str, *, by: Sequence[str] = (), sel: str = "", window: str = _RATE) -> str:
    return f"sum{_by(by)} (rate({metric}{sel}[{window}]))"


def _increase(metric: str, *, by: Sequence[str] = (), sel: str = "",
              window: str = _RATE) -> str:
    return f"sum{_by(by)} (increase({metric}{sel}[{window}]))"


def _quantile(q: float, histogram: str, *, by: Sequence[str] = (), sel: str = "",
              window: str = _RATE) -> str:
    inner = _rate(f"{histogram}_bucket", by=("le", *by), sel=sel, window=window)
    return f"histogram_quantile({q}, {inner})"


def _mean(histogram: str, *, by: Sequence[str] = (), sel: str = "", window: str = _RATE) -> str:
    return (f"{_rate(f'{histogram}_sum', by=by, sel=sel, window=window)}"
            f" / {_rate(f'{histogram}_count', by=by, sel=sel, window=window)}")


def _ratio(numerator: str, denominator: str) -> str:
    return f"({numerator}) / ({denominator})"


def _quantiles(histogram: str, qs: Sequence[float] = (0.5, 0.9, 0.99)
               ) -> list[tuple[str, str]]:
    return [(_quantile(q, histogram), f"p{round(q * 100)}") for q in qs]


# Panel helpers --------------------------------------------------------------------------------

def _targets(queries: Sequence[tuple[str, str]]) -> list[gl.Target]:
    return [gl.Target(expr=expr, legendFormat=legend, refId=chr(ord("A") + i),
                      datasource=_DS, intervalFactor=1)
            for i, (expr, legend) in enumerate(queries)]


def _ts(title: str, queries: Sequence[tuple[str, str]], *, unit: str = "short",
        description: str = "", w: int = 12, h: int = 8, bars: bool = False,
        stack: bool = False) -> _Cell:
    panel = gl.TimeSeries(
        title=title, description=description or None, dataSource=_DS,
        targets=_targets(queries), unit=unit, tooltipMode="multi", showPoints="never",
        fillOpacity=60 if bars else 10, drawStyle="bars" if bars else "line",
        stacking={"mode": "normal", "group": "A"} if stack else {},
        thresholds=[{"color": "green", "value": None}],
    )
    return _Cell(panel, w, h)


def _stat(title: str, expr: str, *, unit: str = "none", description: str = "",
          legend: str = "", red_at: float | None = None, green_at: float | None = None,
          mappings: Sequence[dict[str, Any]] = (), no_value: str = "0", w: int = 6,
          h: int = 4) -> _Cell:
    """A single number. `red_at`: red from that value up; `green_at`: red below it."""
    if green_at is not None:
        steps = [{"color": "red", "value": None}, {"color": "green", "value": green_at}]
    elif red_at is not None:
        steps = [{"color": "green", "value": None}, {"color": "red", "value": red_at}]
    else:
        steps = [{"color": "blue", "value": None}]
    panel = gl.Stat(
        title=title, description=description or None, dataSource=_DS,
        targets=_targets([(expr, legend)]), format=unit, reduceCalc="lastNotNull",
        color={"mode": "thresholds"}, thresholds=steps, mappings=list(mappings),
        graphMode="none", noValue=no_value,
    )
    return _Cell(panel, w, h)


def _row(title: str) -> _Cell:
    return _Cell(gl.RowPanel(title=title), _WIDTH, 1)


def _layout(cells: Sequence[_Cell]) -> list[Any]:
    """Place cells left to right, wrapping at 24 columns; a row header starts a new line."""
    panels: list[Any] = []
    x = y = line_h = 0
    for cell in cells:
        is_row = isinstance(cell.panel, gl.RowPanel)
        if is_row or x + cell.w > _WIDTH:
            x, y, line_h = 0, y + line_h, 0
        panels.append(attr.evolve(cell.panel, gridPos=gl.GridPos(h=cell.h, w=cell.w, x=x, y=y)))
        if is_row:
            y += cell.h
        else:
            x, line_h = x + cell.w, max(line_h, cell.h)
    return panels


def _dashboard(uid: str, title: str, description: str, cells: Sequence[_Cell]) -> dict[str, Any]:
    datasource = gl.Template(
        name="datasource", label="Data source", query="prometheus", type="datasource",
        default="prometheus", regex="",
    )
    link = {"asDropdown": True, "icon": "external link", "includeVars": True, "keepTime": True,
            "tags": ["escucha"], "title": "escucha", "type": "dashboards"}
    dashboard = gl.Dashboard(
        title=title, uid=uid, description=description, tags=["escucha"], timezone="browser",
        refresh="30s", time=gl.Time("now-6h", "now"), graphTooltip=1, editable=False,
        templating=gl.Templating(list=[datasource]), links=[link], panels=_layout(cells),
        schemaVersion=_SCHEMA_VERSION,
    ).auto_panel_ids()
    data: dict[str, Any] = json.loads(json.dumps(dashboard.to_json_data(), cls=DashboardEncoder))
    return data


_LOADED = [{"type": "value", "options": {
    "0": {"index": 0, "text": "not loaded", "color": "red"},
    "1": {"index": 1, "text": "loaded", "color": "green"},
}}]

# Dashboards -----------------------------------------------------------------------------------


def _pipeline() -> dict[str, Any]:
    open_incidents = 'sum(escucha_incidents{state="open"})'
    return _dashboard("escucha-pipeline", "escucha / Pipeline overview",
                      "Mentions in to alerts out: throughput, latency, health.", [
        _row("Health"),
        _stat("Workers ready", "sum(escucha_ready)", green_at=1,
              description="Workers whose /readyz passes (broker, model, partitions)."),
        _stat("Workers not ready", "count(escucha_ready == 0) or vector(0)", red_at=1),
        _stat("Mentions in", _rate("escucha_mentions_in_total"), unit="cps"),
        _stat("Dead letters (range)", _increase("escucha_dead_letters_total", window=_RANGE),
              red_at=1),
        _row("Throughput"),
        _ts("Mentions", [
            (_rate("escucha_mentions_in_total"), "in"),
            (_rate("escucha_mentions_classified_total"), "classified (per matched watch)"),
            (_rate("escucha_mentions_unmatched_total"), "unmatched"),
        ], unit="cps", description="A mention matching two watches counts twice as classified."),
        _ts("Dead letters by stage", [(_rate("escucha_dead_letters_total", by=["stage"]),
                                       "{{stage}}")], unit="cps", bars=True, stack=True),
        _ts("Messages mended by the hole watch",
            [(_increase("escucha_consumer_hole_messages_total", by=["topic", "action"]),
              "{{topic}} {{action}}")], bars=True, stack=True,
            description="Fetched but never acknowledged: read again (reread) or deleted by "
                        "retention first (expired). Should stay at zero."),
        _row("Latency"),
        _ts("End-to-end latency p50",
            [(_quantile(0.5, "escucha_end_to_end_latency_seconds", by=["path"]), "{{path}}")],
            unit="s", description="post_to_* start at the mention's own post time."),
        _ts("End-to-end latency p99",
            [(_quantile(0.99, "escucha_end_to_end_latency_seconds", by=["path"]), "{{path}}")],
            unit="s"),
        _row("Detection and incidents"),
        _ts("Signals by detector and severity",
            [(_increase("escucha_signals_total", by=["detector", "severity"]),
              "{{detector}} {{severity}}")], bars=True, stack=True, w=8),
        _ts("Incidents opened by severity",
            [(_increase("escucha_incidents_opened_total", by=["severity"]), "{{severity}}")],
            bars=True, stack=True, w=8),
        _ts("Open incidents", [(open_incidents, "open"),
                               ("sum(escucha_incidents_overdue)", "overdue")], w=8),
    ])


def _connectors() -> dict[str, Any]:
    last_seen = "(max by (source) (escucha_source_last_event_timestamp_seconds) > 0)"
    since = f"time() - {last_seen}"
    return _dashboard("escucha-connectors", "escucha / Connectors",
                      "Per-source intake, staleness and rejected input.", [
        _stat("Sources silent > 15 min", f"count(({since}) > 900) or vector(0)", red_at=1,
              description="Sources that sent something since start-up but nothing for 15 min."),
        _stat("Mentions in", _rate("escucha_mentions_in_total"), unit="cps"),
        _stat("Ingest dead-letter ratio",
              _ratio(_rate("escucha_dead_letters_total", sel='{stage="ingest"}', window=_RANGE),
                     _rate("escucha_mentions_in_total", window=_RANGE)),
              unit="percentunit", red_at=0.05),
        _stat("Dead letters (range)", _increase("escucha_dead_letters_total", window=_RANGE),
              red_at=1),
        _ts("Mentions in by source",
            [(_rate("escucha_mentions_in_total", by=["source"]), "{{source}}")],
            unit="cps", stack=True),
        _ts("Seconds since last event by source", [(since, "{{source}}")], unit="s",
            description="Sources never seen since the worker started are left out."),
        _stat("Last event age", since, legend="{{source}}", unit="s", red_at=900, w=24),
        _ts("Dead letters by stage",
            [(_rate("escucha_dead_letters_total", by=["stage"]), "{{stage}}")],
            unit="cps", bars=True, stack=True, w=24),
    ])


def _model() -> dict[str, Any]:
    batch, seconds = "escucha_classify_batch_size", "escucha_classify_batch_seconds"
    return _dashboard("escucha-model", "escucha / Model",
                      "Classification model: load state, throughput, batching, latency.", [
        _stat("Model loaded (all workers)", "min(escucha_model_loaded)", mappings=_LOADED,
              green_at=1),
        _stat("Texts classified", _rate("escucha_model_texts_total"), unit="cps"),
        _stat("Mean batch size", _mean(batch, window=_RANGE), unit="short", no_value=_NONE),
        _stat("Mean batch latency", _mean(seconds, window=_RANGE), unit="s", no_value=_NONE),
        _ts("Texts classified per second", [(_rate("escucha_model_texts_total"), "texts/s"),
                                            (_rate(f"{seconds}_count"), "model calls/s")],
            unit="cps"),
        _ts("Model loaded by worker", [("max by (instance) (escucha_model_loaded)",
                                        "{{instance}}")], unit="bool_on_off"),
        _ts("Batch size", [*_quantiles(batch), (_mean(batch), "mean")]),
        _ts("Batch latency", [*_quantiles(seconds), (_mean(seconds), "mean")], unit="s"),
        _ts("Model time per text",
            [(f"{_rate(f'{seconds}_sum')} / {_rate('escucha_model_texts_total')}", "per text")],
            unit="s", w=24),
    ])


def _incidents() -> dict[str, Any]:
    tta, ttr = "escucha_time_to_acknowledge_seconds", "escucha_time_to_resolve_seconds"

    def secs(title: str, expr: str) -> _Cell:
        return _stat(title, expr, unit="s", no_value=_NONE, w=4)

    notes = "escucha_notifications_total"
    return _dashboard("escucha-incidents", "escucha / Incidents & on-call",
                      "Incidents, escalation, acknowledgement and notification delivery.", [
        _row("Now"),
        _stat("Open", 'sum(escucha_incidents{state="open"})', red_at=1),
        _stat("Acknowledged", 'sum(escucha_incidents{state="acknowledged"})'),
        _stat("Overdue", "sum(escucha_incidents_overdue)", red_at=1,
              description="Open, unacknowledged, every level tried, none waiting for "
                          "quiet hours to end."),
        _stat("Silences created (range)",
              _increase("escucha_silences_created_total", window=_RANGE)),
        _row("Incidents"),
        _ts("Incidents by state", [("sum by (state) (escucha_incidents)", "{{state}}")], w=8),
        _ts("Unresolved incidents by severity",
            [('sum by (severity) (escucha_incidents{state!="resolved"})', "{{severity}}")],
            stack=True, w=8),
        _ts("Overdue by severity",
            [("sum by (severity) (escucha_incidents_overdue)", "{{severity}}")], w=8),
        _ts("Incidents opened by severity",
            [(_increase("escucha_incidents_opened_total", by=["severity"]), "{{severity}}")],
            bars=True, stack=True, w=24),
        # People apart from auto-resolves, which take resolve_after_s and would drag MTTR.
        _row("Response"),
        secs("MTTA (range)", _mean(tta, sel=_PERSON, window=_RANGE)),
        secs("p90 time to acknowledge", _quantile(0.9, tta, sel=_PERSON, window=_RANGE)),
        secs("MTTR, people (range)", _mean(ttr, sel=_PERSON, window=_RANGE)),
        secs("p90 time to resolve, people", _quantile(0.9, ttr, sel=_PERSON, window=_RANGE)),
        _stat("Auto-resolved (range)", _increase(f"{ttr}_count", sel=_AUTO, window=_RANGE), w=4,
              description="Resolved by escucha after resolve_after_s without signals."),
        secs("MTTR, auto-resolved (range)", _mean(ttr, sel=_AUTO, window=_RANGE)),
        _ts("MTTA by severity (rolling 1 h)",
            [(_mean(tta, by=["severity"], sel=_PERSON, window=_HOUR), "{{severity}}")], unit="s"),
        _ts("MTTR by severity and how it ended (rolling 1 h)",
            [(_mean(ttr, by=["severity", "by"], window=_HOUR), "{{severity}} by {{by}}")],
            unit="s", description="by=auto: no signal for resolve_after_s."),
        _ts("Escalations by level",
            [(_increase("escucha_escalations_total", by=["level"]), "level {{level}}")],
            bars=True, stack=True),
        _ts("Acknowledgements by source",
            [(_increase("escucha_acks_total", by=["source", "action"]),
              "{{source}} {{action}}")], bars=True, stack=True),
        _row("Notifications"),
        _ts("Notifications by channel and outcome",
            [(_rate(notes, by=["channel", "outcome"]),
              "{{channel}} {{outcome}}")], unit="cps"),
        _ts("Delivery latency by channel", [
            (_quantile(0.5, "escucha_delivery_seconds", by=["channel"]), "{{channel}} p50"),
            (_quantile(0.99, "escucha_delivery_seconds", by=["channel"]), "{{channel}} p99"),
        ], unit="s"),
        _stat("Delivery failure ratio (range)",
              _ratio(_rate(notes, sel='{outcome="failed"}', window=_RANGE),
                     _rate(notes, sel='{outcome=~"delivered|failed"}', window=_RANGE)),
              unit="percentunit", red_at=0.05, w=24),
    ])


def _kafka() -> dict[str, Any]:
    end, committed = ("escucha_faust_topic_partition_end_offset",
                      "escucha_faust_topic_partition_offset_commited")
    lag = f"max by (topic, partition) ({end}) - max by (topic, partition) ({committed})"
    return _dashboard("escucha-kafka", "escucha / Kafka & Faust",
                      "Consumer lag, rebalances, event, producer and commit latency.", [
        _stat("Consumer lag (messages)", f"sum({lag})", red_at=10000),
        _stat("Rebalancing workers", "sum(escucha_faust_total_rebalances)", red_at=1),
        _stat("Messages received", _rate("escucha_faust_messages_received_total"), unit="cps"),
        _stat("Active messages", "sum(escucha_faust_active_messages)"),
        _ts("Consumer lag by topic and partition", [(lag, "{{topic}}/{{partition}}")],
            description="End offset minus committed offset; stale after a partition moves."),
        _ts("Consumer lag by topic", [(f"sum by (topic) ({lag})", "{{topic}}")]),
        _ts("Messages received by topic",
            [(_rate("escucha_faust_messages_received_per_topic_total", by=["topic"]),
              "{{topic}}")], unit="cps", stack=True),
        _ts("Messages sent", [(_rate("escucha_faust_total_sent_messages_total"), "sent")],
            unit="cps"),
        _ts("Rebalances in progress",
            [("max by (instance) (escucha_faust_total_rebalances)", "{{instance}}")]),
        _ts("Event runtime", _quantiles("escucha_faust_events_runtime_ms", (0.5, 0.99)),
            unit="ms"),
        _ts("Producer send latency",
            _quantiles("escucha_faust_producer_send_latency", (0.5, 0.99)), unit="ms"),
        _ts("Consumer commit latency",
            _quantiles("escucha_faust_consumer_commit_latency", (0.5, 0.99)), unit="ms"),
        _ts("Table operations",
            [(_rate("escucha_faust_table_operations_total", by=["table", "operation"]),
              "{{table}} {{operation}}")], unit="ops", w=24),
    ])


# Public surface -------------------------------------------------------------------------------

def build_all() -> dict[str, dict[str, Any]]:
    """Every dashboard, uid → Grafana dashboard JSON (as plain dicts)."""
    built = [_pipeline(), _connectors(), _model(), _incidents(), _kafka()]
    return {d["uid"]: d for d in built}


def _walk(panels: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _walk(panel.get("panels") or [])


def metric_names(dashboard_json: dict[str, Any]) -> set[str]:
    """Every `escucha_*` series named in the dashboard's panel queries, suffixes as written."""
    names: set[str] = set()
    for panel in _walk(dashboard_json.get("panels") or []):
        for target in panel.get("targets") or []:
            names.update(_METRIC.findall(target.get("expr") or ""))
    return names


def render(dashboard_json: dict[str, Any]) -> str:
    """The committed form: sorted keys, two-space indent, trailing newline."""
    return json.dumps(dashboard_json, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _stale(out_dir: Path, rendered: dict[Path, str]) -> list[Path]:
    differ = [p for p, text in rendered.items()
              if not p.is_file() or p.read_text(encoding="utf-8") != text]
    extra = [p for p in out_dir.glob("*.json") if p not in rendered] if out_dir.is_dir() else []
    return sorted(differ + extra)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 listing files that differ from the code")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    args = parser.parse_args(argv)
    out_dir: Path = args.out
    rendered = {out_dir / f"{uid}.json": render(d) for uid, d in build_all().items()}
    if args.check:
        stale = _stale(out_dir, rendered)
        for path in stale:
            print(f"stale: {path} (run: python deploy/grafana/dashboards.py)", file=sys.stderr)
        return 1 if stale else 0
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, text in rendered.items():
        path.write_text(text, encoding="utf-8")
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
