"""The console's Mentions page: the search form, one page of stored mentions, paging, exports.

The form's names are ``GET /api/mentions``'s (agents/store/search.py reads both), so a search
typed here, its "Next page" link and its CSV/JSON-lines export all mean the same result.
Every mention field is attacker-controlled text: escaped here, links only http(s).
``render.mentions_page`` puts the section in the console's layout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Final
from urllib.parse import urlencode

from agents.store.groups import StoryRow
from agents.store.rows import StoredMention
from agents.store.search import SENTIMENTS, SORTS
from streams.core.records import Incident
from streams.i18n import EN, Lang, format_decimal

__all__ = ["FORM_FIELDS", "incident_mentions_link", "incident_window", "mentions_section",
           "query_string", "stories_section"]

#: The parameters the form sends, and ``limit`` (a typed URL's page size, kept while paging);
#: ``cursor`` is only ever added by a "Next page" link.
FORM_FIELDS: Final = ("q", "watch", "since", "until", "sentiment", "lang", "source",
                      "min_priority", "verified", "sort", "order", "limit", "story", "group")
_TEXT_MAX: Final = 600  # characters of a mention shown in the table; the original has it all


def e(value: object) -> str:
    return escape(str(value), quote=True)


def query_string(params: Mapping[str, str], **changes: str) -> str:
    """The page's parameters as a query string, empty ones left out (the API would accept
    them, but shorter links are easier to share)."""
    merged = {**{k: v for k, v in params.items() if k in FORM_FIELDS}, **changes}
    return urlencode({k: v for k, v in merged.items() if v})


def incident_window(inc: Incident, *, now: datetime) -> tuple[datetime, datetime]:
    """The time an incident covers: from the earliest window a signal of it measured (30
    minutes before it opened without evidence) to its resolution, or now while it lasts."""
    starts = [ev.window_start for ev in inc.evidence]
    since = min(starts) if starts else inc.opened_at - timedelta(minutes=30)
    end = inc.resolved_at if inc.state == "resolved" and inc.resolved_at else now
    # ``until`` is exclusive and a mention can be stamped the very millisecond it ends.
    return since.astimezone(UTC), (end + timedelta(seconds=1)).astimezone(UTC)


def _shown(value: str, lang: Lang) -> str:
    """A sentiment or sort key as shown (one mention's sentiment: singular, hence the
    context); the form's values and the stored ones stay English."""
    tr = lang.tr
    return {"negative": tr.pgettext("sentiment", "negative"),
            "neutral": tr.pgettext("sentiment", "neutral"),
            "positive": tr.pgettext("sentiment", "positive"),
            "time": tr.pgettext("sort", "time"), "priority": tr.pgettext("sort", "priority"),
            "reach": tr.pgettext("sort", "reach")}.get(value, value)


def _stamp(when: datetime, lang: Lang, *, time_only: bool = False) -> str:
    # Unconfigured (English, UTC) keeps the ISO stamps; a reader's locale gets its own.
    if lang.unset:
        return f"{when:%H:%M} UTC" if time_only else f"{when:%Y-%m-%d %H:%M} UTC"
    return lang.hm(when) if time_only else lang.at(when)


def _count(n: int, lang: Lang) -> str:
    return f"{n:,}" if lang.unset else format_decimal(n, lang.locale)


def incident_mentions_link(inc: Incident, *, count: int | None, cap: int, now: datetime,
                           lang: Lang = EN) -> str:
    """The incident page's link to its mentions, watch and window filled in; ``count`` None
    when the store could not count them (the link still works)."""
    _ = lang._
    since, until = incident_window(inc, now=now)
    href = "/console/mentions?" + query_string({
        "watch": inc.watch_id, "since": since.isoformat(timespec="seconds"),
        "until": until.isoformat(timespec="seconds")})
    if count is None:
        label = _("Mentions of this incident")
    elif count > cap:
        label = _("All {count}+ mentions of this incident").format(count=_count(cap, lang))
    else:
        label = lang.tr.ngettext("All {count} mention of this incident",
                                 "All {count} mentions of this incident",
                                 count).format(count=_count(count, lang))
    window = _("({since} to {until})").format(since=_stamp(since, lang),
                                              until=_stamp(until, lang, time_only=True))
    return (f'<p class="incident-mentions"><a href="{e(href)}">{e(label)}</a> '
            f'<span class="note">{e(window)}</span></p>')


def _select(name: str, label: str, options: Sequence[tuple[str, str]], chosen: str,
            blank: str) -> str:
    opts = "".join(f'<option value="{e(v)}"{" selected" if v == chosen else ""}>{e(t)}</option>'
                   for v, t in [("", blank), *options])
    return f'<label>{e(label)} <select name="{name}">{opts}</select></label>'


def _input(name: str, label: str, value: str, *, kind: str = "text", hint: str = "",
           size: int = 10) -> str:
    extra = f' placeholder="{e(hint)}"' if hint else ""
    return (f'<label>{e(label)} <input name="{name}" type="{kind}" value="{e(value)}" '
            f'size="{size}"{extra}></label>')


def _form(params: Mapping[str, str], watches: Mapping[str, str], lang: Lang) -> str:
    _ = lang._
    p = params.get
    every = _("all")
    return (
        '<form method="get" action="/console/mentions" class="filters mention-search" '
        f'aria-label="{e(_("Search mentions"))}" role="search">'
        f'<label class="wide">{e(_("Search"))} <input name="q" type="search" size="48" '
        f'value="{e(p("q", ""))}" placeholder="&quot;battery&quot; AND lang:es '
        '-author:acmesupport"></label>'
        + _select("watch", _("Watch"), list(watches.items()), p("watch", ""), every)
        + _input("since", _("From"), p("since", ""), hint="2026-03-01T09:00Z", size=18)
        + _input("until", _("To"), p("until", ""), hint=_("ISO 8601, UTC"), size=18)
        # Option values are the query's; only what is shown is translated.
        + _select("sentiment", _("Sentiment"), [(s, _shown(s, lang)) for s in SENTIMENTS],
                  p("sentiment", ""), every)
        + _input("lang", _("Language"), p("lang", ""), hint="es", size=4)
        + _input("source", _("Source"), p("source", ""), hint="x, rss", size=8)
        + _input("min_priority", _("Priority ≥"), p("min_priority", ""), kind="number", size=4)
        + _select("verified", _("Verified"), [("true", _("verified only")),
                                              ("false", _("unverified"))],
                  p("verified", ""), _("any"))
        + _select("sort", _("Sort by"), [(s, _shown(s, lang)) for s in SORTS if s != "time"],
                  p("sort", ""), _shown("time", lang))
        + _select("order", _("Order"), [("asc", _("oldest/lowest first"))], p("order", ""),
                  _("newest/highest first"))
        + _select("group", _("Show"), [("story", _("stories (copies folded)"))],
                  p("group", ""), _("every mention"))
        + (f'<input type="hidden" name="story" value="{e(p("story", ""))}">'
           if p("story") else "")
        + f'<button type="submit">{e(_("Search"))}</button></form>')


def _row(m: StoredMention, names: Mapping[str, str], claim: str, lang: Lang) -> str:
    _ = lang._
    em, men = m.record, m.record.mention
    posted = datetime.fromtimestamp(m.posted_at / 1000, UTC)
    author = f"@{men.author.handle}" + (" ✓" if men.author.verified else "")
    url = m.url  # StoredMention.url: http(s) only (agents/store/rows.py), else None
    post_by = _("post by {author}").format(author=author)
    original = (f'<a href="{e(url)}" rel="noopener noreferrer nofollow" target="_blank" '
                f'class="original">{e(_("original"))}<span class="sr-only"> {e(post_by)}'
                '</span></a>' if url else f'<span class="note">{e(_("no link"))}</span>')
    # The mention's own words, as written: never looked up in the catalogue.
    text = men.text if len(men.text) <= _TEXT_MAX else men.text[:_TEXT_MAX] + "…"
    watches = ", ".join(names.get(w, w) for w in m.watch_ids)
    sentiment = _shown(em.sentiment.label, lang)
    return (
        f'<tr data-key="{e(men.key)}"><td><time datetime="{e(posted.isoformat())}">'
        f'{e(_stamp(posted, lang))}</time></td>'
        f'<td>{e(author)}<div class="note">{e(men.source)} · {e(watches)}</div></td>'
        f'<td><blockquote>{e(text)}</blockquote>{original}'
        + (f'<div class="claim-state">{claim}</div>' if claim else "") + '</td>'
        f'<td><span class="sentiment">{e(sentiment)}</span></td>'
        f'<td>{e(men.language or "")}</td><td>{e(m.priority)}</td>'
        f'<td>{_count(m.reach, lang)}</td></tr>')


def _story_row(row: StoryRow, params: Mapping[str, str], claim: str, lang: Lang) -> str:
    # The first copy's text is a mention's: shown as written, escaped, never translated.
    em = row.sample.record if row.sample else None
    text = em.mention.text if em else ""
    text = text if len(text) <= _TEXT_MAX else text[:_TEXT_MAX] + "…"
    first = datetime.fromtimestamp(row.first_seen / 1000, UTC)
    last = datetime.fromtimestamp(row.last_seen / 1000, UTC)
    href = "/console/mentions?" + query_string(
        {k: v for k, v in params.items() if k not in ("group", "cursor")}, story=row.story)
    its = lang.tr.ngettext("its {count} mention", "its {count} mentions", row.count).format(
        count=_count(row.count, lang))

    def seen(t: datetime) -> str:  # the table's heading says UTC while nothing is configured
        return f"{t:%Y-%m-%d %H:%M}" if lang.unset else lang.at(t)

    return (
        f'<tr data-story="{e(row.story)}"><td><blockquote>{e(text)}</blockquote>'
        f'<a href="{e(href)}" class="story-mentions">{e(its)}</a>'
        + (f'<div class="claim-state">{claim}</div>' if claim else "") + '</td>'
        f'<td>{_count(row.count, lang)}</td><td>{_count(row.authors, lang)}</td>'
        f'<td><time datetime="{e(first.isoformat())}">{e(seen(first))}</time></td>'
        f'<td><time datetime="{e(last.isoformat())}">{e(seen(last))}</time></td></tr>')


def stories_section(stories: Sequence[StoryRow], *, params: Mapping[str, str],
                    watches: Mapping[str, str], next_cursor: str | None,
                    claims: Mapping[str, str] | None = None, lang: Lang = EN) -> str:
    """The grouped view's body in ``lang``: one row per story (its first copy as the sample,
    escaped), each linked to its mentions; ``claims``: each story's claim line, by story id."""
    _ = lang._
    rows = "".join(_story_row(r, params, (claims or {}).get(r.story, ""), lang)
                   for r in stories) \
        or f'<tr><td colspan="5" class="empty">{e(_("No stories match."))}</td></tr>'
    paging = []
    if params.get("cursor"):
        paging.append(f'<a href="/console/mentions?{e(query_string(params))}">'
                      f'{e(_("First page"))}</a>')
    if next_cursor:
        paging.append(f'<a href="/console/mentions?'
                      f'{e(query_string(params, cursor=next_cursor))}" rel="next">'
                      f'{e(_("Next page"))}</a>')
    shown = (_("{count} stories shown, more on the next page.") if next_cursor
             else _("{count} stories shown.")).format(count=len(stories))
    utc = lang.unset  # headings name the zone only while times are bare UTC stamps
    head = "".join(f'<th scope="col">{e(h)}</th>' for h in (
        _("Story (first copy)"), _("Mentions"), _("Authors"),
        _("First seen (UTC)") if utc else _("First seen"),
        _("Last seen (UTC)") if utc else _("Last seen")))
    return (
        f'<h1>{e(_("Mentions"))}</h1>{_form(params, watches, lang)}'
        f'<p id="mention-count" role="status">{e(shown)}</p>'
        '<div class="table-wrap"><table class="stories-table"><caption class="sr-only">'
        f'{e(_("Stories"))}</caption><thead><tr>{head}</tr>'
        f'</thead><tbody>{rows}</tbody></table></div>'
        + (f'<nav class="paging" aria-label="{e(_("Pages"))}">{" · ".join(paging)}</nav>'
           if paging else ""))


def mentions_section(mentions: Sequence[StoredMention] | None, *, params: Mapping[str, str],
                     watches: Mapping[str, str], next_cursor: str | None,
                     error: str = "", detail: str = "",
                     claims: Mapping[str, str] | None = None, lang: Lang = EN) -> str:
    """The page's body in ``lang``. ``mentions`` None: no result to show (the store is off or
    the search was refused, ``error`` says why: a source string, translated here, and
    ``detail`` the refusal's own words, a field and what it takes); ``params`` is the query as
    the browser sent it; ``claims``: each mention's claim line (HTML,
    streams/web/console/claims.py), by key."""
    _ = lang._
    said = " ".join(p for p in (_(error) if error else "", detail) if p)
    err = f'<p class="error" role="alert">{e(said)}</p>' if said else ""
    result = ""
    if mentions is not None:
        here = query_string(params)
        exports = (
            f'<p class="exports">{e(_("Export this result:"))} '
            f'<a href="/console/mentions/export?{e(query_string(params, format="csv"))}" '
            'download>CSV</a> · '
            f'<a href="/console/mentions/export?{e(query_string(params, format="jsonl"))}" '
            f'download>{e(_("JSON lines"))}</a></p>')
        paging = []
        if params.get("cursor"):
            paging.append(f'<a href="/console/mentions?{e(here)}">{e(_("First page"))}</a>')
        if next_cursor:
            paging.append(f'<a href="/console/mentions?'
                          f'{e(query_string(params, cursor=next_cursor))}" rel="next">'
                          f'{e(_("Next page"))}</a>')
        rows = "".join(_row(m, watches, (claims or {}).get(m.record.mention.key, ""), lang)
                       for m in mentions) or (
            f'<tr><td colspan="7" class="empty">{e(_("No mentions match."))}</td></tr>')
        shown = (_("{count} shown, more on the next page.") if next_cursor
                 else _("{count} shown.")).format(count=len(mentions))
        head = "".join(f'<th scope="col">{e(h)}</th>' for h in (
            _("Posted"), _("Author"), _("Text"), _("Sentiment"), _("Language"), _("Priority"),
            _("Reach")))
        result = (
            f'<p id="mention-count" role="status">{e(shown)}</p>{exports}'
            '<div class="table-wrap"><table class="mentions-table"><caption class="sr-only">'
            f'{e(_("Mentions"))}</caption><thead><tr>{head}</tr>'
            f'</thead><tbody>{rows}</tbody></table></div>'
            + (f'<nav class="paging" aria-label="{e(_("Pages"))}">{" · ".join(paging)}</nav>'
               if paging else ""))
    return f'<h1>{e(_("Mentions"))}</h1>{_form(params, watches, lang)}{err}{result}'
