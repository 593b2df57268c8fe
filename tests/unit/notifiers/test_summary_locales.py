"""The detector's summary in each channel's language (summary_for): rendered from the
incident's parts in the target's locale and zone, escaped afterwards exactly as before; the
stored English where there are no parts, nothing configured, or parts it cannot say."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from pydantic import SecretStr

from notifiers.email import EmailNotifier, EmailSettings
from notifiers.followup import digest_line
from notifiers.googlechat import GoogleChatNotifier, GoogleChatSettings
from notifiers.pagerduty import PagerDutySettings, build_event
from notifiers.push import NtfySettings, PushNotifier
from notifiers.slack import SlackNotifier
from notifiers.stories import summary_for
from notifiers.teams import TeamsNotifier, TeamsSettings
from notifiers.text import slack_escape
from streams.core.records import Incident, Notification, Phrase
from streams.i18n import EN, Lang
from streams.i18n.summaries import render_summary
from tests.fakes.slack import FakeSlack

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # 09:00 in Madrid (CET)
TOKEN = "xoxb-1234567890-SECRET-TOKEN-abcdef"
TARGET = "soporte"
ES = {"locale": "en", "target_locales": {TARGET: "es"}, "timezone": "Europe/Madrid"}
# The story text, a handle and a term come from mentions: attacker-controlled.
EVIL = "<!channel> *bold* <https://evil|x>"
PARTS = [
    Phrase(key="negative_spike", params={"observed": 40, "minutes": 5, "ratio": 6.25,
                                         "expected": 6.4, "p": 2.5e-9, "authors": 31}),
    Phrase(key="stories", params={"stories": 3, "text": EVIL, "count": 30, "authors": 29,
                                  "minutes": 9}),
    Phrase(key="campaign"),
    Phrase(key="window", params={"start": "2026-03-02T07:55:00+00:00",
                                 "end": "2026-03-02T08:00:00+00:00"}),
    Phrase(key="top_terms", params={"terms": ["<@U123>", "recall"]}),
    Phrase(key="top_authors", params={"handles": ["here", "pepa"], "counts": [3, 2]}),
]
ENGLISH = render_summary(PARTS)
SPANISH = render_summary(PARTS, locale="es", timezone="Europe/Madrid")


def _note(parts: list[Phrase] = PARTS, target: str = TARGET) -> Notification:
    inc = Incident(id="acme.1", fingerprint="acme:negative_spike", watch_id="acme",
                   detector="negative_spike", severity="critical", opened_at=T0, updated_at=T0,
                   summary=ENGLISH, summary_parts=parts)
    return Notification(id="acme.1:L1:trigger", incident=inc, level=1, channel="x",
                        target=target, created_at=T0)


def test_the_parts_say_it_in_spanish_in_the_targets_zone() -> None:
    assert ENGLISH.startswith("40 negative mentions in 5 min, 6.2x the expected 6.4")
    assert SPANISH.startswith("40 menciones negativas en 5 min, 6,2x lo esperado (6,4)")
    assert "08:55\u201309:00 CET" in SPANISH and f"\u00ab{EVIL}\u00bb" in SPANISH
    assert "autores principales: @here (3), @pepa (2)" in SPANISH


def test_summary_for_picks_parts_or_the_stored_english() -> None:
    inc = _note().incident
    assert summary_for(inc, Lang("es", "Europe/Madrid")) == SPANISH
    assert summary_for(inc, EN) == inc.summary == ENGLISH
    # English in another zone: rendered (the window moves), not the stored UTC text.
    assert "08:55\u201309:00 CET" in summary_for(inc, Lang("en", "Europe/Madrid"))
    old = _note(parts=[]).incident  # an incident from before parts existed
    assert summary_for(old, Lang("es", "Europe/Madrid")) == ENGLISH


def test_parts_it_cannot_say_fall_back_to_english_and_say_so(
        caplog: pytest.LogCaptureFixture) -> None:
    newer = _note(parts=[*PARTS, Phrase(key="from_a_newer_detector", params={"x": EVIL})])
    with caplog.at_level(logging.WARNING, logger="notifiers.stories"):
        assert summary_for(newer.incident, Lang("es", "UTC")) == ENGLISH
    assert "from_a_newer_detector" in caplog.text and EVIL not in caplog.text


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=TOKEN, clock=lambda: T0.timestamp() + 1) as server:
        yield server


async def test_a_spanish_slack_alert_is_escaped_after_rendering(fake: FakeSlack) -> None:
    slack = SlackNotifier(token=TOKEN, channel="#alertas", base_url=fake.url,
                          watch_names={"acme": "Acme"}, locale="en",
                          target_locales={TARGET: "es"}, timezone="Europe/Madrid")
    try:
        await slack.send(_note())
    finally:
        await slack.close()
    (message,) = fake.messages(TARGET)
    section = message["blocks"][2]["text"]["text"]
    assert slack_escape(SPANISH, limit=1500) in section
    assert "menciones negativas" in section and "campaña: una sola historia domina" in section
    everything = json.dumps(message, ensure_ascii=False)
    for live in ("<!channel>", "<https://evil", "<@U123>", "@here"):
        assert live not in everything, live
    assert "&lt;!channel&gt; *bold* &lt;https://evil|x&gt;" in section
    assert "&lt;@U123&gt;" in section and "@\u2060here (3)" in section


def _channels() -> dict[str, Any]:
    links = None
    note = _note()
    email = EmailNotifier(settings=EmailSettings(**ES), links=links).render(note)
    teams = TeamsNotifier(settings=TeamsSettings(
        webhooks={TARGET: SecretStr("https://x.example/w")}, **ES), links=links,
        watch_names={}).render(note)
    chat = GoogleChatNotifier(settings=GoogleChatSettings(
        webhooks={TARGET: SecretStr("https://chat.example/w")}, **ES), links=links,
        watch_names={}).render(note)
    push = PushNotifier(settings=NtfySettings(**ES), links=links, watch_names={}).render(note)
    pd = build_event(note, routing_key="k" * 32, watch_name="Acme", console=None,
                     lang=PagerDutySettings(services={TARGET: SecretStr("k" * 32)},
                                            **ES).lang_for(TARGET))
    return {
        "email text": email.get_body(("plain",)).get_content(),  # type: ignore[union-attr]
        "email html": email.get_body(("html",)).get_content(),  # type: ignore[union-attr]
        "teams": json.dumps(teams, ensure_ascii=False),
        "google chat": json.dumps(chat, ensure_ascii=False),
        "push": push["message"],
        "pagerduty": pd["payload"]["summary"] + "\n" + pd["payload"]["custom_details"]["summary"],
        "digest": digest_line(note, Lang("es", "Europe/Madrid")),
    }


@pytest.mark.parametrize("channel", sorted(_channels()))
def test_every_channel_shows_the_spanish_summary(channel: str) -> None:
    shown = _channels()[channel]
    assert "menciones negativas en 5 min" in shown and "6,2x lo esperado" in shown
    assert "negative mentions in 5 min" not in shown
    if channel in ("email html", "google chat"):  # HTML: the story text as entities
        assert "&lt;!channel&gt;" in shown and "<!channel>" not in shown
        assert "&lt;https://evil|x&gt;" in shown
