"""The hour-by-hour picture of a surge episode: negatives against what was expected.

A surge signal (agents/detect/surge.py) carries ``series``: each hour of the episode, with six
hours before it for context, observed negatives and the expectation of that hour. The
console draws it as bars against an expectation line, and lists the same numbers in a table
(screen readers, copy-paste into a report).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from streams.core.records import Evidence, SeriesPoint
from streams.i18n import EN, Lang, format_decimal

__all__ = ["episode_section"]


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _hour(when: datetime, lang: Lang) -> str:
    # Unconfigured (English, UTC) keeps the ISO hour; a reader's locale gets its date and
    # zone, so a Madrid reader's 09:00 is the 09:00 they lived.
    return f"{when:%Y-%m-%d %H:%M}" if lang.unset else lang.at(when, format="short")


def episode_section(evidence: Sequence[Evidence], lang: Lang = EN) -> str:
    """The latest episode's chart and table in ``lang``, or "" when no signal carries a
    series."""
    _ = lang._
    latest = next((ev for ev in reversed(evidence) if ev.series), None)
    if latest is None:
        return ""
    lasting = latest.lasting_min or 0
    span = (_("{hours} h").format(hours=f"{lasting / 60:.0f}") if lasting >= 120
            else _("{minutes} min").format(minutes=lasting))
    caption = _("Negative mentions per hour against the expectation; elevated for {span}, "
                "judged over {hours} h").format(span=span,
                                                 hours=(latest.scale_min or 60) // 60)
    rows = "".join(
        f'<tr><td>{_e(_hour(pt.start, lang))}</td><td>{_num(pt.observed, lang)}</td>'
        f'<td>{_num(pt.expected, lang)}</td>'
        f'<td>{_num(pt.observed / max(pt.expected, 0.5), lang, "0.0")}x</td></tr>'
        for pt in latest.series)
    hour = _("Hour (UTC)") if lang.unset else _("Hour")
    return (f'<section aria-labelledby="episode"><h2 id="episode">'
            f'{_e(_("The episode, hour by hour"))}</h2>'
            + _svg(latest.series, caption, lang)
            + f'<table class="episode"><caption>{_e(caption)}</caption><thead><tr>'
            f'<th scope="col">{_e(hour)}</th><th scope="col">{_e(_("Negative"))}</th>'
            f'<th scope="col">{_e(_("Expected"))}</th><th scope="col">{_e(_("Ratio"))}</th>'
            f'</tr></thead><tbody>{rows}</tbody></table></section>')


def _num(value: float, lang: Lang, pattern: str | None = None) -> str:
    if lang.unset:  # the historic figures: 8.5, 2.9
        return f"{value:.1f}" if pattern else f"{value:g}"
    return format_decimal(value, lang.locale, format=pattern or "#,##0.###")


def _svg(series: Sequence[SeriesPoint], title: str, lang: Lang) -> str:
    _ = lang._
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
    top_text = _("max {count} an hour").format(count=_num(top, lang))
    parts.append(f'<text x="{pad}" y="{pad - 12}" class="label">{_e(top_text)}</text>')
    if series:
        if lang.unset:
            first, last = f"{series[0].start:%a %H:%M}", f"{series[-1].start:%a %H:%M} UTC"
        else:
            first, last = lang.hm(series[0].start), lang.hm(series[-1].start)
        parts.append(f'<text x="{pad}" y="{height - 10}" class="label">{_e(first)}</text>'
                     f'<text x="{width - pad}" y="{height - 10}" text-anchor="end" '
                     f'class="label">{_e(last)}</text>')
    parts.append(f'</svg><p class="legend"><span class="key bar-neg"></span> '
                 f'{_e(_("negative"))} <span class="key fired"></span> '
                 f'{_e(_("expected"))}</p>')
    return "".join(parts)
