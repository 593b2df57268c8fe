"""Claims in the console, over HTTP with two signed-in browsers' worth of sessions (cookie,
CSRF form token) on the worker's real web app and a real SQLite store: Ana and Ben claim the
same mention at once; one wins, the other's page says who has it."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest_asyncio

from tests.support.claims import BEN, claims_console
from tests.support.secured import ANA, CONSOLE_TOKEN

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest_asyncio.fixture
async def base(tmp_path: Path) -> AsyncIterator[str]:
    async with claims_console(tmp_path) as url:
        yield url


async def _browser_signed_in(base: str, user: tuple[str, str]
                             ) -> tuple[aiohttp.ClientSession, str]:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.get(f"{base}/console/login") as r:
        csrf = _CSRF.search(await r.text()).group(1)  # type: ignore[union-attr]
    async with http.post(f"{base}/console/login", allow_redirects=False, data={
            "csrf": csrf, "username": user[0], "password": user[1]}) as r:
        assert r.status == 303
    return http, csrf


async def _browser(base: str, user: tuple[str, str]) -> tuple[aiohttp.ClientSession, str]:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.get(f"{base}/console/login") as r:
        csrf = _CSRF.search(await r.text()).group(1)  # type: ignore[union-attr]
    async with http.post(f"{base}/console/login", allow_redirects=False, data={
            "csrf": csrf, "username": user[0], "password": user[1],
            "next": "/console/claims/x:1"}) as r:
        assert r.status == 303
    async with http.get(f"{base}/console/claims/x:1") as r:
        page = await r.text()
        assert r.status == 200 and "Nobody is answering this" in page
    return http, _CSRF.search(page).group(1)  # type: ignore[union-attr]


async def test_two_responders_in_two_browsers_one_wins_the_other_sees_who(base: str) -> None:
    (ana, ana_csrf), (ben, ben_csrf) = await _browser(base, ANA), await _browser(base, BEN)
    try:
        async def claim(http: aiohttp.ClientSession, csrf: str) -> tuple[int, str]:
            async with http.post(f"{base}/console/claims/x:1/claim",
                                 data={"csrf": csrf}) as r:
                return r.status, await r.text()

        (a_status, a_page), (b_status, b_page) = await asyncio.gather(
            claim(ana, ana_csrf), claim(ben, ben_csrf))
        assert sorted([a_status, b_status]) == [200, 409]
        winner, lost = ("ana", b_page) if a_status == 200 else ("ben", a_page)
        assert f"Not yours: {winner} is answering this." in lost
        assert '/console/claims/x%3A1/claim"' not in lost  # no claim form while it is held
        assert '/console/claims/x%3A1/answer"' not in lost  # nor answer: it is not theirs
        # The winner's page (after the redirect) offers answer and release.
        won = a_page if a_status == 200 else b_page
        assert f"{winner} is answering this" in won and "/console/claims/x%3A1/release" in won
    finally:
        await ana.close()
        await ben.close()


async def test_the_form_token_and_the_responder_role_are_required(base: str) -> None:
    ana, csrf = await _browser(base, ANA)
    try:
        async with ana.post(f"{base}/console/claims/x:1/claim", data={"csrf": "forged"}) as r:
            assert r.status == 403 and "form token" in await r.text()
        async with ana.post(f"{base}/console/claims/x:1/answer", data={
                "csrf": csrf, "reply_url": "javascript:alert(1)"}) as r:
            assert r.status == 400 and "reply_url" in await r.text()
    finally:
        await ana.close()
    async with aiohttp.ClientSession() as viewer:  # the wallboard's viewer token
        headers = {"Authorization": f"Bearer {CONSOLE_TOKEN}"}
        async with viewer.post(f"{base}/console/claims/x:1/claim", headers=headers) as r:
            assert r.status == 403 and "Viewers cannot claim" in await r.text()
        async with viewer.get(f"{base}/console/claims/x:1", headers=headers) as r:
            page = await r.text()
            assert r.status == 200 and "Nobody is answering this" in page
            assert "/claim\"" not in page  # no forms for a viewer


async def test_the_mentions_page_says_who_answers_each_mention(base: str) -> None:
    ana, csrf = await _browser(base, ANA)
    try:
        async with ana.get(f"{base}/console/mentions") as r:
            page = await r.text()
            assert r.status == 200
            assert 'href="/console/claims/x%3A1">Who answers this?</a>' in page
        async with ana.post(f"{base}/console/claims/x:1/claim", data={"csrf": csrf}) as r:
            assert r.status == 200
        async with ana.get(f"{base}/console/mentions") as r:
            page = await r.text()
            assert 'href="/console/claims/x%3A1">ana is answering this</a>' in page
    finally:
        await ana.close()


async def test_mentions_are_shown_even_when_their_claims_cannot_be_read(
        base: str, tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "var" / "store" / "mentions.sqlite3")
    db.execute("DROP TABLE claims")  # a broken claims table: the search still answers
    db.close()
    ana, _ = await _browser_signed_in(base, ANA)
    try:
        async with ana.get(f"{base}/console/mentions") as r:
            page = await r.text()
            assert r.status == 200 and 'data-key="x:1"' in page
            assert "Who answers this?" in page
    finally:
        await ana.close()


async def test_a_story_is_claimed_from_the_grouped_view_by_one_of_two(base: str) -> None:
    (ana, ana_csrf), (ben, ben_csrf) = await _browser(base, ANA), await _browser(base, BEN)
    try:
        async with ana.get(f"{base}/console/mentions", params={"group": "story"}) as r:
            page = await r.text()
        [story] = re.findall(r'<tr data-story="([0-9a-f]{16})"', page)
        assert f'href="/console/story-claims/{story}">Who answers this?</a>' in page

        async def claim(http: aiohttp.ClientSession, csrf: str) -> tuple[int, str]:
            async with http.post(f"{base}/console/story-claims/{story}/claim",
                                 data={"csrf": csrf}) as r:
                return r.status, await r.text()

        (a_status, a_page), (b_status, b_page) = await asyncio.gather(
            claim(ana, ana_csrf), claim(ben, ben_csrf))
        assert sorted([a_status, b_status]) == [200, 409]
        winner, lost = ("ana", b_page) if a_status == 200 else ("ben", a_page)
        assert f"Not yours: {winner} is answering this." in lost
        assert f"/console/story-claims/{story}/claim" not in lost
        async with ana.get(f"{base}/console/mentions", params={"group": "story"}) as r:
            assert f'{winner} is answering this</a>' in await r.text()
        async with ana.get(f"{base}/console/mentions") as r:  # the mention itself is free
            assert 'href="/console/claims/x%3A1">Who answers this?</a>' in await r.text()
    finally:
        await ana.close()
        await ben.close()
