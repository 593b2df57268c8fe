"""The console's Mentions page on the worker's real web app (port 0) over a real SQLite store:
sign-in, the issue's query with filters, keyset paging by its links, sorting, exports for a
viewer, refusals that keep the form, hostile text; the incident link's count on both backends."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from html import unescape
from pathlib import Path

import aiohttp
import pytest_asyncio

from agents.store.search import Search
from agents.store.store import MentionStore
from streams.config.settings import Settings
from streams.core.records import Incident
from streams.web.console.mentions_routes import incident_link
from tests.support.secured import CONSOLE_TOKEN, secured_sections
from tests.support.store import T0, enriched, web_over_store

VIEWER = {"Authorization": f"Bearer {CONSOLE_TOKEN}"}  # the "wallboard" token: a viewer
ES_TOKEN = "console-token-es-0123456789abcdef"
SPANISH = {"Authorization": f"Bearer {ES_TOKEN}"}  # a viewer reading in Spanish, Madrid time
HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(2)> acme'
MENTIONS = [
    enriched(1, "Acme battery exploded #acme", sentiment="negative", priority=90, minutes=1,
             followers=50),
    enriched(2, "La battery de Acme explotó", lang="es", author="acmesupport", minutes=2),
    enriched(3, "Mi Acme y su battery, otra vez", lang="es", author="maria", minutes=3,
             sentiment="negative", followers=90_000),
    enriched(4, HOSTILE, author="<b>x</b>", minutes=4, url="javascript:alert(3)",
             watch="globex", watches=["acme", "globex"]),
    *[enriched(10 + i, f"acme filler {i}", minutes=10 + i) for i in range(12)],
]


@pytest_asyncio.fixture
async def console(tmp_path: Path) -> AsyncIterator[str]:
    sections = secured_sections(tmp_path, port=6066, bootstrap="127.0.0.1:9")
    sections["console"]["tokens"].append({"name": "pantalla", "role": "viewer",
                                          "token": ES_TOKEN, "locale": "es",
                                          "timezone": "Europe/Madrid"})
    async with web_over_store(Settings(**sections), MENTIONS) as base:
        yield base


async def _get(url: str, params: dict[str, str] | None = None,
               headers: dict[str, str] | None = None) -> tuple[int, str, aiohttp.ClientResponse]:
    async with aiohttp.ClientSession() as http, \
            http.get(url, params=params, headers=VIEWER if headers is None else headers,
                     allow_redirects=False) as r:
        return r.status, await r.text(), r


def _keys(html: str) -> list[str]:
    return re.findall(r'<tr data-key="([^"]+)"', html)


async def test_it_needs_a_session(console: str) -> None:
    for path in ("/console/mentions", "/console/mentions/export?format=csv"):
        status, _, resp = await _get(console + path, headers={})
        assert status == 303 and resp.headers["Location"].startswith("/console/login")


async def test_the_issue_query_with_filters_and_the_original_link(console: str) -> None:
    status, html, _ = await _get(console + "/console/mentions", {
        "q": '"battery" AND lang:es -author:acmesupport', "watch": "acme",
        "sentiment": "negative", "since": "", "min_priority": "", "verified": ""})
    assert status == 200, html
    assert _keys(html) == ["x:3"]
    assert 'href="https://example.com/x/3"' in html and "90,000" in html


async def test_the_page_speaks_the_readers_language(console: str) -> None:
    status, html, _ = await _get(console + "/console/mentions", {"lang": "es", "limit": "1"},
                                 headers=SPANISH)
    assert status == 200, html
    assert "<h1>Menciones</h1>" in html and "hay más en la página siguiente" in html
    assert "Mi Acme y su battery, otra vez" in html  # the mention as written
    assert "Next page" not in html


async def test_paging_by_the_next_links_walks_every_mention_once(console: str) -> None:
    url, seen, pages = console + "/console/mentions?q=acme&sort=priority&limit=5", [], 0
    while True:
        status, html, _ = await _get(url)
        assert status == 200, html
        seen += _keys(html)
        pages += 1
        nxt = re.search(r'<a href="([^"]+)" rel="next">', html)
        if nxt is None:
            break
        url = console + unescape(nxt.group(1))
    assert pages == 4 and len(seen) == len(MENTIONS) == len(set(seen))
    assert seen[0] == "x:1"  # priority 90 first


async def test_filters_reach_the_store(console: str) -> None:
    for params, keys in (({"verified": "true"}, []), ({"lang": "es", "order": "asc"},
                                                      ["x:2", "x:3"]),
                         ({"q": "acme", "sort": "reach", "limit": "1"}, ["x:3"]),
                         ({"min_priority": "50"}, ["x:1"]),
                         ({"watch": "globex"}, ["x:4"]),
                         ({"since": (T0 + timedelta(minutes=2)).isoformat(),
                           "until": (T0 + timedelta(minutes=4)).isoformat()}, ["x:3", "x:2"])):
        status, html, _ = await _get(console + "/console/mentions", params)
        assert status == 200 and _keys(html) == keys, params


async def test_hostile_text_stays_text(console: str) -> None:
    _, html, _ = await _get(console + "/console/mentions", {"watch": "globex"})
    assert "<script>" not in html and "<img" not in html and "<b>x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "javascript:" not in html


async def test_a_viewer_exports_the_whole_result_not_the_page(console: str) -> None:
    _, html, _ = await _get(console + "/console/mentions", {"q": "acme", "limit": "5"})
    link = re.search(r'href="(/console/mentions/export\?[^"]*format=csv[^"]*)"', html)
    assert link
    status, body, resp = await _get(console + unescape(link.group(1)))
    assert status == 200 and resp.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == len(MENTIONS)  # every page, not the five on screen
    evil = next(r for r in rows if r["key"] == "x:4")
    assert evil["url"] == ""
    status, body, _ = await _get(console + "/console/mentions/export",
                                 {"lang": "es", "format": "jsonl", "cursor": "stale"})
    assert status == 200  # a page's cursor is dropped: the export is the whole result
    assert sorted(json.loads(line)["mention"]["id"] for line in body.splitlines()) == ["2", "3"]


async def test_refusals_keep_the_form_and_say_why(console: str) -> None:
    for params, status, says in (
            ({"q": "acme AND"}, 400, "q: the query ends too early"),
            ({"watch": "nope"}, 400, "watch: no watch"),
            ({"sentiment": "angry"}, 400, "sentiment"),
            ({"cursor": "forged"}, 400, "cursor"),
            ({"bogus": "1"}, 400, "unknown parameter")):
        got, html, _ = await _get(console + "/console/mentions", params)
        assert got == status and says in unescape(html), (params, html[-600:])
        assert 'role="search"' in html and "Export this result" not in html
    got, html, _ = await _get(console + "/console/mentions/export", {"format": "xml"})
    assert got == 400 and "Export as csv or jsonl" in html
    got, html, _ = await _get(console + "/console/mentions/export",
                              {"format": "csv", "q": "(("})
    assert got == 400 and 'role="alert"' in html


async def test_the_incident_link_counts_its_window(store: MentionStore) -> None:
    store.write(MENTIONS)
    window = Search(watches=("acme",), since=T0 + timedelta(minutes=2),
                    until=T0 + timedelta(minutes=12))
    assert store.count_matching(window) == 5  # x:2, x:3, x:4 (two watches), x:10, x:11
    assert store.count_matching(window, cap=3) == 4  # past the cap: "3+"
    assert store.count_matching(Search(watches=("globex",))) == 1
    inc = Incident.model_validate(dict(
        id="acme.0123456789abcdef", fingerprint="acme", watch_id="acme",
        detector="volume_spike", severity="warning", opened_at=T0 + timedelta(minutes=30),
        updated_at=T0, summary="s", state="resolved", resolved_by="ana",
        resolved_at=T0 + timedelta(minutes=40)))
    html = await incident_link(store, inc)
    assert "All 16 mentions of this incident" in html  # opened - 30 min .. resolved


async def test_grouped_by_story_one_row_a_story_linked_to_its_mentions(console: str) -> None:
    status, html, _ = await _get(console + "/console/mentions",
                                 {"group": "story", "watch": "acme"})
    assert status == 200 and _keys(html) == []  # stories, not copies
    stories = re.findall(r'<tr data-story="([0-9a-f]{16})"', html)
    assert len(stories) == 5  # four texts, and twelve "acme filler N" folded into one
    assert '<option value="story" selected>' in html  # the toggle says what is shown
    link = re.search(r'<a href="([^"]+)" class="story-mentions">its 12 mentions</a>', html)
    assert link, html
    status, html, _ = await _get(console + unescape(link.group(1)))
    assert status == 200 and sorted(_keys(html)) == sorted(f"x:{10 + i}" for i in range(12))


async def test_a_story_s_sample_text_stays_text(console: str) -> None:
    _, html, _ = await _get(console + "/console/mentions", {"group": "story", "watch": "globex"})
    assert len(re.findall(r'<tr data-story="', html)) == 1
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
