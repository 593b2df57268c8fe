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


def incident_mentions_link(inc: Incident, *, count: int | None, cap: int, now: datetime) -> str:
    """The incident page's link to its mentions, watch and window filled in; ``count`` None
    when the store could not count them (the link still works)."""
    since, until = incident_window(inc, now=now)
    href = "/console/mentions?" + query_string({
        "watch": inc.watch_id, "since": since.isoformat(timespec="seconds"),
        "until": until.isoformat(timespec="seconds")})
    if count is None:
        label = "Mentions of this incident"
    elif count > cap:
        label = f"All {cap:,}+ mentions of this incident"
    else:
        label = f"All {count:,} mention{'' if count == 1 else 's'} of this incident"
    return (f'<p class="incident-mentions"><a href="{e(href)}">{e(label)}</a> '
            f'<span class="note">({since:%Y-%m-%d %H:%M} to {until:%H:%M} UTC)</span></p>')


def _select(name: str, label: str, options: Sequence[tuple[str, str]], chosen: str,
            blank: str = "all") -> str:
    opts = "".join(f'<option value="{e(v)}"{" selected" if v == chosen else ""}>{e(t)}</option>'
                   for v, t in [("", blank), *options])
    return f'<label>{label} <select name="{name}">{opts}</select></label>'


def _input(name: str, label: str, value: str, *, kind: str = "text", hint: str = "",
           size: int = 10) -> str:
    extra = f' placeholder="{e(hint)}"' if hint else ""
    return (f'<label>{label} <input name="{name}" type="{kind}" value="{e(value)}" '
            f'size="{size}"{extra}></label>')


def _form(params: Mapping[str, str], watches: Mapping[str, str]) -> str:
    p = params.get
    return (
        '<form method="get" action="/console/mentions" class="filters mention-search" '
        'aria-label="Search mentions" role="search">'
        '<label class="wide">Search <input name="q" type="search" size="48" '
        f'value="{e(p("q", ""))}" placeholder="&quot;battery&quot; AND lang:es '
        '-author:acmesupport"></label>'
        + _select("watch", "Watch", list(watches.items()), p("watch", ""))
        + _input("since", "From", p("since", ""), hint="2026-03-01T09:00Z", size=18)
        + _input("until", "To", p("until", ""), hint="ISO 8601, UTC", size=18)
        + _select("sentiment", "Sentiment", [(s, s) for s in SENTIMENTS], p("sentiment", ""))
        + _input("lang", "Language", p("lang", ""), hint="es", size=4)
        + _input("source", "Source", p("source", ""), hint="x, rss", size=8)
        + _input("min_priority", "Priority ≥", p("min_priority", ""), kind="number", size=4)
        + _select("verified", "Verified", [("true", "verified only"), ("false", "unverified")],
                  p("verified", ""), blank="any")
        + _select("sort", "Sort by", [(s, s) for s in SORTS if s != "time"],
                  p("sort", ""), blank="time")
        + _select("order", "Order", [("asc", "oldest/lowest first")], p("order", ""),
                  blank="newest/highest first")
        + _select("group", "Show", [("story", "stories (copies folded)")], p("group", ""),
                  blank="every mention")
        + (f'<input type="hidden" name="story" value="{e(p("story", ""))}">'
           if p("story") else "")
        + '<button type="submit">Search</button></form>')


def _row(m: StoredMention, names: Mapping[str, str], claim: str = "") -> str:
    em, men = m.record, m.record.mention
    posted = datetime.fromtimestamp(m.posted_at / 1000, UTC)
    author = f"@{men.author.handle}" + (" ✓" if men.author.verified else "")
    url = m.url  # StoredMention.url: http(s) only (agents/store/rows.py), else None
    original = (f'<a href="{e(url)}" rel="noopener noreferrer nofollow" target="_blank" '
                f'class="original">original<span class="sr-only"> post by {e(author)}</span>'
                '</a>' if url else '<span class="note">no link</span>')
    text = men.text if len(men.text) <= _TEXT_MAX else men.text[:_TEXT_MAX] + "…"
    watches = ", ".join(names.get(w, w) for w in m.watch_ids)
    return (
        f'<tr data-key="{e(men.key)}"><td><time datetime="{e(posted.isoformat())}">'
        f'{posted:%Y-%m-%d %H:%M} UTC</time></td>'
        f'<td>{e(author)}<div class="note">{e(men.source)} · {e(watches)}</div></td>'
        f'<td><blockquote>{e(text)}</blockquote>{original}'
        + (f'<div class="claim-state">{claim}</div>' if claim else "") + '</td>'
        f'<td><span class="sentiment">{e(em.sentiment.label)}</span></td>'
        f'<td>{e(men.language or "")}</td><td>{e(m.priority)}</td>'
        f'<td>{m.reach:,}</td></tr>')


def _story_row(row: StoryRow, params: Mapping[str, str], claim: str) -> str:
    em = row.sample.record if row.sample else None
    text = em.mention.text if em else ""
    text = text if len(text) <= _TEXT_MAX else text[:_TEXT_MAX] + "…"
    first = datetime.fromtimestamp(row.first_seen / 1000, UTC)
    last = datetime.fromtimestamp(row.last_seen / 1000, UTC)
    href = "/console/mentions?" + query_string(
        {k: v for k, v in params.items() if k not in ("group", "cursor")}, story=row.story)
    return (
        f'<tr data-story="{e(row.story)}"><td><blockquote>{e(text)}</blockquote>'
        f'<a href="{e(href)}" class="story-mentions">its {row.count:,} mention'
        f'{"" if row.count == 1 else "s"}</a>'
        + (f'<div class="claim-state">{claim}</div>' if claim else "") + '</td>'
        f'<td>{row.count:,}</td><td>{row.authors:,}</td>'
        f'<td><time datetime="{e(first.isoformat())}">{first:%Y-%m-%d %H:%M}</time></td>'
        f'<td><time datetime="{e(last.isoformat())}">{last:%Y-%m-%d %H:%M}</time></td></tr>')


def stories_section(stories: Sequence[StoryRow], *, params: Mapping[str, str],
                    watches: Mapping[str, str], next_cursor: str | None,
                    claims: Mapping[str, str] | None = None) -> str:
    """The grouped view's body: one row per story (its first copy as the sample, escaped),
    each linked to its mentions; ``claims``: each story's claim line, by story id."""
    rows = "".join(_story_row(r, params, (claims or {}).get(r.story, "")) for r in stories) \
        or '<tr><td colspan="5" class="empty">No stories match.</td></tr>'
    paging = []
    if params.get("cursor"):
        paging.append(f'<a href="/console/mentions?{e(query_string(params))}">First page</a>')
    if next_cursor:
        paging.append(f'<a href="/console/mentions?'
                      f'{e(query_string(params, cursor=next_cursor))}" rel="next">Next page</a>')
    return (
        f'<h1>Mentions</h1>{_form(params, watches)}'
        f'<p id="mention-count" role="status">{len(stories)} stories shown'
        f'{", more on the next page" if next_cursor else ""}.</p>'
        '<div class="table-wrap"><table class="stories-table"><caption class="sr-only">'
        'Stories</caption><thead><tr><th scope="col">Story (first copy)</th>'
        '<th scope="col">Mentions</th><th scope="col">Authors</th>'
        '<th scope="col">First seen (UTC)</th><th scope="col">Last seen (UTC)</th></tr>'
        f'</thead><tbody>{rows}</tbody></table></div>'
        + (f'<nav class="paging" aria-label="Pages">{" · ".join(paging)}</nav>'
           if paging else ""))


def mentions_section(mentions: Sequence[StoredMention] | None, *, params: Mapping[str, str],
                     watches: Mapping[str, str], next_cursor: str | None,
                     error: str = "", claims: Mapping[str, str] | None = None) -> str:
    """The page's body. ``mentions`` None: no result to show (the store is off or the
    search was refused, ``error`` says why); ``params`` is the query as the browser sent it;
    ``claims``: each mention's claim line (HTML, streams/web/console/claims.py), by key."""
    err = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    result = ""
    if mentions is not None:
        here = query_string(params)
        exports = (
            f'<p class="exports">Export this result: '
            f'<a href="/console/mentions/export?{e(query_string(params, format="csv"))}" '
            'download>CSV</a> · '
            f'<a href="/console/mentions/export?{e(query_string(params, format="jsonl"))}" '
            'download>JSON lines</a></p>')
        paging = []
        if params.get("cursor"):
            paging.append(f'<a href="/console/mentions?{e(here)}">First page</a>')
        if next_cursor:
            paging.append(f'<a href="/console/mentions?'
                          f'{e(query_string(params, cursor=next_cursor))}" rel="next">'
                          'Next page</a>')
        rows = "".join(_row(m, watches, (claims or {}).get(m.record.mention.key, ""))
                       for m in mentions) or (
            '<tr><td colspan="7" class="empty">No mentions match.</td></tr>')
        result = (
            f'<p id="mention-count" role="status">{len(mentions)} shown'
            f'{", more on the next page" if next_cursor else ""}.</p>{exports}'
            '<div class="table-wrap"><table class="mentions-table"><caption class="sr-only">'
            'Mentions</caption><thead><tr><th scope="col">Posted</th><th scope="col">Author'
            '</th><th scope="col">Text</th><th scope="col">Sentiment</th><th scope="col">'
            'Language</th><th scope="col">Priority</th><th scope="col">Reach</th></tr>'
            f'</thead><tbody>{rows}</tbody></table></div>'
            + (f'<nav class="paging" aria-label="Pages">{" · ".join(paging)}</nav>'
               if paging else ""))
    return f'<h1>Mentions</h1>{_form(params, watches)}{err}{result}'
