"""A report as people read it: the HTML email body, its plain-text part, and the Slack text.

Mention text and authors were written by strangers: they are cleaned and escaped for each
format (``html_escape`` for HTML, ``slack_escape`` for mrkdwn, ``console_safe`` for the text
part) and links are only ``safe_url`` ones. Charts are referenced by Content-ID
(``<img src="cid:...">``) so the email carries them inline, not as remote images a client
would block. The PDF is ``streams/reports/pdf.py``; all formats share the wording here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from notifiers.text import console_safe, html_escape, safe_url, slack_escape, truncate
from streams.i18n import (
    N_,
    Translations,
    format_datetime,
    format_decimal,
    format_percent,
    label,
    language_of,
    translator,
)
from streams.reports.charts import CHART_KINDS
from streams.reports.data import ReportData, WatchReport

__all__ = ["chart_titles", "fmt_change", "fmt_duration", "fmt_int", "fmt_pct", "html_body",
           "slack_text", "span_text", "subject", "text_body", "watch_facts"]

_MENTION_CHARS = 280
_CHART_ALT = {"volume": N_("Mentions per day and negative share"),
              "sentiment": N_("Sentiment split"), "sov": N_("Share of voice")}


def fmt_int(n: int, locale: str = "en") -> str:
    return format_decimal(n, locale, format="#,##0")


def fmt_pct(share: float, locale: str = "en") -> str:
    """A 0..1 share as a percent, the locale's way (``12.5%``, ``12,5 %``)."""
    return format_percent(share, locale, decimals=1)


def fmt_change(pct: float | None, locale: str = "en") -> str:
    if pct is None:
        return translator(locale).gettext("n/a (nothing before)")
    return ("+" if pct >= 0 else "-") + format_percent(abs(pct) / 100, locale, decimals=1)


def span_text(data: ReportData) -> str:
    """The period in the report's language; ISO dates read the same in every language."""
    _ = translator(data.locale).gettext
    start, last = data.local(data.start), data.local(data.end - timedelta(seconds=1))
    if data.step == "h":
        first, end = f"{start:%Y-%m-%d %H:%M}", f"{data.local(data.end):%Y-%m-%d %H:%M}"
    elif start.date() == last.date():
        return f"{start:%Y-%m-%d} ({data.timezone})"
    else:
        first, end = f"{start:%Y-%m-%d}", f"{last:%Y-%m-%d}"
    return _("{start} to {end} ({zone})").format(start=first, end=end, zone=data.timezone)


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def subject(data: ReportData) -> str:
    return console_safe(f"{data.title}: {span_text(data)}", limit=200)


def _sentiment(tr: Translations, value: str) -> str:
    return {"negative": tr.pgettext("sentiment", "negative"),
            "neutral": tr.pgettext("sentiment", "neutral"),
            "positive": tr.pgettext("sentiment", "positive")}.get(value, value)


def _generated(data: ReportData) -> str:
    # English keeps its historic stamp; another language gets Babel's date in the zone.
    if language_of(data.locale) == "en":
        return f"{data.local(data.generated_at):%Y-%m-%d %H:%M %Z}"
    return format_datetime(data.generated_at, data.locale, data.tz)


def chart_titles() -> dict[str, str]:
    return dict(_CHART_ALT)


def watch_facts(w: WatchReport, locale: str = "en") -> list[tuple[str, str]]:
    """The headline numbers of a watch, the same words in every format."""
    _ = translator(locale).gettext
    cur, prev = w.current, w.previous

    def n(value: int) -> str:
        return fmt_int(value, locale)

    def pct(share: float) -> str:
        return fmt_pct(share, locale)

    pts = format_decimal(w.negative_share_change_pts, locale, format="+#,##0.0;-#,##0.0")
    facts = [
        (_("Mentions"), _("{count} (previous period {before}, {change})").format(
            count=n(cur.count), before=n(prev.count), change=fmt_change(w.change_pct, locale))),
        (_("Negative"), _("{count} ({share}, {points} pts)").format(
            count=n(cur.sentiment["negative"]), share=pct(cur.sentiment_share["negative"]),
            points=pts)),
        (_("Neutral"), f"{n(cur.sentiment['neutral'])} "
                       f"({pct(cur.sentiment_share['neutral'])})"),
        (_("Positive"), f"{n(cur.sentiment['positive'])} "
                        f"({pct(cur.sentiment_share['positive'])})"),
        (_("Reach"), _("{count} (previous {before})").format(count=n(cur.reach),
                                                             before=n(prev.reach))),
        (_("Engagement"), _("{count} (previous {before})").format(count=n(cur.engagement),
                                                                  before=n(prev.engagement))),
        (_("Mean priority"), format_decimal(cur.mean_priority, locale, format="0.0")),
    ]
    sov = ", ".join(f"{w.names.get(k, k)} {pct(v / 100)} ({n(w.sov_counts[k])})"
                    for k, v in w.share_of_voice.items())
    facts.append((_("Share of voice"), sov))
    facts.append((_("Incidents"), _(
        "{count} (median time to acknowledge {ack}, to resolve {resolve})").format(
            count=len(w.incidents), ack=fmt_duration(w.median_time_to_ack_s()),
            resolve=fmt_duration(w.median_time_to_resolve_s()))))
    return facts


def _opened(data: ReportData, w: WatchReport) -> list[str]:
    if language_of(data.locale) == "en":
        return [f"{data.local(i.opened_at):%a %d %b %H:%M}" for i in w.incidents]
    return [format_datetime(i.opened_at, data.locale, data.tz, format="EEE d MMM")
            for i in w.incidents]


# -- plain text ----------------------------------------------------------------------------
def text_body(data: ReportData) -> str:
    tr, loc = translator(data.locale), data.locale
    _ = tr.gettext
    lines = [subject(data)]
    if data.audience:
        lines.append(_("For: {audience}").format(audience=console_safe(data.audience,
                                                                        limit=200)))
    lines.append(_("Generated {time}").format(time=_generated(data)))
    for w in data.watches:
        name = console_safe(w.name, limit=200)
        lines += ["", name, "=" * min(len(name), 76)]
        lines += [f"{k}: {console_safe(v, limit=600)}" for k, v in watch_facts(w, loc)]
        lines += ["", _("Per day:") if data.step == "d" else _("Per hour:")]
        lines += [f"  {p.label:<12} {fmt_int(p.count, loc):>8}  " + _("negative {share}").format(
            share=fmt_pct(p.negative_share, loc)) for p in w.series]
        if w.current.terms:
            lines += ["", _("Top terms") + ": " + ", ".join(
                f"{console_safe(t, limit=60)} ({fmt_int(n, loc)})"
                for t, n in w.current.terms.items())]
        if w.current.top:
            lines += ["", _("Top mentions by priority") + ":"]
            for m in w.current.top:
                said = console_safe(m.text, limit=_MENTION_CHARS)
                lines.append(f"  [{m.priority}] {_sentiment(tr, m.sentiment)} "
                             f"@{console_safe(m.author, limit=64)}: {said}")
                url = safe_url(m.url)
                if url:
                    lines.append(f"      {url}")
        if w.incidents:
            lines += ["", _("Incidents") + ":"]
            for i, opened in zip(w.incidents, _opened(data, w), strict=True):
                times = _("ack {ack}, resolve {resolve}").format(
                    ack=fmt_duration(i.time_to_ack_s), resolve=fmt_duration(i.time_to_resolve_s))
                lines.append(f"  {opened}  {label(tr, i.severity):<8} {i.detector:<16} "
                             f"{label(tr, i.state):<12} {times}  "
                             f"{console_safe(i.summary, limit=120)}")
    lines += ["", "-- ", _("escucha report {id} · {period}").format(id=data.report_id,
                                                                     period=data.period)]
    return "\n".join(lines) + "\n"


# -- HTML ------------------------------------------------------------------------------------
_TD = 'style="padding:3px 8px;border-bottom:1px solid #e3e6ea;vertical-align:top"'
_TH = 'style="padding:3px 8px;text-align:left;background:#f3f5f7;font-weight:600"'


def _table(head: list[str], rows: list[list[str]]) -> str:
    """Cells must be escaped already."""
    out = ['<table style="border-collapse:collapse;font-size:13px;margin:6px 0 14px">',
           "<tr>" + "".join(f"<th {_TH}>{h}</th>" for h in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td {_TD}>{c}</td>" for c in row) + "</tr>" for row in rows]
    return "\n".join([*out, "</table>"])


def _mention_html(text: str, url: str | None, tr: Translations) -> str:
    said = html_escape(text, limit=_MENTION_CHARS)
    safe = safe_url(url)
    if safe:
        said += (f' <a href="{html_escape(safe, limit=4096)}" rel="noopener noreferrer">'
                 f"{html_escape(tr.pgettext('link', 'open'))}</a>")
    return said


def html_body(data: ReportData, cids: Mapping[str, str]) -> str:
    """The email's HTML; ``cids`` maps each chart key ('volume-acme') to its Content-ID
    (without angle brackets)."""
    tr, loc = translator(data.locale), data.locale
    _ = tr.gettext

    def h(text: str) -> str:  # a heading or label of ours, escaped like any other text
        return html_escape(text, limit=300)

    title = html_escape(subject(data), limit=300)
    lang = html_escape(language_of(loc))
    audience = (" · " + h(_("for {audience}").format(audience=data.audience))
                if data.audience else "")
    out = ["<!DOCTYPE html>", f'<html lang="{lang}"><head><meta charset="utf-8">',
           f"<title>{title}</title>", "</head>",
           '<body style="font-family:Helvetica,Arial,sans-serif;color:#2b2f33;max-width:900px">',
           f'<h1 style="font-size:22px;margin-bottom:2px">{html_escape(data.title)}</h1>',
           f'<p style="margin-top:0;color:#5c6670">{html_escape(span_text(data))}'
           f"{audience}</p>"]
    for w in data.watches:
        out.append(f'<h2 style="font-size:18px;border-bottom:2px solid #3b6ea8">'
                   f"{html_escape(w.name)}</h2>")
        out.append(_table(["", h(_("This period"))],
                          [[f"<b>{html_escape(k)}</b>", html_escape(v)]
                           for k, v in watch_facts(w, loc)]))
        for kind in CHART_KINDS:
            cid = cids.get(f"{kind}-{w.watch_id}")
            if cid:
                out.append(f'<p><img src="cid:{html_escape(cid)}" alt="{h(_(_CHART_ALT[kind]))}" '
                           'style="max-width:100%;height:auto"></p>')
        if w.current.terms:
            out.append(f"<h3 style=\"font-size:15px\">{h(_('Top terms'))}</h3>")
            out.append("<p>" + ", ".join(f"{html_escape(t, limit=60)} ({fmt_int(n, loc)})"
                                         for t, n in w.current.terms.items()) + "</p>")
        if w.current.top:
            out.append(f"<h3 style=\"font-size:15px\">{h(_('Top mentions by priority'))}</h3>")
            out.append(_table([h(_("Priority")), h(_("Sentiment")), h(_("Author")),
                               h(_("Mention"))], [
                [str(m.priority), html_escape(_sentiment(tr, m.sentiment)),
                 "@" + html_escape(m.author, limit=64), _mention_html(m.text, m.url, tr)]
                for m in w.current.top]))
        out.append(f"<h3 style=\"font-size:15px\">{h(_('Incidents'))}</h3>")
        if w.incidents:
            out.append(_table(
                [h(x) for x in (_("Opened"), _("Severity"), _("Detector"), _("State"),
                                _("To acknowledge"), _("To resolve"), _("Summary"))],
                [[html_escape(opened), html_escape(label(tr, i.severity)),
                  html_escape(i.detector), html_escape(label(tr, i.state)),
                  fmt_duration(i.time_to_ack_s), fmt_duration(i.time_to_resolve_s),
                  html_escape(i.summary, limit=300)]
                 for i, opened in zip(w.incidents, _opened(data, w), strict=True)]))
        else:
            out.append(f"<p>{h(_('No incidents in this period.'))}</p>")
    footer = _("escucha report {id} · generated {time}").format(id=data.report_id,
                                                                time=_generated(data))
    out.append(f'<p style="color:#8a939c;font-size:11px">{h(footer)}</p>')
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# -- Slack -----------------------------------------------------------------------------------
def slack_text(data: ReportData, *, limit: int = 3500) -> str:
    """The message that introduces the uploaded chart(s), in mrkdwn, in the report's
    language; mention text and names as written, escaped."""
    tr, loc = translator(data.locale), data.locale
    _ = tr.gettext
    lines = [f"*{slack_escape(data.title, limit=200)}* · {slack_escape(span_text(data))}"]
    for w in data.watches:
        cur = w.current
        pts = format_decimal(w.negative_share_change_pts, loc, format="+0.0;-0.0")
        lines.append(f"\n*{slack_escape(w.name, limit=200)}*: " + _(
            "{count} mentions ({change} vs previous), negative {negative} ({points} pts), "
            "reach {reach}, engagement {engagement}").format(
                count=fmt_int(cur.count, loc), change=fmt_change(w.change_pct, loc),
                negative=fmt_pct(cur.sentiment_share["negative"], loc), points=pts,
                reach=fmt_int(cur.reach, loc), engagement=fmt_int(cur.engagement, loc)))
        if len(w.share_of_voice) > 1:
            lines.append(_("Share of voice") + ": " + ", ".join(
                f"{slack_escape(w.names.get(k, k), limit=80)} {fmt_pct(v / 100, loc)}"
                for k, v in w.share_of_voice.items()))
        if cur.terms:
            lines.append(_("Top terms") + ": " + ", ".join(slack_escape(t, limit=60)
                                                           for t in list(cur.terms)[:8]))
        for m in cur.top[:3]:
            said = slack_escape(m.text, limit=200).replace("\n", " ")
            lines.append(f"• [{m.priority}] *@{slack_escape(m.author, limit=64)}*: {said}")
        lines.append(_("Incidents: {count}, median time to acknowledge {ack}, to resolve "
                       "{resolve}").format(count=len(w.incidents),
                                           ack=fmt_duration(w.median_time_to_ack_s()),
                                           resolve=fmt_duration(w.median_time_to_resolve_s())))
    return truncate("\n".join(lines), limit)
