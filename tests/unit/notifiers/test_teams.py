"""TeamsNotifier against a fake Teams Workflows webhook that checks the Adaptive Card shape."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from pydantic import SecretStr, ValidationError

from notifiers import registry
from notifiers.base import Notifier
from notifiers.errors import DeliveryError
from notifiers.teams import CARD_VERSION, TeamsNotifier, TeamsSettings
from streams.core.links import LinkSigner
from streams.core.records import Incident, Notification, NotificationKind, SampleMention
from tests.fakes.teams import FakeTeams, markdown_in, text_of

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HOSTILE = "<!channel> **bold** [x](http://evil) <script> & @everyone <at>Ana</at> {{DATE(x)}}"
SIGNER = LinkSigner(secret=b"0123456789abcdef-test", base_url="https://escucha.example.com")


def notification(*, kind: NotificationKind = "trigger", state: str = "open",
                 samples: list[SampleMention] | None = None, summary: str = "24 negative "
                 "mentions in the 1-minute window", target: str = "crisis",
                 **incident: Any) -> Notification:
    inc = Incident.model_validate({
        "id": "acme.1f2e", "fingerprint": "acme:negative_spike", "watch_id": "acme",
        "detector": "negative_spike", "severity": "critical", "state": state,
        "opened_at": NOW, "updated_at": NOW, "summary": summary,
        "samples": samples if samples is not None else [SampleMention(
            key="x:1", url="https://social.example/1", author="customer",
            text="acme broke my order", priority=80)], **incident})
    return Notification(id=f"acme.1f2e:L1:teams:{kind}", incident=inc, level=1,
                        channel="teams", target=target, created_at=NOW, kind=kind)


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeTeams]:
    async with FakeTeams() as server:
        yield server


@pytest_asyncio.fixture
async def teams(fake: FakeTeams) -> AsyncIterator[TeamsNotifier]:
    settings = TeamsSettings(webhooks={"crisis": SecretStr(fake.url)}, timeout_s=5)
    notifier = TeamsNotifier(settings=settings, links=SIGNER, watch_names={"acme": "Acme"})
    yield notifier
    await notifier.close()


async def test_posts_an_adaptive_card_with_signed_open_url_buttons(
    fake: FakeTeams, teams: TeamsNotifier
) -> None:
    assert isinstance(teams, Notifier) and teams.channel == "teams"
    receipt = await teams.send(notification())
    (post,) = fake.posts
    assert post.status == 202 and receipt.external_id is None
    message = post.json
    assert message["type"] == "message"
    (attachment,) = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == CARD_VERSION == "1.4"
    texts = text_of(card)
    assert texts[0] == ("TextBlock", r"\[CRITICAL\] Acme: negative spike")
    assert ("TextRun", "24 negative mentions in the 1-minute window") in texts
    assert ("TextRun", "acme broke my order") in texts
    assert ("TextRun", "@customer: ") in texts
    actions = {a["title"]: a for a in card["actions"]}
    assert all(a["type"] == "Action.OpenUrl" for a in actions.values())
    assert list(actions) == ["Acknowledge", "Resolve", "Open incident", "View first mention"]
    ack = SIGNER.verify(actions["Acknowledge"]["url"].removeprefix(SIGNER.base_url + "/a/"))
    assert (ack.action, ack.incident_id) == ("ack", "acme.1f2e")
    resolve = SIGNER.verify(actions["Resolve"]["url"].removeprefix(SIGNER.base_url + "/a/"))
    assert resolve.action == "resolve"
    assert actions["Open incident"]["url"] == \
        "https://escucha.example.com/console/incidents/acme.1f2e"
    assert actions["View first mention"]["url"] == "https://social.example/1"


@pytest.mark.parametrize(("kind", "state", "extra", "status", "buttons"), [
    ("trigger", "open", {}, None, ["Acknowledge", "Resolve", "Open incident"]),
    ("escalate", "open", {}, "escalated, level 1", ["Acknowledge", "Resolve", "Open incident"]),
    ("reminder", "open", {}, "not acknowledged yet", ["Acknowledge", "Resolve", "Open incident"]),
    ("update", "open", {}, "updated", ["Acknowledge", "Resolve", "Open incident"]),
    # An update right after an escalation: the earlier level hears it escalated.
    ("update", "open", {"level": 2, "timeline": [{"at": NOW, "kind": "escalate",
                                                 "text": "default: level 2"}]},
     "escalated, level 2", ["Acknowledge", "Resolve", "Open incident"]),
    ("acknowledge", "acknowledged", {"acked_by": "ana"}, "acknowledged by ana",
     ["Resolve", "Open incident"]),
    ("resolve", "resolved", {"resolved_by": "bo"}, "resolved by bo", ["Open incident"]),
    ("digest", "open", {}, "2 more notifications rolled up",
     ["Acknowledge", "Resolve", "Open incident"]),
])
async def test_every_kind_says_where_the_incident_stands(
    fake: FakeTeams, teams: TeamsNotifier, kind: NotificationKind, state: str,
    extra: dict[str, Any], status: str | None, buttons: list[str]
) -> None:
    note = notification(kind=kind, state=state, samples=[], **extra)
    if kind == "digest":
        note = note.model_copy(update={"digest": ["warning on globex", "info on initech"]})
    await teams.send(note)
    (card,) = fake.cards
    blocks = [t for kind_, t in text_of(card) if kind_ == "TextBlock"]
    if status is None:
        assert len(blocks) == 2  # title and details, no status line
    else:
        assert blocks[1] == status.replace("-", r"\-").replace(".", r"\.")
    assert [a["title"] for a in card.get("actions", [])] == buttons
    if kind == "digest":
        assert ("TextRun", "• warning on globex") in text_of(card)


async def test_hostile_mention_text_is_inert(fake: FakeTeams, teams: TeamsNotifier) -> None:
    samples = [SampleMention(key="k", url="javascript:alert(1)", author=HOSTILE,
                             text=HOSTILE + "\n- item\r\n\x1b[31m", priority=1)]
    await teams.send(notification(samples=samples, summary=HOSTILE))
    (post,) = fake.posts
    card = post.cards[0]
    assert "msteams" not in card or "entities" not in card["msteams"]  # nobody is mentioned
    for kind, text in text_of(card):
        if kind == "TextBlock":  # Markdown renders here: nothing may be live
            assert markdown_in(text) == [], text
        else:  # a TextRun renders no Markdown; only the broadcast word must be broken
            assert "@everyone" not in text and "\x1b" not in text
    runs = [t for k, t in text_of(card) if k == "TextRun"]
    assert any("**bold** [x](http://evil) <script> &" in t for t in runs)
    # A non-http(s) sample URL never becomes a button.
    assert all(a["url"].startswith("https://") for a in card["actions"])


async def test_a_hostile_watch_name_in_a_text_block_is_escaped(fake: FakeTeams) -> None:
    settings = TeamsSettings(webhooks={"crisis": SecretStr(fake.url)})
    notifier = TeamsNotifier(settings=settings, watch_names={"acme": HOSTILE})
    try:
        await notifier.send(notification())
    finally:
        await notifier.close()
    (card,) = fake.cards
    assert "actions" not in card or [a["title"] for a in card["actions"]] == [
        "View first mention"]  # no signer: no signed buttons
    for kind, text in text_of(card):
        if kind == "TextBlock":
            assert markdown_in(text) == [], text


async def test_rate_limit_is_retryable_with_retry_after_then_delivered_once(
    fake: FakeTeams, teams: TeamsNotifier
) -> None:
    fake.fail_next(429, retry_after=7)
    with pytest.raises(DeliveryError) as info:
        await teams.send(notification())
    assert info.value.retryable is True and info.value.retry_after == 7
    assert "429" in info.value.reason and "teams crisis" in info.value.reason
    await teams.send(notification())
    assert len(fake.cards) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_are_retryable(fake: FakeTeams, teams: TeamsNotifier,
                                           status: int) -> None:
    fake.fail_next(status)
    with pytest.raises(DeliveryError) as info:
        await teams.send(notification())
    assert info.value.retryable is True and info.value.retry_after is None


async def test_a_wrong_signature_is_not_retryable(fake: FakeTeams) -> None:
    url = fake.url.replace(fake.sig, "forged-signature-000")
    notifier = TeamsNotifier(settings=TeamsSettings(webhooks={"crisis": SecretStr(url)}))
    try:
        with pytest.raises(DeliveryError) as info:
            await notifier.send(notification())
    finally:
        await notifier.close()
    assert info.value.retryable is False and "401" in info.value.reason
    assert "copy the workflow's URL again" in info.value.reason
    assert "forged-signature-000" not in info.value.reason


async def test_a_refused_card_is_not_retryable_and_says_why(fake: FakeTeams) -> None:
    url = fake.url.replace(fake.path, fake.path + "/gone")
    notifier = TeamsNotifier(settings=TeamsSettings(webhooks={"crisis": SecretStr(url)}))
    try:
        with pytest.raises(DeliveryError) as info:
            await notifier.send(notification())
    finally:
        await notifier.close()
    assert info.value.retryable is False and "404" in info.value.reason
    assert fake.sig not in info.value.reason and "invoke" not in info.value.reason


async def test_unknown_target_and_server_down(fake: FakeTeams, teams: TeamsNotifier) -> None:
    with pytest.raises(DeliveryError) as info:
        await teams.send(notification(target="nope"))
    assert info.value.retryable is False and "notifiers.teams.webhooks" in info.value.reason
    await fake.stop()
    with pytest.raises(DeliveryError) as info:
        await teams.send(notification())
    assert info.value.retryable is True


async def test_the_url_never_reaches_errors_or_logs(
    fake: FakeTeams, teams: TeamsNotifier, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors = []
    for status in (400, 429, 500):
        fake.fail_next(status, retry_after=1)  # the fake echoes the sig in its answer
        with pytest.raises(DeliveryError) as info:
            await teams.send(notification())
        errors.append(info.value)
    await teams.send(notification())
    for err in errors:
        assert fake.sig not in f"{err} {err!r} {err.__cause__!r}"
    assert fake.sig not in caplog.text and fake.url not in caplog.text


@pytest.mark.parametrize("url", ["http://teams.example.com/x?sig=abc", "ftp://x/y",
                                 "not a url", "https:///path-only"])
def test_settings_refuse_unsafe_urls_without_echoing_them(url: str) -> None:
    with pytest.raises(ValidationError) as info:
        TeamsSettings(webhooks={"crisis": SecretStr(url)})
    assert url not in str(info.value)


def test_registered_as_a_channel_off_until_configured() -> None:
    spec = registry.by_name["teams"]
    assert spec.settings is TeamsSettings and not spec.default_on and "teams" in registry.UPDATABLE
    assert spec.problem(None, "crisis") is not None
    settings = TeamsSettings(webhooks={"crisis": SecretStr("https://x.example.com/w?sig=s")})
    assert spec.problem(settings, "crisis") is None
    assert spec.problem(settings, "other") is not None
