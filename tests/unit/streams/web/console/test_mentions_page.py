"""The console's Mentions page HTML: hostile mention text and form values stay text, links to
originals are http(s) only, paging and exports keep the search, the incident link's window."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

from agents.store.rows import StoredMention, ms
from streams.core.records import Evidence, Incident
from streams.web.console import render
from streams.web.console.auth import Session
from streams.web.console.mentions import (
    incident_mentions_link,
    incident_window,
    mentions_section,
)
from tests.support.store import T0, enriched

HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(2)> "q" & <!channel>'
NAMES = {"acme": "Acme <Corp>", "globex": "Globex"}
VIEWER = Session(user="vic", role="viewer", sid="s2", expires=9e9)


def _stored(n: int, text: str, *, url: str | None = "", **kw: object) -> StoredMention:
    em = enriched(n, text, url=url, **kw)  # type: ignore[arg-type]
    return StoredMention(id=n, posted_at=ms(em.mention.created_at), priority=em.priority,
                         reach=em.mention.author.followers, watch_ids=tuple(em.watch_ids),
                         record=em)


def _links(html: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'href="([^"]*)"', html)]


def test_hostile_text_author_and_watch_names_stay_text() -> None:
    html = mentions_section(
        [_stored(1, HOSTILE, author="<b>evil</b>", verified=True, followers=12345)],
        params={}, watches=NAMES, next_cursor=None)
    assert "<script>" not in html and "<img" not in html and "<b>evil" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "@&lt;b&gt;evil&lt;/b&gt; ✓" in html  # verified mark beside the escaped handle
    assert "Acme &lt;Corp&gt;" in html and "12,345" in html


def test_each_mention_links_to_its_original_only_over_http() -> None:
    html = mentions_section(
        [_stored(1, "ok"), _stored(2, "bad", url="javascript:alert(1)"),
         _stored(3, "data", url="data:text/html,<script>x</script>")],
        params={}, watches=NAMES, next_cursor=None)
    originals = re.findall(r'<a href="([^"]*)"[^>]*class="original"', html)
    assert originals == ["https://example.com/x/1"]
    assert "javascript:" not in html and "data:text" not in html
    assert html.count("no link") == 2
    assert 'rel="noopener noreferrer nofollow"' in html


def test_the_form_keeps_the_search_escaped() -> None:
    params = {"q": '"battery" AND lang:es -author:acmesupport"><script>',
              "watch": "acme", "sentiment": "negative", "min_priority": "50",
              "verified": "true", "sort": "reach", "order": "asc",
              "since": '2026"><script>x</script>'}
    html = mentions_section([], params=params, watches=NAMES, next_cursor=None)
    assert "<script>" not in html
    assert 'name="since" type="text" value="2026&quot;&gt;&lt;script&gt;' in html
    assert 'value="&quot;battery&quot; AND lang:es -author:acmesupport&quot;&gt;&lt;script&gt;"' \
        in html
    for name, value in (("watch", "acme"), ("sentiment", "negative"), ("verified", "true"),
                        ("sort", "reach"), ("order", "asc")):
        assert re.search(rf'<select name="{name}">.*?<option value="{value}" selected>',
                         html), name
    assert 'name="min_priority" type="number" value="50"' in html
    assert "No mentions match." in html


def test_next_page_and_exports_carry_the_search() -> None:
    params = {"q": "battery & co", "watch": "acme", "cursor": "OLD", "since": ""}
    html = mentions_section([_stored(1, "x")], params=params, watches=NAMES,
                            next_cursor="NEXT")
    links = _links(html)
    nxt = next(h for h in links if "cursor=" in h)
    assert parse_qs(urlsplit(nxt).query) == {"q": ["battery & co"], "watch": ["acme"],
                                             "cursor": ["NEXT"]}
    first = next(h for h in links if h.startswith("/console/mentions?") and "cursor" not in h)
    assert parse_qs(urlsplit(first).query) == {"q": ["battery & co"], "watch": ["acme"]}
    exports = [h for h in links if h.startswith("/console/mentions/export?")]
    assert [parse_qs(urlsplit(h).query) for h in exports] == [
        {"q": ["battery & co"], "watch": ["acme"], "format": [f]} for f in ("csv", "jsonl")]
    # The last page: no next link.
    last = mentions_section([_stored(1, "x")], params={}, watches=NAMES, next_cursor=None)
    assert "Next page" not in last and "First page" not in last


def test_an_error_shows_the_form_without_a_result() -> None:
    html = mentions_section(None, params={"q": "(("}, watches=NAMES, next_cursor=None,
                            error="q: <unbalanced>")
    assert 'role="alert">q: &lt;unbalanced&gt;' in html
    assert "Export this result" not in html and 'value="(("' in html


def test_the_page_is_in_the_layout_with_its_nav_entry() -> None:
    html = render.mentions_page(mentions_section([], params={}, watches=NAMES,
                                                 next_cursor=None), session=VIEWER, csrf="t")
    assert '<a href="/console/mentions" aria-current=page>Mentions</a>' in html


def _incident(**kw: object) -> Incident:
    base: dict[str, object] = dict(
        id="acme.0123456789abcdef", fingerprint="acme", watch_id="acme",
        detector="negative_spike", severity="critical", opened_at=T0, updated_at=T0,
        summary="s",
        evidence=[Evidence(detector="negative_spike", severity="critical",
                           window_start=T0 - timedelta(minutes=15 - i), window_end=T0,
                           observed=40, expected=6.5, score=6.2) for i in range(3)])
    base.update(kw)
    return Incident.model_validate(base)


def test_the_incident_window_runs_from_its_first_evidence_to_its_end() -> None:
    now = T0 + timedelta(hours=2)
    since, until = incident_window(_incident(), now=now)
    assert since == T0 - timedelta(minutes=15)
    assert until == now + timedelta(seconds=1)  # still open: up to now
    done = _incident(state="resolved", resolved_at=T0 + timedelta(minutes=40))
    assert incident_window(done, now=now)[1] == T0 + timedelta(minutes=40, seconds=1)
    bare = _incident(evidence=[])
    assert incident_window(bare, now=now)[0] == T0 - timedelta(minutes=30)


def test_the_incident_link_prefills_watch_and_window() -> None:
    now = datetime(2026, 3, 1, 13, 0, tzinfo=UTC)
    html = incident_mentions_link(_incident(), count=1234, cap=10_000, now=now)
    [href] = _links(html)
    assert parse_qs(urlsplit(href).query) == {
        "watch": ["acme"], "since": ["2026-03-01T11:45:00+00:00"],
        "until": ["2026-03-01T13:00:01+00:00"]}
    assert "All 1,234 mentions of this incident" in html
    assert "All 10,000+ mentions" in incident_mentions_link(_incident(), count=10_001,
                                                            cap=10_000, now=now)
    assert "All 1 mention of" in incident_mentions_link(_incident(), count=1, cap=9, now=now)
    assert ">Mentions of this incident<" in incident_mentions_link(_incident(), count=None,
                                                                   cap=9, now=now)
