"""Issue 24's acceptance for claims, in real browsers: Ana and Ben, each signed in to the
console in a Chromium of their own, claim the same mention; one wins, the other's page
says who has it, and the winner goes on to mark it answered with the reply's link."""

from __future__ import annotations

import asyncio
from pathlib import Path

from playwright.async_api import Page, expect

from tests.support.browser import chromium
from tests.support.claims import BEN, claims_console
from tests.support.secured import ANA


async def _open(page: Page, base: str, user: tuple[str, str]) -> None:
    await page.goto(f"{base}/console/claims/x:1")  # sign-in first, then back here
    await page.get_by_label("Username").fill(user[0])
    await page.get_by_label("Password", exact=True).fill(user[1])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_text("Nobody is answering this")).to_be_visible()


async def test_two_responders_in_two_browsers_one_wins_the_other_sees_who(
        tmp_path: Path) -> None:
    async with claims_console(tmp_path) as base, chromium() as browser:
        ana = await (await browser.new_context()).new_page()
        ben = await (await browser.new_context()).new_page()
        await asyncio.gather(_open(ana, base, ANA), _open(ben, base, BEN))
        await asyncio.gather(
            ana.get_by_role("button", name="I'll answer this").click(),
            ben.get_by_role("button", name="I'll answer this").click())
        await asyncio.gather(ana.wait_for_load_state(), ben.wait_for_load_state())
        pages = {"ana": ana, "ben": ben}
        texts = {n: await p.locator("main").inner_text() for n, p in pages.items()}
        winners = [n for n, t in texts.items() if "Not yours" not in t]
        assert len(winners) == 1, texts
        winner = winners[0]
        loser = "ben" if winner == "ana" else "ana"
        assert f"Not yours: {winner} is answering this." in texts[loser]
        assert await pages[loser].get_by_role("button", name="I'll answer this").count() == 0
        # The winner answers, with the link to the reply; the loser's reload shows it.
        page = pages[winner]
        await page.get_by_label("Link to the reply").fill("https://x.com/acme/status/9")
        await page.get_by_role("button", name="Answered").click()
        await expect(page.get_by_text(f"{winner} answered this", exact=True)).to_be_visible()
        await pages[loser].goto(f"{base}/console/claims/x:1")
        reply = pages[loser].get_by_role("link", name="the reply")
        await expect(reply).to_have_attribute("href", "https://x.com/acme/status/9")
