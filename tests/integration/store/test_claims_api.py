"""The claim routes on the worker's real web app (port 0), over both store backends: two
responders claiming the same mention, one wins and the other is told who has it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import pytest_asyncio

from streams.config.settings import Settings
from tests.support.secured import API_TOKEN, secured_sections
from tests.support.store import BACKENDS, enriched, web_over_store

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
BLUESKY_ID = "at://did:plc:abc123/app.bsky.feed.post/3kabc"  # a key with slashes in it


@pytest_asyncio.fixture(params=BACKENDS)
async def api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    sections = secured_sections(tmp_path, port=6066, bootstrap="127.0.0.1:9")
    if request.param == "postgresql":
        sections["store"] = {"url": request.getfixturevalue("postgres_url")}
    mentions = [enriched(1, "Acme battery exploded"), enriched(2, "Acme again"),
                enriched(BLUESKY_ID, "Acme on Bluesky", source="bluesky"),
                # A copy of x:1 by another account: one story of two mentions.
                enriched(3, "RT @ana: ACME battery exploded \U0001f525", author="b")]
    async with web_over_store(Settings(**sections), mentions) as base:
        yield f"{base}/api/mentions"


async def _post(url: str, body: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, \
            http.post(url, json=body, headers=AUTH if headers is None else headers) as r:
        return r.status, await r.json()


async def test_two_responders_at_once_one_wins_the_other_sees_who(api: str) -> None:
    results = await asyncio.gather(*(_post(f"{api}/x:1/claim", {"by": who})
                                     for who in ("Ana", "Ben")))
    statuses = sorted(s for s, _ in results)
    assert statuses == [200, 409]
    winner = next(d for s, d in results if s == 200)["claim"]["by"]
    loser = next(d for s, d in results if s == 409)
    assert loser["claim"]["by"] == winner and loser["says"] == f"{winner} is answering this"
    async with aiohttp.ClientSession() as http, \
            http.get(f"{api}/x:1/claim", headers=AUTH) as r:
        data = await r.json()
    assert r.status == 200 and data["claim"]["by"] == winner
    assert [h["state"] for h in data["history"]] == ["claimed"]
    async with aiohttp.ClientSession() as http, \
            http.get(api.replace("/api/mentions", "/metrics")) as r:
        metrics = await r.text()
    for outcome, n in (("done", 1), ("taken", 1), ("refused", 0)):
        assert f'escucha_claims_total{{action="claim",outcome="{outcome}"}} {n}.0' in metrics


async def test_answer_with_a_link_then_nobody_else_can_claim(api: str) -> None:
    assert (await _post(f"{api}/x:2/claim", {"by": "Ana"}))[0] == 200
    status, data = await _post(f"{api}/x:2/answer", {"by": "Ana",
                                                     "reply_url": "javascript:alert(1)"})
    assert status == 400 and "reply_url" in data["error"]
    status, data = await _post(f"{api}/x:2/answer", {"by": "Ana",
                                                     "reply_url": "https://x.com/acme/9"})
    assert status == 200 and data["claim"]["state"] == "answered"
    assert data["claim"]["reply_url"] == "https://x.com/acme/9"
    status, data = await _post(f"{api}/x:2/claim", {"by": "Ben"})
    assert status == 409 and data["says"] == "Ana answered this"


async def test_a_key_with_slashes_is_claimed_percent_encoded(api: str) -> None:
    key = quote(f"bluesky:{BLUESKY_ID}", safe="")
    status, data = await _post(f"{api}/{key}/claim", {"by": "Ana"})
    assert status == 200 and data["claim"]["subject"] == f"bluesky:{BLUESKY_ID}"


@pytest.mark.parametrize(("path", "body", "headers", "status", "says"), [
    ("x:1/claim", {"by": "Ana"}, {}, 401, "bearer token"),
    ("x:1/claim", {}, None, 400, "by: say who you are"),
    ("x:404/claim", {"by": "Ana"}, None, 404, "no stored mention"),
    ("x:1/steal", {"by": "Ana"}, None, 404, "one of claim, answer, release, not-answering"),
    ("x:1/not-answering", {"by": "Ana"}, None, 400, "reason"),
    ("x:1/release", {"by": "Ana"}, None, 409, "you do not hold this claim"),
])
async def test_bad_requests_say_what_to_send(api: str, path: str, body: dict[str, str],
                                             headers: dict[str, str] | None, status: int,
                                             says: str) -> None:
    got, data = await _post(f"{api}/{path}", body, headers)
    assert got == status and says in data["error"]


async def _story(api: str, text: str) -> str:
    """The id of the story whose sample is ``text``, as the grouped view answers it."""
    async with aiohttp.ClientSession() as http, \
            http.get(f"{api}?group=story", headers=AUTH) as r:
        rows = (await r.json())["stories"]
    return str(next(row["story"] for row in rows if row["sample"]["text"] == text))


async def test_two_responders_claim_a_story_one_wins_the_other_sees_who(api: str) -> None:
    story = await _story(api, "Acme battery exploded")
    stories = api.replace("/api/mentions", "/api/stories")
    results = await asyncio.gather(*(_post(f"{stories}/{story}/claim", {"by": who})
                                     for who in ("Ana", "Ben")))
    assert sorted(s for s, _ in results) == [200, 409]
    winner = next(d for s, d in results if s == 200)["claim"]
    assert winner["kind"] == "story" and winner["subject"] == story
    loser = next(d for s, d in results if s == 409)
    assert loser["says"] == f"{winner['by']} is answering this"
    other = "Ben" if winner["by"] == "Ana" else "Ana"
    assert (await _post(f"{stories}/{story}/release", {"by": other}))[0] == 409
    status, data = await _post(f"{stories}/{story}/answer",
                               {"by": winner["by"], "reply_url": "https://x.com/acme/7"})
    assert status == 200 and data["claim"]["state"] == "answered"
    async with aiohttp.ClientSession() as http, \
            http.get(f"{stories}/{story}/claim", headers=AUTH) as r:
        data = await r.json()
    assert r.status == 200 and [h["state"] for h in data["history"]] == ["claimed", "answered"]
    # The story's claim is the story's: its first mention stays unclaimed.
    async with aiohttp.ClientSession() as http, \
            http.get(f"{api}/x:1/claim", headers=AUTH) as r:
        assert (await r.json())["claim"] is None


@pytest.mark.parametrize(("path", "body", "headers", "status", "says"), [
    ("{story}/claim", {"by": "Ana"}, {}, 401, "bearer token"),
    ("{story}/claim", {}, None, 400, "by: say who you are"),
    ("0123456789abcdef/claim", {"by": "Ana"}, None, 404, "no stored story"),
    ("x:1/claim", {"by": "Ana"}, None, 400, "16 hexadecimal digits"),
    ("{story}/steal", {"by": "Ana"}, None, 404, "one of claim, answer, release"),
    ("{story}/not-answering", {"by": "Ana"}, None, 400, "reason"),
    ("{story}/answer", {"by": "Ana", "reply_url": "javascript:alert(1)"}, None, 400,
     "reply_url"),
    ("{story}/release", {"by": "Ana"}, None, 409, "you do not hold this claim"),
])
async def test_bad_story_requests_say_what_to_send(api: str, path: str, body: dict[str, str],
                                                   headers: dict[str, str] | None,
                                                   status: int, says: str) -> None:
    story = await _story(api, "Acme again")
    url = api.replace("/api/mentions", "/api/stories") + "/" + path.format(story=story)
    got, data = await _post(url, body, headers)
    assert got == status and says in data["error"]
