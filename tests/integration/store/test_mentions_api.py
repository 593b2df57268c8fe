"""``GET /api/mentions`` on the worker's real web app (port 0), over both store backends:
the bearer token, the parameters, paging, and the CSV and JSON-lines exports."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from agents.detect.backtest import read_jsonl
from streams.config.settings import Settings
from streams.core.records import EnrichedMention
from tests.support.secured import API_TOKEN, secured_sections
from tests.support.store import BACKENDS, enriched, web_over_store

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
MENTIONS = [
    enriched(1, "Acme battery exploded #acme", sentiment="negative", priority=90, minutes=1),
    enriched(2, "La battery de Acme explotó", lang="es", author="acmesupport", minutes=2),
    enriched(3, "Mi Acme y su battery, otra vez", lang="es", author="maria", minutes=3,
             sentiment="negative"),
    enriched(4, "=HYPERLINK(\"http://evil\") acme", author="@attacker", minutes=4,
             watch="globex", watches=["acme", "globex"]),
    *[enriched(10 + i, f"acme filler {i}", minutes=10 + i) for i in range(12)],
]


@pytest_asyncio.fixture(params=BACKENDS)
async def api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    sections = secured_sections(tmp_path, port=6066, bootstrap="127.0.0.1:9")
    if request.param == "postgresql":
        sections["store"] = {"url": request.getfixturevalue("postgres_url")}
    async with web_over_store(Settings(**sections), MENTIONS) as base:
        yield f"{base}/api/mentions"


async def _get(url: str, params: dict[str, Any] | None = None,
               headers: dict[str, str] | None = None) -> tuple[int, Any, str]:
    async with aiohttp.ClientSession() as http, \
            http.get(url, params=params, headers=AUTH if headers is None else headers) as r:
        body = await r.text()
        data = await r.json() if r.content_type == "application/json" else None
        return r.status, data, body


async def test_a_bearer_token_is_required(api: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}):
        status, data, _ = await _get(api, headers=headers)
        assert status == 401 and "bearer token" in data["error"]


async def test_the_issue_query_with_filters_and_links(api: str) -> None:
    status, data, _ = await _get(api, {"q": '"battery" AND lang:es -author:acmesupport',
                                       "watch": "acme", "sentiment": "negative"})
    assert status == 200
    [found] = data["mentions"]
    assert found["key"] == "x:3"
    assert found["url"] == "https://example.com/x/3"  # linked to the original
    assert found["watch_ids"] == ["acme"] and found["language"] == "es"
    assert data["next_cursor"] is None


async def test_pages_follow_next_cursor_to_the_end(api: str) -> None:
    keys: list[str] = []
    params: dict[str, Any] = {"q": "acme", "limit": "5", "sort": "time"}
    while True:
        status, data, _ = await _get(api, params)
        assert status == 200
        keys += [m["key"] for m in data["mentions"]]
        if data["next_cursor"] is None:
            break
        params["cursor"] = data["next_cursor"]
    expected = sorted(MENTIONS, key=lambda e: e.mention.created_at, reverse=True)
    assert keys == [e.mention.key for e in expected]


@pytest.mark.parametrize(("params", "status", "says"), [
    ({"q": "acme AND"}, 400, "q: the query ends too early"),
    ({"sentiment": "negative' OR '1'='1"}, 400, "sentiment"),
    ({"format": "xml"}, 400, "format: use json, csv or jsonl"),
    ({"cursor": "not-a-cursor"}, 400, "cursor"),
    ({"story": "x' OR 1=1"}, 400, "story: "),
    ({"group": "story", "format": "csv"}, 400, "exports are of mentions"),
])
async def test_bad_parameters_say_what_to_send(api: str, params: dict[str, str], status: int,
                                               says: str) -> None:
    got, data, _ = await _get(api, params)
    assert got == status and says in data["error"]


async def test_stories_grouped_then_one_story_s_mentions(api: str) -> None:
    status, data, _ = await _get(api, {"group": "story", "watch": "acme", "limit": "2"})
    assert status == 200 and data["next_cursor"] is not None
    filler = data["stories"][0]  # the twelve "acme filler N": last seen, one story
    assert (filler["count"], filler["authors"]) == (12, 1)
    assert filler["sample"]["text"] == "acme filler 0"
    status, data, _ = await _get(api, {"story": filler["story"], "limit": "50"})
    assert status == 200
    assert sorted(m["key"] for m in data["mentions"]) == sorted(f"x:{10 + i}" for i in range(12))


async def test_the_json_lines_export_is_what_backtest_reads(api: str, tmp_path: Path) -> None:
    status, _, body = await _get(api, {"q": "acme", "watch": "acme", "format": "jsonl",
                                       "order": "asc"})
    assert status == 200
    path = tmp_path / "export.jsonl"
    path.write_text(body)
    bad: list[tuple[int, str]] = []
    lines = list(read_jsonl(path, on_bad=lambda n, why: bad.append((n, why))))
    assert bad == []
    # One line per mention of the watch searched for, each as the enriched topic had it.
    expected: list[EnrichedMention] = []
    for em in sorted(MENTIONS, key=lambda e: e.mention.created_at):
        expected.append(em.model_copy(update={"watch_id": "acme"}))
    assert lines == expected
    _, _, everything = await _get(api, {"q": "hyperlink", "format": "jsonl"})
    assert [line.count('"watch_id":"') for line in everything.splitlines()] == [1, 1]


async def test_the_csv_export_never_hands_a_spreadsheet_a_formula(api: str) -> None:
    status, _, body = await _get(api, {"q": "acme", "format": "csv", "order": "asc"})
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == len(MENTIONS)
    evil = next(r for r in rows if r["key"] == "x:4")
    assert evil["text"] == "'=HYPERLINK(\"http://evil\") acme"
    assert evil["author"] == "'@attacker"
    assert evil["watch_ids"] == "acme globex"
    assert rows[0]["url"] == "https://example.com/x/1"
