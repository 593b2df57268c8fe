"""HTML for the console, rendered on the server. Everything from a mention or config is escaped.

No template engine and no front-end build: a handful of pages, each a function of plain data,
and one small script (``console.js``) for live updates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from notifiers.stories import summary_for
from streams.core.records import Evidence, Incident
from streams.core.silences import Silence, SilenceState
from streams.i18n import (
    N_,
    Lang,
    Translations,
    format_datetime,
    format_decimal,
    label,
    translator,
)
from streams.i18n.timeline import claim_of, kind_of, say
from streams.web.console.auth import Session
from streams.web.console.episode import episode_section
from streams.web.console.silences import silences_section

__all__ = ["Filters", "OnCallLine", "WatchCard", "chart_svg", "incident_page", "incident_rows",
           "list_page", "live_status", "login_page", "mentions_page", "message_page", "page",
           "safe_url",
           "silences_page", "watches_page"]

SILENCE_CHOICES = (("30", N_("30 minutes")), ("60", N_("1 hour")), ("240", N_("4 hours")),
                   ("1440", N_("24 hours")))
_SEVERITIES = ("critical", "warning", "info")
_STATES = ("open", "acknowledged", "resolved")


def e(value: object) -> str:
    return escape(str(value), quote=True)


def safe_url(url: str | None) -> str | None:
    """Only http(s) links: a ``javascript:`` URL in a mention must not become a live link."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def _tr(session: Session | None, locale: str = "en") -> Translations:
    """The signed-in user's language; before sign-in, ``locale`` (the default's)."""
    return translator(session.locale if session is not None else locale)


def _when(t: datetime | None, session: Session | None = None) -> str:
    if t is None:
        return ""
    t = t.astimezone(UTC)
    shown = (format_datetime(t, session.locale, session.timezone) if session is not None
             else f"{t:%Y-%m-%d %H:%M} UTC")
    return f'<time datetime="{e(t.isoformat())}">{e(shown)}</time>'


@dataclass(frozen=True)
class Filters:
    watch: str = ""
    severity: str = ""
    state: str = ""

    def keep(self, inc: Incident) -> bool:
        return ((not self.watch or inc.watch_id == self.watch)
                and (not self.severity or inc.severity == self.severity)
                and (not self.state or inc.state == self.state))

    def query(self) -> str:
        return urlencode({k: v for k, v in vars(self).items() if v})


@dataclass(frozen=True)
class OnCallLine:
    policy: str
    level: int
    targets: str
    current: bool


@dataclass(frozen=True)
class WatchCard:
    id: str
    name: str
    day: Mapping[str, Any]          # summary over 24 h: count, negative_pct, reach, ...
    week: Mapping[str, Any]
    day_series: Sequence[tuple[datetime, int, int]]   # (start, count, negative)
    week_series: Sequence[tuple[datetime, int, int]]
    share_of_voice: Mapping[str, float]               # watch name -> percent
    top: Sequence[Mapping[str, Any]]                  # top mentions by priority


def _layout(title: str, body: str, *, session: Session | None, csrf: str = "",
            active: str = "", locale: str = "en") -> str:
    tr = _tr(session, locale)
    _ = tr.gettext
    nav = ""
    if session is not None:
        links = [("incidents", "/console", _("Incidents")),
                 ("watches", "/console/watches", _("Watches")),
                 ("mentions", "/console/mentions", _("Mentions")),
                 ("silences", "/console/silences", _("Silences"))]
        items = "".join(
            f'<li><a href="{href}"{" aria-current=page" if key == active else ""}>{text}</a></li>'
            for key, href, text in links)
        role = _("responder") if session.can_act else _("viewer (read-only)")
        nav = (f'<nav aria-label="{_("Main")}"><ul>{items}</ul><span class="who">'
               f'{e(session.user)} · {role}</span><form method="post" action="/console/logout" '
               f'class="inline"><input type="hidden" name="csrf" value="{e(csrf)}">'
               f'<button type="submit" class="link">{_("Sign out")}</button></form></nav>')
    lang = e(session.locale if session is not None else locale).split("_")[0]
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{e(title)} · escucha</title>'
        '<link rel="stylesheet" href="/console/static/console.css">'
        '<script src="/console/static/console.js" defer></script></head><body>'
        f'<a class="skip" href="#main">{_("Skip to content")}</a>'
        f'<header><span class="brand">escucha</span>{nav}</header>'
        f'<main id="main" tabindex="-1">{body}</main></body></html>')


def page(title: str, body: str, *, session: Session | None, csrf: str = "") -> str:
    """A console page around ``body`` (HTML already escaped), for pages built in other
    modules (claims)."""
    return _layout(title, body, session=session, csrf=csrf)


def message_page(title: str, text: str = "", *, session: Session | None = None,
                 locale: str = "en", detail: str = "") -> str:
    """An error or notice page in the reader's language (the session's; signed out, the
    browser's, ``locale``). ``title`` and ``text`` are source strings, marked ``N_`` where
    they are written and translated here; ``detail`` is data (a message naming a field or a
    value) shown after them as it is."""
    _ = _tr(session, locale).gettext
    said = " ".join(p for p in (_(text) if text else "", detail) if p)
    return _layout(_(title), f"<h1>{e(_(title))}</h1><p>{e(said)}</p>", session=session,
                   locale=locale)


def silences_page(silences: Sequence[tuple[Silence, SilenceState]], *, session: Session,
                  csrf: str, notice: str = "") -> str:
    body = silences_section(silences, session=session, csrf=csrf, notice=notice,
                            lang=Lang(session.locale, session.timezone))
    return _layout(_tr(session).gettext("Silences"), body, session=session, csrf=csrf,
                   active="silences")


def mentions_page(body: str, *, session: Session, csrf: str) -> str:
    """``body`` from console/mentions.py (escaped there) in the console's layout."""
    return _layout(_tr(session).gettext("Mentions"), body, session=session, csrf=csrf,
                   active="mentions")


def login_page(*, csrf: str, error: str = "", next_url: str = "/console",
               locale: str = "en") -> str:
    """``locale``: before sign-in nobody is known; the console's default language."""
    _ = _tr(None, locale).gettext
    err = f'<p class="error" role="alert">{e(_(error))}</p>' if error else ""
    body = (
        f'<h1>{_("Sign in")}</h1>{err}'
        '<form method="post" action="/console/login" class="card">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        f'<input type="hidden" name="next" value="{e(next_url)}">'
        f'<fieldset><legend>{_("With a username and password")}</legend>'
        f'<label for="username">{_("Username")}</label>'
        '<input id="username" name="username" autocomplete="username">'
        f'<label for="password">{_("Password")}</label>'
        '<input id="password" name="password" type="password" autocomplete="current-password">'
        f'</fieldset><fieldset><legend>{_("Or with an access token")}</legend>'
        f'<label for="token">{_("Token")}</label>'
        '<input id="token" name="token" type="password" autocomplete="off"></fieldset>'
        f'<button type="submit">{_("Sign in")}</button></form>')
    return _layout(_("Sign in"), body, session=None, locale=locale)


def _badge(severity: str, tr: Translations) -> str:
    return f'<span class="sev sev-{e(severity)}">{e(label(tr, severity))}</span>'


def _state(state: str, tr: Translations) -> str:
    return f'<span class="state state-{e(state)}">{e(label(tr, state))}</span>'


def incident_rows(incidents: Iterable[Incident], names: Mapping[str, str],
                  session: Session | None = None) -> str:
    tr = _tr(session)
    lang = Lang(session.locale, session.timezone) if session is not None else None

    def shown(inc: Incident) -> str:
        return summary_for(inc, lang) if lang is not None else inc.summary

    rows = []
    for inc in incidents:
        name = names.get(inc.watch_id, inc.watch_id)
        rows.append(
            f'<tr data-id="{e(inc.id)}" class="row-{e(inc.state)}">'
            f'<td>{_badge(inc.severity, tr)}</td><td>{_state(inc.state, tr)}</td>'
            f'<td><a href="/console/incidents/{e(inc.id)}">{e(name)}'
            f': {e(inc.detector.replace("_", " "))}</a>'
            f'<div class="summary">{e(shown(inc)[:240])}</div></td>'
            f'<td>{_when(inc.opened_at, session)}</td><td>{e(inc.level)}</td>'
            f'<td>{e(inc.acked_by or "")}</td></tr>')
    if not rows:
        rows.append(f'<tr><td colspan="6" class="empty">{tr.gettext("No incidents match.")}'
                    '</td></tr>')
    return "".join(rows)


def _select(name: str, text: str, options: Sequence[tuple[str, str]], chosen: str,
            tr: Translations) -> str:
    opts = "".join(f'<option value="{e(v)}"{" selected" if v == chosen else ""}>{e(t)}</option>'
                   for v, t in [("", tr.gettext("all")), *options])
    return f'<label>{text} <select name="{name}">{opts}</select></label>'


def list_page(incidents: Sequence[Incident], *, names: Mapping[str, str], filters: Filters,
              session: Session, csrf: str) -> str:
    tr = _tr(session)
    _ = tr.gettext
    form = (
        f'<form method="get" action="/console" class="filters" '
        f'aria-label="{_("Filter incidents")}">'
        + _select("watch", _("Watch"), list(names.items()), filters.watch, tr)
        + _select("severity", _("Severity"), [(s, label(tr, s)) for s in _SEVERITIES],
                  filters.severity, tr)
        + _select("state", _("State"), [(s, label(tr, s)) for s in _STATES], filters.state, tr)
        + f'<button type="submit">{_("Filter")}</button></form>')
    status = live_status(incidents, session)
    body = (
        f'<h1>{_("Incidents")}</h1>{form}'
        f'<p id="live-status" role="status" aria-live="polite" data-count="{len(incidents)}">'
        f'{e(status["status"])}</p>'
        f'<div class="table-wrap"><table class="incidents"><caption class="sr-only">'
        f'{_("Incidents, newest first")}</caption><thead><tr>'
        f'<th scope="col">{_("Severity")}</th><th scope="col">{_("State")}</th>'
        f'<th scope="col">{_("Incident")}</th><th scope="col">{_("Opened")}</th>'
        f'<th scope="col">{_("Level")}</th><th scope="col">{_("Acknowledged by")}</th>'
        '</tr></thead>'
        f'<tbody id="incident-rows" data-live="/console/events?{e(filters.query())}">'
        f'{incident_rows(incidents, names, session)}</tbody></table></div>')
    return _layout(_("Incidents"), body, session=session, csrf=csrf, active="incidents")


def live_status(incidents: Sequence[Incident], session: Session) -> dict[str, str]:
    """The list's live line and the "N new." template (``{n}``) console.js fills in; plain
    text, set with textContent."""
    _ = _tr(session).gettext
    open_count = sum(1 for i in incidents if i.state == "open")
    return {"status": _("{shown} shown, {open} open. Updates appear live.").format(
                shown=format_decimal(len(incidents), session.locale),
                open=format_decimal(open_count, session.locale)),
            "fresh": _("{n} new.")}


def chart_svg(evidence: Sequence[Evidence], series: Sequence[tuple[datetime, int, int]],
              *, title: str, session: Session | None = None) -> str:
    """Mentions per bucket over time (negative darker), with a marker where each signal fired,
    then each signal's observed count beside its expected count.

    Detectors count different things over different windows (negative mentions in 5 min, risk
    terms in 15 min), so observed/expected are compared per signal, not drawn on the volume
    axis. The table under the chart holds the same numbers as text.
    """
    tr = _tr(session)
    series = list(series)
    # Empty buckets before the first and after the last mention only squash what matters.
    while series and series[0][1] == 0:
        series.pop(0)
    while series and series[-1][1] == 0:
        series.pop()
    if not series and not evidence:
        return f'<p>{tr.gettext("No numbers recorded for this incident yet.")}</p>'
    lang = Lang(session.locale, session.timezone) if session is not None else None
    return _volume_svg(series, evidence, title, tr, lang) + _signals_svg(evidence, tr)


def _volume_svg(series: list[tuple[datetime, int, int]], evidence: Sequence[Evidence],
                title: str, tr: Translations, lang: Lang | None = None) -> str:
    """``lang`` carries the reader's clock: the axis reads in their time zone, named (a
    responder in Madrid compares it with the clock on the wall, not with UTC)."""
    _ = tr.gettext
    width, height, pad = 640, 200, 32
    times = [t for t, _c, _n in series] + [ev.window_end for ev in evidence]
    step = (series[1][0] - series[0][0]).total_seconds() if len(series) > 1 else 300.0
    t0, t1 = min(times).timestamp(), max(times).timestamp() + step
    span = max(t1 - t0, 60.0)
    top = max([c for _t, c, _n in series] + [1])

    def x(t: datetime) -> float:
        return pad + (t.timestamp() - t0) / span * (width - 2 * pad)

    def y(v: float) -> float:
        return height - pad - v / top * (height - 2 * pad)

    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-labelledby="chart-title" '
             f'class="chart"><title id="chart-title">{e(title)}</title>',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
             'class="axis"/>']
    bar = max(2.0, step / span * (width - 2 * pad) * 0.85)
    for t, count, neg in series:
        parts.append(f'<rect x="{x(t):.1f}" y="{y(count):.1f}" width="{bar:.1f}" '
                     f'height="{y(0) - y(count):.1f}" class="bar"/>')
        parts.append(f'<rect x="{x(t):.1f}" y="{y(neg):.1f}" width="{bar:.1f}" '
                     f'height="{y(0) - y(neg):.1f}" class="bar-neg"/>')
    for at in sorted({ev.window_end for ev in evidence}):
        parts.append(f'<line x1="{x(at):.1f}" y1="{pad - 6}" x2="{x(at):.1f}" '
                     f'y2="{height - pad}" class="fired"/>')
    parts.append(f'<text x="{pad}" y="{pad - 12}" class="label">'
                 + e(_("max {top} per {minutes} min").format(top=top, minutes=f"{step / 60:g}"))
                 + '</text>')
    start, end = datetime.fromtimestamp(t0, UTC), datetime.fromtimestamp(t1, UTC)
    if lang is None:
        first, last = f"{start:%H:%M}", f"{end:%H:%M} UTC"
    else:
        first, last = lang.hm(start), lang.hm(end)  # "09:55 CET": the zone named
    parts.append(f'<text x="{pad}" y="{height - 10}" class="label">{e(first)}</text>')
    parts.append(f'<text x="{width - pad}" y="{height - 10}" text-anchor="end" class="label">'
                 f'{e(last)}</text></svg>')
    legend = (f'<p class="legend"><span class="key bar"></span> {_("mentions")} '
              f'<span class="key bar-neg"></span> {_("negative")} '
              f'<span class="key fired"></span> {_("a signal fired")}</p>')
    return "".join(parts) + legend


def _signals_svg(evidence: Sequence[Evidence], tr: Translations) -> str:
    """One row per detector's latest signal: observed (red) against expected (grey)."""
    latest: dict[str, Evidence] = {}
    for ev in evidence:
        latest[ev.detector] = ev
    if not latest:
        return ""
    row, label_w, width = 34, 150, 640
    height = row * len(latest) + 10
    _ = tr.gettext
    aria = e(_("Each detector's latest signal: observed against expected"))
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" class="chart signals" '
             f'aria-label="{aria}">']
    for i, ev in enumerate(latest.values()):
        top = max(ev.observed, ev.expected, 1e-9)
        scale = (width - label_w - 120) / top
        yy = 8 + i * row
        parts.append(f'<text x="0" y="{yy + 17}" class="label">'
                     f'{e(ev.detector.replace("_", " "))}</text>')
        parts.append(f'<rect x="{label_w}" y="{yy}" width="{max(ev.observed * scale, 1):.1f}" '
                     'height="11" class="bar-neg"/>')
        parts.append(f'<rect x="{label_w}" y="{yy + 13}" '
                     f'width="{max(ev.expected * scale, 1):.1f}" height="11" class="bar"/>')
        parts.append(f'<text x="{label_w + ev.observed * scale + 6:.1f}" y="{yy + 10}" '
                     f'class="label">{_("observed {value}").format(value=f"{ev.observed:g}")}'
                     '</text>')
        parts.append(f'<text x="{label_w + ev.expected * scale + 6:.1f}" y="{yy + 23}" '
                     f'class="label">{_("expected {value}").format(value=f"{ev.expected:g}")}'
                     '</text>')
    return "".join(parts) + "</svg>"


def _actions(inc: Incident, session: Session, csrf: str) -> str:
    _ = _tr(session).gettext
    if not session.can_act:
        note = _("You are signed in read-only; a responder can acknowledge, resolve or silence.")
        return f'<p class="note" id="actions">{note}</p>'
    hidden = f'<input type="hidden" name="csrf" value="{e(csrf)}">'
    base = f"/console/incidents/{e(inc.id)}"
    buttons = []
    if inc.state == "open":
        buttons.append(f'<form method="post" action="{base}/ack">{hidden}'
                       f'<button type="submit" class="primary">{_("Acknowledge")}</button></form>')
    if inc.state != "resolved":
        buttons.append(f'<form method="post" action="{base}/resolve">{hidden}'
                       f'<button type="submit">{_("Resolve")}</button></form>')
    options = "".join(f'<option value="{v}">{_(t)}</option>' for v, t in SILENCE_CHOICES)
    buttons.append(
        f'<form method="post" action="{base}/silence">{hidden}'
        f'<label for="silence-minutes">{_("Silence for")}</label> <select id="silence-minutes" '
        f'name="minutes">{options}</select> <button type="submit">{_("Silence")}</button></form>')
    return f'<div class="actions" id="actions">{"".join(buttons)}</div>'


def _playbook(inc: Incident, session: Session, csrf: str) -> str:
    book = inc.playbook
    if book is None:
        return ""
    _ = _tr(session).gettext
    done = {d.step: d for d in book.done}
    steps = []
    for step in book.steps:
        owner = f' <span class="owner">({e(step.owner)})</span>' if step.owner else ""
        if step.id in done:
            d = done[step.id]
            steps.append(f'<li class="done"><span aria-hidden="true">✓</span> '
                         f'<s>{e(step.text)}</s>{owner} <span class="by">'
                         f'{_("done by {who}").format(who=e(d.by))} '
                         f'{_when(d.at, session)}</span></li>')
        elif session.can_act and inc.state != "resolved":
            steps.append(
                f'<li><form method="post" action="/console/incidents/{e(inc.id)}/step" '
                f'class="inline"><input type="hidden" name="csrf" value="{e(csrf)}">'
                f'<input type="hidden" name="step" value="{e(step.id)}">'
                f'<button type="submit" class="step">{_("Mark done")}</button></form> '
                f'{e(step.text)}{owner}</li>')
        else:
            steps.append(f'<li><span aria-hidden="true">○</span> {e(step.text)}{owner}</li>')
    templates = "".join(
        f'<details><summary>{e(t.channel)} · {e(t.language)}</summary>'
        f'<blockquote class="template">{e(t.text)}</blockquote></details>'
        for t in book.templates_for(inc.language))
    people = (f'<dl class="facts"><dt>{_("Owner")}</dt><dd>{e(book.owner)}</dd>'
              + (f'<dt>{_("Experts")}</dt><dd>{"; ".join(e(x) for x in book.experts)}</dd>'
                 if book.experts else "")
              + (f'<dt>{_("Approval")}</dt><dd>{e(book.approval)}</dd>' if book.approval
                 else "")
              + '</dl>')
    dont = "".join(f"<li>{e(rule)}</li>" for rule in book.do_not_respond)
    return (f'<section aria-labelledby="playbook" id="playbook-section"><h2 id="playbook">'
            f'{_("Playbook: {name}").format(name=e(book.name))}</h2>{people}'
            f'<h3>{_("Steps")}</h3><ul class="steps">{"".join(steps)}</ul>'
            + (f'<h3>{_("Do not respond")}</h3><ul class="dont">{dont}</ul>' if dont else "")
            + (f'<h3>{_("Approved starting points (never posted automatically)")}</h3>'
               f'{templates}' if templates else "")
            + '</section>')


def incident_page(inc: Incident, *, watch_name: str, oncall: Sequence[OnCallLine],
                  series: Sequence[tuple[datetime, int, int]], authors: Sequence[tuple[str, int]],
                  session: Session, csrf: str, notice: str = "",
                  mentions_link: str = "", joined_watches: Sequence[str] = ()) -> str:
    """``mentions_link``: HTML from ``console.mentions.incident_mentions_link`` (escaped);
    ``joined_watches``: names of the watches whose incidents joined this one (same story)."""
    tr = _tr(session)
    _ = tr.gettext
    latest = inc.evidence[-1] if inc.evidence else None
    terms = latest.top_terms if latest else []
    facts = (
        f'<dl class="facts"><dt>{_("State")}</dt><dd id="incident-state">'
        f'{_state(inc.state, tr)}</dd>'
        f'<dt>{_("Severity")}</dt><dd>{_badge(inc.severity, tr)}</dd>'
        f'<dt>{_("Watch")}</dt><dd id="incident-watches">'
        f'{e(", ".join([watch_name, *joined_watches]))}</dd>'
        + (f'<dt>{_("Merged into")}</dt><dd><a href="/console/incidents/'
           f'{e(quote(inc.merged_into, safe=""))}">{e(inc.merged_into)}</a></dd>'
           if inc.merged_into else "")
        + f'<dt>{_("Detector")}</dt><dd>{e(inc.detector)}</dd>'
        f'<dt>{_("Opened")}</dt><dd>{_when(inc.opened_at, session)}</dd>'
        f'<dt>{_("Escalation level")}</dt><dd>{e(inc.level)}</dd>'
        + (f'<dt>{_("Acknowledged")}</dt><dd>{e(inc.acked_by)} '
           f'{_when(inc.acked_at, session)}</dd>' if inc.acked_by else "")
        + (f'<dt>{_("Resolved")}</dt><dd>{e(inc.resolved_by)} '
           f'{_when(inc.resolved_at, session)}</dd>' if inc.resolved_by else "")
        + '</dl>')
    numbers = "".join(
        f'<tr><td>{_when(ev.window_end, session)}</td><td>{e(ev.detector)}</td>'
        f'<td>{ev.observed:g}</td>'
        f'<td>{ev.expected:g}</td><td>{ev.score:g}</td></tr>' for ev in inc.evidence[-10:])
    explanation = (
        f'<section aria-labelledby="why"><h2 id="why">{_("Why this fired")}</h2>'
        # In the user's language and zone; escaped after rendering (mention text inside).
        f'<p class="summary">{e(summary_for(inc, Lang(session.locale, session.timezone)))}</p>'
        + chart_svg(inc.evidence, series, session=session, title=_(
            "Mentions of {watch} over time, with observed against expected").format(
                watch=watch_name))
        + f'<table><caption>{_("Signals: observed against expected")}</caption><thead><tr>'
        f'<th scope="col">{_("Window end")}</th><th scope="col">{_("Detector")}</th>'
        f'<th scope="col">{_("Observed")}</th><th scope="col">{_("Expected")}</th>'
        f'<th scope="col">{_("Score")}</th></tr></thead>'
        f'<tbody>{numbers}</tbody></table>'
        f'<div class="cols"><div><h3>{_("Top terms")}</h3><ol class="terms">'
        + "".join(f"<li>{e(t)}</li>" for t in terms) + '</ol></div>'
        f'<div><h3>{_("Top authors")}</h3><ol class="authors">'
        + "".join(f"<li>@{e(a)} ({n})</li>" for a, n in authors) + '</ol></div></div></section>'
        + episode_section(inc.evidence, Lang(session.locale, session.timezone)))
    samples = "".join(
        '<li class="mention">'
        + (f'<a href="{e(u)}" rel="noopener noreferrer nofollow" target="_blank">@{e(s.author)}'
           '</a>' if (u := safe_url(s.url)) else f"@{e(s.author)}")
        + f' <span class="sentiment">{e(s.sentiment or "")}</span>'
        f' <span class="priority">{_("priority {priority}").format(priority=e(s.priority))}'
        '</span>'
        + (f' <span class="lang">{e(s.language)}</span>' if s.language else "")
        + f'<blockquote>{e(s.text)}</blockquote>'
        # Who answers it (streams/web/console/claims.py): claimed there, shown here.
        + f'<p class="claim-state"><a href="/console/claims/{e(quote(s.key, safe=""))}">'
        f'{e(claim_of(s.claim, s.claim_phrase, tr) or _("Who answers this?"))}</a></p></li>'
        for s in inc.samples)
    now = " " + _("(now)")
    who = "".join(
        f'<li{" class=current" if line.current else ""}>'
        + _("{policy}, level {level}: {targets}").format(
            policy=e(line.policy), level=line.level, targets=e(line.targets))
        + f'{now if line.current else ""}</li>' for line in oncall)
    timeline = "".join(
        f'<li><span class="tl-kind" data-kind="{e(t.kind)}">{e(kind_of(t.kind, tr))}</span> '
        f'{_when(t.at, session)} '
        # In the reader's language and zone (streams/i18n/timeline.py); escaped after.
        f'{e(say(t, locale=session.locale, timezone=session.timezone))}'
        f'{(" — " + e(t.by)) if t.by else ""}</li>' for t in reversed(inc.timeline))
    note = f'<p class="notice" role="status">{e(_(notice))}</p>' if notice else ""
    body = (
        f'<p><a href="/console">← {_("All incidents")}</a></p>'
        f'<h1>{e(watch_name)}: {e(inc.detector.replace("_", " "))}</h1>{note}'
        f'<div id="incident-live" data-live="/console/events?incident={e(inc.id)}" '
        f'data-state="{e(inc.state)}">{facts}{_actions(inc, session, csrf)}</div>'
        + _playbook(inc, session, csrf)
        + explanation
        + f'<section aria-labelledby="samples"><h2 id="samples">'
        f'{_("What people are saying")}</h2>{mentions_link}'
        f'<ul class="mentions">{samples or "<li>" + _("No samples.") + "</li>"}</ul></section>'
        f'<section aria-labelledby="oncall"><h2 id="oncall">{_("Who is on call")}</h2>'
        '<ul class="oncall">'
        f'{who or "<li>" + _("No escalation policy routes this incident.") + "</li>"}'
        '</ul></section>'
        f'<section aria-labelledby="tl"><h2 id="tl">{_("Timeline")}</h2><ol class="timeline" '
        f'reversed>{timeline}</ol></section>')
    return _layout(_("Incident {id}").format(id=inc.id), body, session=session, csrf=csrf)


def _spark(series: Sequence[tuple[datetime, int, int]], label: str) -> str:
    width, height = 300, 60
    top = max([c for _, c, _ in series] + [1])
    n = max(len(series), 1)
    step = width / n
    bars = "".join(
        f'<rect x="{i * step:.1f}" y="{height - c / top * height:.1f}" width="{step * .8:.1f}" '
        f'height="{c / top * height:.1f}" class="bar"/>'
        f'<rect x="{i * step:.1f}" y="{height - g / top * height:.1f}" width="{step * .8:.1f}" '
        f'height="{g / top * height:.1f}" class="bar-neg"/>'
        for i, (_, c, g) in enumerate(series))
    return (f'<svg viewBox="0 0 {width} {height}" class="spark" role="img" '
            f'aria-label="{e(label)}">{bars}</svg>')


def _stat(summary: Mapping[str, Any], key: str, locale: str) -> str:
    value = summary.get(key, 0)
    return (e(format_decimal(value, locale, format="#,##0")) if isinstance(value, int | float)
            else e(value))


def watches_page(cards: Sequence[WatchCard], *, session: Session, csrf: str) -> str:
    _ = _tr(session).gettext
    loc = session.locale
    out = []
    for card in cards:
        sov = "".join(f'<li>{e(name)}: {e(format_decimal(pct, loc, format="#,##0.0"))}%</li>'
                      for name, pct in card.share_of_voice.items())
        top = "".join(
            '<li>' + (f'<a href="{e(u)}" rel="noopener noreferrer nofollow" target="_blank">'
                      f'@{e(m.get("author", ""))}</a>' if (u := safe_url(m.get("url")))
                      else f'@{e(m.get("author", ""))}')
            + f' <span class="priority">'
            f'{_("priority {priority}").format(priority=e(m.get("priority", "")))}</span> '
            f'<span class="sentiment">{e(m.get("sentiment", ""))}</span>'
            f'<blockquote>{e(str(m.get("text", ""))[:280])}</blockquote></li>'
            for m in card.top)
        figures = [
            _("{count} mentions, {negative}% negative, reach {reach}").format(
                count=f"<strong>{_stat(s, 'count', loc)}</strong>",
                negative=_stat(s, "negative_pct", loc), reach=_stat(s, "reach", loc))
            for s in (card.day, card.week)]
        day_label = _("{watch}: mentions per hour, last 24 hours").format(watch=card.name)
        week_label = _("{watch}: mentions per day, last 7 days").format(watch=card.name)
        out.append(
            f'<section class="card watch" aria-labelledby="w-{e(card.id)}">'
            f'<h2 id="w-{e(card.id)}">{e(card.name)}</h2><div class="cols">'
            f'<div><h3>{_("Last 24 hours")}</h3><p>{figures[0]}</p>'
            f'{_spark(card.day_series, day_label)}</div>'
            f'<div><h3>{_("Last 7 days")}</h3><p>{figures[1]}</p>'
            f'{_spark(card.week_series, week_label)}</div>'
            '</div>'
            + (f'<h3>{_("Share of voice, 7 days")}</h3><ul class="sov">{sov}</ul>' if sov
               else "")
            + f'<h3>{_("Top mentions by priority, 24 hours")}</h3><ul class="mentions">'
            f'{top or "<li>" + _("None yet.") + "</li>"}</ul></section>')
    body = (f'<h1>{_("Watches")}</h1>'
            + ("".join(out) or f'<p>{_("No watches configured.")}</p>'))
    return _layout(_("Watches"), body, session=session, csrf=csrf, active="watches")
