"""A report's charts as PNG bytes (matplotlib, Agg): volume, sentiment, share of voice.

Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas, never pyplot: no
global state, no display, safe in a worker thread (the scheduler renders off the event loop).
Labels come from config and the data (watch names, dates), never from mention text; a ``$``
in a watch name is escaped so matplotlib does not read it as mathtext. The words around them
are in the report's language and numbers are written its way (``1.234``, ``45 %`` in
Spanish), like the rest of the report.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from streams.i18n import format_decimal, format_percent, translator
from streams.reports.data import ReportData, WatchReport

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["CHART_KINDS", "figure_texts", "render_charts", "sentiment_chart", "sentiment_figure",
           "sov_chart", "sov_figure", "volume_chart", "volume_figure"]

#: The charts of one watch, in the order a report shows them.
CHART_KINDS: tuple[str, ...] = ("volume", "sentiment", "sov")
_NEG, _NEU, _POS = "#d64541", "#b0b7bf", "#2e9d5b"
_BAR, _LINE, _INK, _GRID = "#3b6ea8", "#d64541", "#2b2f33", "#e3e6ea"
_DPI = 110


def _text(s: str) -> str:
    return s.replace("$", r"\$")


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _style(ax: Any) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(colors=_INK, labelsize=8)
    ax.set_axisbelow(True)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    # No metadata: the same data gives the same bytes (a re-sent report is identical).
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def figure_texts(fig: Figure) -> list[str]:
    """Every text a figure draws (titles, axis labels, ticks, legends, annotations): what
    the tests read to check a chart's language."""
    from matplotlib.text import Text

    fig.canvas.draw()  # tick labels exist once drawn
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def _int(n: int, data: ReportData) -> str:
    return format_decimal(n, data.locale, format="#,##0")


def _pct(percent: float, data: ReportData, decimals: int = 0) -> str:
    return format_percent(percent / 100, data.locale, decimals=decimals)


def volume_chart(data: ReportData, watch: WatchReport) -> bytes:
    return _png(volume_figure(data, watch))


def volume_figure(data: ReportData, watch: WatchReport) -> Figure:
    """Mentions per day (bars) and the negative share (line, right axis)."""
    _ = translator(data.locale).gettext
    fig = _figure(8.0, 3.2)
    ax = fig.add_subplot()
    _style(ax)
    xs = list(range(len(watch.series)))
    counts = [p.count for p in watch.series]
    ax.bar(xs, counts, color=_BAR, width=0.7, label=_("mentions"))
    ax.set_ylabel(_("mentions"), color=_INK, fontsize=9)
    ax.yaxis.grid(True, color=_GRID)
    every = max(1, len(xs) // 12)  # at most ~12 labels, whatever the period
    ax.set_xticks(xs[::every], [p.label for p in watch.series][::every],
                  rotation=0 if len(xs) <= 8 else 45, ha="center" if len(xs) <= 8 else "right")
    share = ax.twinx()
    share.plot(xs, [100 * p.negative_share for p in watch.series], color=_LINE, marker="o",
               markersize=3, linewidth=1.6, label=_("negative %"))
    share.set_ylim(0, 100)
    share.set_ylabel(_("negative %"), color=_LINE, fontsize=9)
    share.tick_params(colors=_LINE, labelsize=8)
    share.spines["top"].set_visible(False)
    for x, c in zip(xs, counts, strict=True):
        if c and len(xs) <= 14:
            # Drawn on the twin axes, over the line, on white: the line may cross a bar's top.
            share.annotate(_int(c, data), (x, c), xycoords=ax.transData, ha="center", va="bottom",
                           fontsize=7, color=_INK, xytext=(0, 2), textcoords="offset points",
                           bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                                 "alpha": 0.85})
    ax.set_ylim(0, max([*counts, 1]) * 1.18)
    title = (_("{watch}: mentions per hour and negative share") if data.step == "h"
             else _("{watch}: mentions per day and negative share"))
    ax.set_title(_text(title.format(watch=watch.name)), fontsize=10, color=_INK, loc="left")
    return fig


def sentiment_chart(data: ReportData, watch: WatchReport) -> bytes:
    return _png(sentiment_figure(data, watch))


def sentiment_figure(data: ReportData, watch: WatchReport) -> Figure:
    """Negative / neutral / positive shares, this period against the previous one."""
    _ = translator(data.locale).gettext
    fig = _figure(8.0, 1.9)
    ax = fig.add_subplot()
    _style(ax)
    rows = [(_("previous"), watch.previous), (_("this period"), watch.current)]
    shown = {"negative": _("negative"), "neutral": _("neutral"), "positive": _("positive")}
    for y, (_name, summary) in enumerate(rows):
        left = 0.0
        for label, color in (("negative", _NEG), ("neutral", _NEU), ("positive", _POS)):
            width = 100 * summary.sentiment_share[label]
            ax.barh(y, width, left=left, color=color, height=0.6,
                    label=shown[label] if y == 0 else None)
            if width >= 6:
                ax.text(left + width / 2, y, _pct(width, data), ha="center", va="center",
                        fontsize=8, color="white" if label != "neutral" else _INK)
            left += width
    ax.set_yticks([0, 1], [f"{name}\n({_int(s.count, data)})" for name, s in rows],
                  fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_xlabel(_("% of mentions"), fontsize=8, color=_INK)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=3, fontsize=8,
              frameon=False)
    ax.set_title(_text(_("{watch}: sentiment").format(watch=watch.name)), fontsize=10,
                 color=_INK, loc="left")
    return fig


def sov_chart(data: ReportData, watch: WatchReport) -> bytes:
    return _png(sov_figure(data, watch))


def sov_figure(data: ReportData, watch: WatchReport) -> Figure:
    """Share of voice: each compared watch's percent of their mentions together."""
    _ = translator(data.locale).gettext
    ids = list(watch.share_of_voice)
    fig = _figure(8.0, 0.8 + 0.45 * max(2, len(ids)))
    ax = fig.add_subplot()
    _style(ax)
    ys = list(range(len(ids)))[::-1]  # this watch on top
    values = [watch.share_of_voice[w] for w in ids]
    colors = [_BAR if w == watch.watch_id else _NEU for w in ids]
    ax.barh(ys, values, color=colors, height=0.6)
    for y, w, v in zip(ys, ids, values, strict=True):
        ax.text(v + 1, y, f"{_pct(v, data, 1)}  ({_int(watch.sov_counts[w], data)})",
                va="center", fontsize=8, color=_INK)
    ax.set_yticks(ys, [_text(watch.names.get(w, w)) for w in ids], fontsize=8)
    ax.set_xlim(0, 115)
    ax.set_xlabel(_("% of mentions among the compared watches"), fontsize=8, color=_INK)
    title = (_("{watch}: share of voice") if len(ids) > 1
             else _("{watch}: share of voice (no competitors configured)"))
    ax.set_title(_text(title.format(watch=watch.name)), fontsize=10, color=_INK, loc="left")
    return fig


_CHARTS = {"volume": volume_chart, "sentiment": sentiment_chart, "sov": sov_chart}


def render_charts(data: ReportData) -> dict[str, bytes]:
    """Every chart of the report, keyed ``'<kind>-<watch id>'`` (kinds: CHART_KINDS)."""
    return {f"{kind}-{w.watch_id}": _CHARTS[kind](data, w)
            for w in data.watches for kind in CHART_KINDS}
