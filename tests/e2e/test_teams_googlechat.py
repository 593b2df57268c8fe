"""A crisis reaches Teams and Google Chat through the whole pipeline, once each.

Real parts: the embedded broker, `escucha worker` as a process, the bundled model, and local
servers speaking a Teams Workflows webhook and a Google Chat space webhook. One furious post
from a 2M-follower account (the influencer detector alerts on it at once, no warm-up)
carries mention text built to ping or link: `<at>`, a Markdown link, `<users/all>`,
`@everyone`. Each service answers the first card with 429 and `Retry-After: 2`.
"""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path

from streams.core.links import LinkSigner
from streams.runtime.broker import EmbeddedBroker
from tests.fakes.googlechat import FakeGoogleChat, card_texts, html_hits
from tests.fakes.teams import FakeTeams, markdown_in, text_of
from tests.support.faults import influencer_mention, publish, until
from tests.support.procs import EscuchaProcess, free_port, write_config

LINK_SECRET = "link-secret-0123456789abcdef"
RETRY_AFTER_S = 2
HOSTILE = ("<at>everyone</at> [claim your refund](https://evil.example/phish) <users/all> "
           "@everyone **urgent**")


def _config(tmp: Path, teams: FakeTeams, chat: FakeGoogleChat, port: int) -> Path:
    return write_config(
        tmp / "escucha.yaml",
        kafka={"commit_interval_s": 1.0},
        notifiers={"teams": {"webhooks": {"comms": teams.url}},
                   "googlechat": {"webhooks": {"comms": chat.url}}},
        api={"public_url": f"http://127.0.0.1:{port}", "link_secret": LINK_SECRET},
        escalation={"policies": [{"id": "crisis", "levels": [
                        {"targets": [{"teams": "comms"}, {"googlechat": "comms"}]}]}],
                    "route": {"policy": "crisis"}},
        watches=[{"id": "acme", "name": "Acme", "terms": ["acme"]}],
        datadir=str(tmp / "var"),
    )


def _page(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(resp.read().decode())


def _ack_of(urls: dict[str, str], signer: LinkSigner) -> str:
    """The incident the card's Acknowledge button acknowledges (its signed link verified)."""
    url = urls["Acknowledge"]
    assert url.startswith(signer.base_url + "/a/"), url
    signed = signer.verify(url.removeprefix(signer.base_url + "/a/"))
    assert signed.action == "ack"
    return signed.incident_id


async def test_a_crisis_reaches_teams_and_google_chat_once_through_a_429(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    port = free_port()
    async with FakeTeams() as teams, FakeGoogleChat() as chat:
        teams.fail_next(429, retry_after=RETRY_AFTER_S)
        chat.fail_next(429, retry_after=RETRY_AFTER_S)
        worker = EscuchaProcess(
            ["worker", "--config", str(_config(tmp_path, teams, chat, port))],
            env={"ESCUCHA_KAFKA_BOOTSTRAP": broker.bootstrap, "ESCUCHA_WEB_PORT": str(port)},
            log=tmp_path / "worker.log")
        try:
            post = influencer_mention(term="Acme", id="crisis-1", handle="loudcritic")
            post = post.model_copy(update={"text": f"{post.text} {HOSTILE}"})
            await publish(broker.bootstrap, [post])
            await until(lambda: teams.cards and chat.messages, timeout=120,
                        what="a card in Teams and in Google Chat",
                        context=lambda: worker.output()[-3000:])
            await asyncio.sleep(3)  # room for a wrong second card to show up
            # The Acknowledge link is the worker's: it answers with its confirmation page.
            ack_url = next(a["url"] for a in teams.cards[0]["actions"]
                           if a["title"] == "Acknowledge")
            page = await asyncio.to_thread(_page, ack_url)
            assert "<form" in page
        finally:
            worker.close()

    # Exactly one card each, after one 429 honoured for its Retry-After.
    assert [p.status for p in teams.posts] == [429, 202], [p.refusal for p in teams.posts]
    assert [p.status for p in chat.posts] == [429, 200], [p.refusal for p in chat.posts]
    for posts in (teams.posts, chat.posts):
        assert posts[1].at - posts[0].at >= RETRY_AFTER_S - 0.1
    (card,) = teams.cards
    (message,) = chat.messages

    # Both carry the signed ack link for the same incident, which the worker serves.
    signer = LinkSigner(secret=LINK_SECRET.encode(), base_url=f"http://127.0.0.1:{port}")
    teams_urls = {a["title"]: a["url"] for a in card.get("actions", [])}
    chat_urls = {b["text"]: b["onClick"]["openLink"]["url"]
                 for section in message["cardsV2"][0]["card"]["sections"]
                 for widget in section["widgets"]
                 for b in widget.get("buttonList", {}).get("buttons", [])}
    incident = _ack_of(teams_urls, signer)
    assert incident.startswith("acme.") and _ack_of(chat_urls, signer) == incident
    assert message["thread"]["name"] == chat.threads[f"escucha-{incident}"]

    # The hostile mention text arrived, and renders as text: no Markdown, tag or ping.
    texts = text_of(card)
    assert any("[claim your refund](" in text for kind, text in texts if kind == "TextRun")
    for kind, text in texts:
        if kind == "TextBlock":
            assert markdown_in(text) == [], text
        assert "@everyone" not in text  # joined with U+2060 so no copy of it pings
    assert "entities" not in card.get("msteams", {})  # no <at> mention can resolve
    rendered = card_texts(message["cardsV2"][0])
    assert any("&lt;users/all&gt;" in text for text in rendered)
    for text in rendered:
        assert html_hits(text) == [], text
    assert "text" not in message and "<" not in message["fallbackText"]

