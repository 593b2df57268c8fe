"""The hour-by-hour picture of a surge episode: negatives against what was expected.

A surge signal (agents/detect/surge.py) carries ``series``: each hour of the episode, with six
hours before it for context, observed negatives and the expectation of that hour. The
console draws it as bars against an expectation line, and lists the same numbers in a table
(screen readers, copy-paste into a report).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from streams.core.records import Evidence, SeriesPoint

__all__ = ["episode_section"]


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def episode_section(evidence: Sequence[Evidence]) -> str:
    """The latest episode's chart and table, or "" when no signal carries a series."""
    latest = next((ev for ev in reversed(evidence) if ev.series), None)
    if latest is None:
        return ""
    lasting = latest.lasting_min or 0
    span = f"{lasting / 60:.0f} h" if lasting >= 120 else f"{lasting} min"
    caption = (f"Negative mentions per hour against the expectation; elevated for {span}, "
               f"judged over {(latest.scale_min or 60) // 60} h")
    rows = "".join(
        f'<tr><td>{pt.start:%Y-%m-%d %H:%M}</td><td>{pt.observed:g}</td>'
        f'<td>{pt.expected:g}</td><td>{pt.observed / max(pt.expected, 0.5):.1f}x</td></tr>'
        for pt in latest.series)
    return ('<section aria-labelledby="episode"><h2 id="episode">The episode, hour by hour</h2>'
            + _svg(latest.series, caption)
            + f'<table class="episode"><caption>{_e(caption)}</caption><thead><tr>'
            '<th scope="col">Hour (UTC)</th><th scope="col">Negative</th>'
            '<th scope="col">Expected</th><th scope="col">Ratio</th></tr></thead>'
            f'<tbody>{rows}</tbody></table></section>')


def _svg(series: Sequence[SeriesPoint], title: str) -> str:
    width, height, pad = 640, 180, 32
    top = max([pt.observed for pt in series] + [pt.expected for pt in series] + [1.0])
    slot = (width - 2 * pad) / max(len(series), 1)

    def y(v: float) -> float:
        return height - pad - v / top * (height - 2 * pad)

    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-labelledby="episode-title" '
             f'class="chart"><title id="episode-title">{_e(title)}</title>',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
             'class="axis"/>']
    line = []
    for i, pt in enumerate(series):
        x = pad + i * slot
        parts.append(f'<rect x="{x:.1f}" y="{y(pt.observed):.1f}" width="{slot * 0.8:.1f}" '
                     f'height="{y(0) - y(pt.observed):.1f}" class="bar-neg"/>')
        line.append(f"{x + slot * 0.4:.1f},{y(pt.expected):.1f}")
    parts.append(f'<polyline points="{" ".join(line)}" class="fired" fill="none"/>')
    parts.append(f'<text x="{pad}" y="{pad - 12}" class="label">max {top:g} an hour</text>')
    if series:
        parts.append(f'<text x="{pad}" y="{height - 10}" class="label">'
                     f'{series[0].start:%a %H:%M}</text>'
                     f'<text x="{width - pad}" y="{height - 10}" text-anchor="end" '
                     f'class="label">{series[-1].start:%a %H:%M} UTC</text>')
    parts.append('</svg><p class="legend"><span class="key bar-neg"></span> negative '
                 '<span class="key fired"></span> expected</p>')
    return "".join(parts)
