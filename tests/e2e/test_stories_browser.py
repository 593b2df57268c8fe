"""Issue 24's acceptance for stories in the console, in a real Chromium: a copy-paste storm
in the store shows, under "Show: stories", as one story row with its count, and the row's
link lists the storm's own mentions (the Mentions page's steps of tests/e2e/test_console.py,
on the light worker web app of the claim tests: no broker, a few seconds)."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.async_api import expect

from streams.core.records import EnrichedMention
from tests.support.browser import chromium
from tests.support.claims import claims_console
from tests.support.secured import ANA
from tests.support.store import enriched

COPIES = 40


def _storm() -> list[EnrichedMention]:
    """``COPIES`` accounts pasting one text (handles, links, case and emoji vary), and one
    unrelated mention."""
    out = []
    for i in range(COPIES):
        text = f"Acme charger exploded in my kid's room, never again @friend{i}"
        text = (text.upper() if i % 3 == 0 else text) + f" https://t.co/s{i}" \
            + (" \U0001f621" if i % 2 else "")
        out.append(enriched(100 + i, text, author=f"acct{i}", sentiment="negative",
                            minutes=1 + i / 10))
    return [*out, enriched(2, "Loving the new Acme phone's screen", author="fan", minutes=9)]


async def test_show_stories_folds_a_storm_into_one_row_that_links_to_its_mentions(
        tmp_path: Path) -> None:
    async with claims_console(tmp_path, _storm()) as base, chromium() as browser:
        page = await (await browser.new_context()).new_page()
        await page.goto(f"{base}/console/mentions")  # sign-in first, then back here
        await page.get_by_label("Username").fill(ANA[0])
        await page.get_by_label("Password", exact=True).fill(ANA[1])
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("heading", name="Mentions", exact=True)).to_be_visible()
        await expect(page.locator("tr[data-key]")).to_have_count(COPIES + 2)

        await page.locator("select[name=group]").select_option("story")
        await page.get_by_role("button", name="Search").click()
        rows = page.locator("tr[data-story]")
        await expect(rows).to_have_count(3)  # the storm, the fan's post, x:1
        storm = rows.filter(has_text=re.compile("charger exploded", re.IGNORECASE))
        await expect(storm).to_have_count(1)
        await expect(storm.locator("td").nth(1)).to_have_text(str(COPIES))  # mentions
        await expect(storm.locator("td").nth(2)).to_have_text(str(COPIES))  # authors
        story = await storm.get_attribute("data-story")

        await storm.get_by_role("link", name=f"its {COPIES} mentions").click()
        await expect(page).to_have_url(re.compile(rf"story={story}"))
        mentions = page.locator("tr[data-key]")
        await expect(mentions).to_have_count(COPIES)
        texts = await mentions.locator("blockquote").all_inner_texts()
        assert all("charger exploded" in t.lower() for t in texts), texts
