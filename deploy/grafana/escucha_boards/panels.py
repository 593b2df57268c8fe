"""Grafana panels (grafanalib) laid out on a 24-column grid, and the dashboard around them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

import attr
from grafanalib import core as gl
from grafanalib._gen import DashboardEncoder

__all__ = ["LOADED", "Cell", "dashboard", "row", "stat", "ts"]

_DS = {"type": "prometheus", "uid": "${datasource}"}
_WIDTH = 24
_SCHEMA_VERSION = 39  # Grafana 10/11: no legacy migrations run on load


class Cell(NamedTuple):
    panel: Any
    w: int
    h: int


def _targets(queries: Sequence[tuple[str, str]]) -> list[gl.Target]:
    return [gl.Target(expr=expr, legendFormat=legend, refId=chr(ord("A") + i),
                      datasource=_DS, intervalFactor=1)
            for i, (expr, legend) in enumerate(queries)]


def ts(title: str, queries: Sequence[tuple[str, str]], *, unit: str = "short",
        description: str = "", w: int = 12, h: int = 8, bars: bool = False,
        stack: bool = False) -> Cell:
    panel = gl.TimeSeries(
        title=title, description=description or None, dataSource=_DS,
        targets=_targets(queries), unit=unit, tooltipMode="multi", showPoints="never",
        fillOpacity=60 if bars else 10, drawStyle="bars" if bars else "line",
        stacking={"mode": "normal", "group": "A"} if stack else {},
        thresholds=[{"color": "green", "value": None}],
    )
    return Cell(panel, w, h)


def stat(title: str, expr: str, *, unit: str = "none", description: str = "",
          legend: str = "", red_at: float | None = None, green_at: float | None = None,
          mappings: Sequence[dict[str, Any]] = (), no_value: str = "0", w: int = 6,
          h: int = 4) -> Cell:
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
    return Cell(panel, w, h)


def row(title: str) -> Cell:
    return Cell(gl.RowPanel(title=title), _WIDTH, 1)


def _layout(cells: Sequence[Cell]) -> list[Any]:
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


def dashboard(uid: str, title: str, description: str, cells: Sequence[Cell]) -> dict[str, Any]:
    datasource = gl.Template(
        name="datasource", label="Data source", query="prometheus", type="datasource",
        default="prometheus", regex="",
    )
    link = {"asDropdown": True, "icon": "external link", "includeVars": True, "keepTime": True,
            "tags": ["escucha"], "title": "escucha", "type": "dashboards"}
    board = gl.Dashboard(
        title=title, uid=uid, description=description, tags=["escucha"], timezone="browser",
        refresh="30s", time=gl.Time("now-6h", "now"), graphTooltip=1, editable=False,
        templating=gl.Templating(list=[datasource]), links=[link], panels=_layout(cells),
        schemaVersion=_SCHEMA_VERSION,
    ).auto_panel_ids()
    data: dict[str, Any] = json.loads(json.dumps(board.to_json_data(), cls=DashboardEncoder))
    return data


LOADED = [{"type": "value", "options": {
    "0": {"index": 0, "text": "not loaded", "color": "red"},
    "1": {"index": 1, "text": "loaded", "color": "green"},
}}]
