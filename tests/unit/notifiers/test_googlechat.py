"""GoogleChatNotifier against a fake space webhook that checks the cardsV2 shape."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_asyncio
from pydantic import SecretStr, ValidationError

from notifiers import registry
from notifiers.base import Notifier
from notifiers.errors import DeliveryError
from notifiers.googlechat import GoogleChatNotifier, GoogleChatSettings, message_id, thread_url
from streams.core.links import LinkSigner
from streams.core.records import Incident, Notification, NotificationKind, SampleMention
from tests.fakes.googlechat import FakeGoogleChat, card_texts, html_hits

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HOSTILE = "<!channel> **bold** [x](http://evil) <script> & @everyone <users/all> <a href=x>"
SIGNER = LinkSigner(secret=b"0123456789abcdef-test", base_url="https://escucha.example.com")


def notification(*, kind: NotificationKind = "trigger", state: str = "open",
                 samples: list[SampleMention] | None = None, summary: str = "24 negative "
                 "mentions in the 1-minute window", target: str = "comms",
                 **incident: Any) -> Notification:
    inc = Incident.model_validate({
        "id": "acme.1f2e", "fingerprint": "acme:negative_spike", "watch_id": "acme",
        "detector": "negative_spike", "severity": "critical", "state": state,
        "opened_at": NOW, "updated_at": NOW, "summary": summary,
        "samples": samples if samples is not None else [SampleMention(
            key="x:1", url="https://social.example/1", author="customer",
            text="acme broke my order", priority=80)], **incident})
    return Notification(id=f"acme.1f2e:L1:googlechat:{kind}", incident=inc, level=1,
                        channel="googlechat", target=target, created_at=NOW, kind=kind)


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeGoogleChat]:
    async with FakeGoogleChat() as server:
        yield server


@pytest_asyncio.fixture
async def chat(fake: FakeGoogleChat) -> AsyncIterator[GoogleChatNotifier]:
    settings = GoogleChatSettings(webhooks={"comms": SecretStr(fake.url)}, timeout_s=5)
    notifier = GoogleChatNotifier(settings=settings, links=SIGNER, watch_names={"acme": "Acme"})
    yield notifier
    await notifier.close()


def _buttons(message: dict[str, Any]) -> dict[str, str]:
    out = {}
    for section in message["cardsV2"][0]["card"]["sections"]:
        for widget in section["widgets"]:
            for button in widget.get("buttonList", {}).get("buttons", []):
                out[button["text"]] = button["onClick"]["openLink"]["url"]
    return out


async def test_posts_a_cards_v2_card_with_signed_link_buttons(
    fake: FakeGoogleChat, chat: GoogleChatNotifier
) -> None:
    assert isinstance(chat, Notifier) and chat.channel == "googlechat"
    receipt = await chat.send(notification())
    (post,) = fake.posts
    assert post.status == 200
    assert post.query["messageReplyOption"] == "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"
    assert post.query["token"] == fake.token  # the configured URL's own query is kept
    (message,) = fake.messages
    assert receipt.external_id == message["name"]
    assert message["name"].startswith(f"spaces/{fake.space}/messages/")
    assert "text" not in message  # Chat's Markdown (and <users/all>) never gets our text
    (entry,) = message["cardsV2"]
    assert entry["cardId"] == "escucha-acme.1f2e"
    header = entry["card"]["header"]
    assert header["title"] == "[CRITICAL] Acme: negative spike"
    assert "Watch: Acme" in header["subtitle"]
    texts = card_texts(entry)
    assert "24 negative mentions in the 1-minute window" in texts
    assert "<b>@customer</b>: acme broke my order" in texts
    buttons = _buttons(message)
    assert list(buttons) == ["Acknowledge", "Resolve", "Open incident"]
    ack = SIGNER.verify(buttons["Acknowledge"].removeprefix(SIGNER.base_url + "/a/"))
    assert (ack.action, ack.incident_id) == ("ack", "acme.1f2e")
    assert buttons["Open incident"] == "https://escucha.example.com/console/incidents/acme.1f2e"


async def test_follow_ups_reply_in_the_incident_thread(
    fake: FakeGoogleChat, chat: GoogleChatNotifier
) -> None:
    await chat.send(notification())
    await chat.send(notification(kind="acknowledge", state="acknowledged", acked_by="ana"))
    await chat.send(notification(kind="resolve", state="resolved", resolved_by="bo"))
    first, ack, resolved = fake.messages
    assert first["thread"]["name"] == ack["thread"]["name"] == resolved["thread"]["name"]
    assert list(_buttons(ack)) == ["Resolve", "Open incident"]
    assert "acknowledged by ana" in card_texts(ack["cardsV2"][0])[0]
    assert list(_buttons(resolved)) == ["Open incident"]
    assert "resolved by bo" in resolved["fallbackText"]


@pytest.mark.parametrize(("kind", "status"), [
    ("escalate", "escalated, level 1"), ("reminder", "not acknowledged yet"),
    ("update", "updated"), ("digest", "1 more notification rolled up"),
])
async def test_every_kind_says_where_the_incident_stands(
    fake: FakeGoogleChat, chat: GoogleChatNotifier, kind: NotificationKind, status: str
) -> None:
    note = notification(kind=kind)
    if kind == "digest":
        note = note.model_copy(update={"digest": ["warning on globex"]})
    await chat.send(note)
    (message,) = fake.messages
    texts = card_texts(message["cardsV2"][0])
    assert status in texts[0]
    assert ("• warning on globex" in texts) == (kind == "digest")


async def test_hostile_mention_text_is_escaped(fake: FakeGoogleChat,
                                               chat: GoogleChatNotifier) -> None:
    samples = [SampleMention(key="k", url="javascript:alert(1)", author=HOSTILE,
                             text=HOSTILE, priority=1)]
    await chat.send(notification(samples=samples, summary=HOSTILE))
    (message,) = fake.messages
    entry = message["cardsV2"][0]
    for text in card_texts(entry):
        assert html_hits(text) == [], text
    assert "&lt;users/all&gt;" in card_texts(entry)[1] and "&amp;" in card_texts(entry)[1]
    sample_widget = entry["card"]["sections"][1]["widgets"][0]["decoratedText"]
    assert "button" not in sample_widget  # a javascript: URL never becomes a link
    assert "<" not in message["fallbackText"]


async def test_rate_limit_is_retryable_with_retry_after_then_delivered_once(
    fake: FakeGoogleChat, chat: GoogleChatNotifier
) -> None:
    fake.fail_next(429, retry_after=2)
    with pytest.raises(DeliveryError) as info:
        await chat.send(notification())
    assert info.value.retryable is True and info.value.retry_after == 2
    assert "RESOURCE_EXHAUSTED" in info.value.reason and "per space" in info.value.reason
    assert fake.token not in info.value.reason  # the fake echoed it; it was scrubbed
    await chat.send(notification())
    assert len(fake.messages) == 1


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_retryable(fake: FakeGoogleChat, chat: GoogleChatNotifier,
                                           status: int) -> None:
    fake.fail_next(status)
    with pytest.raises(DeliveryError) as info:
        await chat.send(notification())
    assert info.value.retryable is True


async def test_wrong_credentials_and_refusals_are_not_retryable(fake: FakeGoogleChat) -> None:
    for url, status in ((fake.url.replace(fake.token, "wrong-token-123"), "401"),
                        (fake.url.replace("/messages", "/other"), "404")):
        notifier = GoogleChatNotifier(
            settings=GoogleChatSettings(webhooks={"comms": SecretStr(url)}))
        try:
            with pytest.raises(DeliveryError) as info:
                await notifier.send(notification())
        finally:
            await notifier.close()
        assert info.value.retryable is False and status in info.value.reason
        assert fake.key not in info.value.reason and "wrong-token-123" not in info.value.reason


async def test_the_url_never_reaches_errors_or_logs(
    fake: FakeGoogleChat, chat: GoogleChatNotifier, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors = []
    for status in (400, 429, 500):
        fake.fail_next(status, retry_after=1)
        with pytest.raises(DeliveryError) as info:
            await chat.send(notification())
        errors.append(info.value)
    await chat.send(notification())
    await fake.stop()
    with pytest.raises(DeliveryError) as info:
        await chat.send(notification())
    errors.append(info.value)
    assert errors[-1].retryable is True
    for err in errors:
        for secret in (fake.key, fake.token):
            assert secret not in f"{err} {err!r} {err.__cause__!r}"
    assert fake.token not in caplog.text and fake.key not in caplog.text


async def test_a_resend_is_answered_with_the_first_message_not_posted_again(
    fake: FakeGoogleChat, chat: GoogleChatNotifier
) -> None:
    """A worker that crashed between Chat's answer and its ledger resends the notification:
    its requestId makes Chat hand back the message it created instead of a second card."""
    note = notification()
    first = await chat.send(note)
    again = await chat.send(note)
    assert len(fake.messages) == 1
    assert [p.created for p in fake.posts] == [True, False]
    assert again.external_id == first.external_id
    mid = message_id(note)
    assert fake.posts[0].query["requestId"] == fake.posts[0].query["messageId"] == mid
    assert mid.startswith("client-") and len(mid) <= 63
    assert fake.messages[0]["clientAssignedMessageId"] == mid


async def test_a_taken_message_id_counts_as_delivered(fake: FakeGoogleChat,
                                                      chat: GoogleChatNotifier) -> None:
    """Should Chat have forgotten the requestId, the messageId still names the message: the
    409 ALREADY_EXISTS it answers means this notification was posted, once."""
    note = notification()
    await chat.send(note)
    fake.by_request.clear()
    receipt = await chat.send(note)
    assert [p.status for p in fake.posts] == [200, 409]
    assert len(fake.messages) == 1
    assert receipt.external_id == f"spaces/{fake.space}/messages/{message_id(note)}"


async def test_each_notification_gets_its_own_ids(fake: FakeGoogleChat,
                                                  chat: GoogleChatNotifier) -> None:
    await chat.send(notification())
    await chat.send(notification(kind="acknowledge", state="acknowledged", acked_by="ana"))
    assert len(fake.messages) == 2
    assert len({p.query["messageId"] for p in fake.posts}) == 2


async def test_other_conflicts_and_conflicts_without_our_id_are_failures(
    fake: FakeGoogleChat,
) -> None:
    settings = GoogleChatSettings(webhooks={"comms": SecretStr(fake.url)}, message_ids=False)
    plain = GoogleChatNotifier(settings=settings)
    try:
        fake.fail_next(409)  # ALREADY_EXISTS, but not about an id we sent
        with pytest.raises(DeliveryError) as info:
            await plain.send(notification())
        assert "409" in info.value.reason and not info.value.retryable
        assert "messageId" not in fake.posts[0].query and "requestId" not in fake.posts[0].query
    finally:
        await plain.close()
    chat = GoogleChatNotifier(
        settings=GoogleChatSettings(webhooks={"comms": SecretStr(fake.url)}))
    try:
        fake.fail_next(409, state="ABORTED")
        with pytest.raises(DeliveryError):
            await chat.send(notification())
    finally:
        await chat.close()
    assert fake.messages == []


def test_ids_in_the_configured_url_are_replaced() -> None:
    url = ("https://chat.googleapis.com/v1/spaces/S/messages?key=k&token=t"
           "&messageId=client-fixed&requestId=r1")
    query = parse_qs(urlsplit(thread_url(url, message_id="client-abc")).query)
    assert query["messageId"] == ["client-abc"] and query["requestId"] == ["client-abc"]
    assert query["token"] == ["t"]


def test_thread_url_adds_the_reply_option_once() -> None:
    url = "https://chat.googleapis.com/v1/spaces/S/messages?key=k&token=t"
    assert thread_url(url) == url + "&messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"
    mine = url + "&messageReplyOption=REPLY_MESSAGE_OR_FAIL"
    assert thread_url(mine) == mine


@pytest.mark.parametrize("url", ["http://chat.googleapis.com/v1/spaces/S/messages?token=t",
                                 "javascript:alert(1)", ""])
def test_settings_refuse_unsafe_urls_without_echoing_them(url: str) -> None:
    with pytest.raises(ValidationError) as info:
        GoogleChatSettings(webhooks={"comms": SecretStr(url)})
    assert not url or url not in str(info.value)


def test_registered_as_a_channel_off_until_configured() -> None:
    spec = registry.by_name["googlechat"]
    assert spec.settings is GoogleChatSettings and not spec.default_on
    assert "googlechat" in registry.UPDATABLE
    assert spec.problem(None, "comms") is not None
