"""SlackNotifier against the recording Slack fake on loopback: the real slack_sdk on the wire."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from notifiers.base import Notifier
from notifiers.errors import DeliveryError
from notifiers.slack import EVENT_TYPE, SlackNotifier
from streams.core.records import Evidence, Incident, Notification, SampleMention, StorySummary
from tests.fakes.slack import FakeSlack

TOKEN = "xoxb-1234567890-SECRET-TOKEN-abcdef"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HOSTILE = "<!channel> <https://evil.example|bank> @here <script>alert(1)</script>"


def notification(
    *, note_id: str = "inc1:L1:slack:#alerts:open:warning",
    samples: list[SampleMention] | None = None,
    summary: str = "24 negative mentions in the 1-minute window from 12:00 UTC",
    target: str = "#alerts", update_of: str | None = None, watch_id: str = "acme",
) -> Notification:
    incident = Incident(
        id="inc1", fingerprint=f"{watch_id}:negative_spike", watch_id=watch_id,
        detector="negative_spike", severity="warning", opened_at=NOW, updated_at=NOW,
        summary=summary, signal_ids=["s1"], samples=samples or [],
    )
    return Notification(id=note_id, incident=incident, level=1, channel="slack", target=target,
                        created_at=NOW, update_of=update_of)


def sample(text: str = "acme broke my order", *, author: str = "customer",
           url: str | None = "https://social.example/1") -> SampleMention:
    return SampleMention(key="x:1", url=url, author=author, text=text, priority=80)


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    # Its clock sits just after the notification, so history lookups see the messages.
    async with FakeSlack(token=TOKEN, clock=lambda: NOW.timestamp() + 1) as server:
        yield server


@pytest_asyncio.fixture
async def slack(fake: FakeSlack) -> AsyncIterator[SlackNotifier]:
    notifier = SlackNotifier(token=TOKEN, channel="#fallback", base_url=fake.url,
                             watch_names={"acme": "Acme (brand)"})
    yield notifier
    await notifier.close()


def all_texts(blocks: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(block type, text) for every text in the blocks."""
    out = []
    for block in blocks:
        if "text" in block:
            out.append((block["type"], block["text"]["text"]))
        for field in block.get("fields", []):
            out.append(("field", field["text"]))
        for element in block.get("elements", []):
            text = element["text"]
            if isinstance(text, dict):  # a button: its label and confirm dialog are texts too
                out.append(("button", text["text"]))
                out += [("confirm", part["text"])
                        for part in element.get("confirm", {}).values() if isinstance(part, dict)]
            else:
                out.append(("context", text))
    return out


async def test_post_names_the_watch_and_carries_the_idempotency_key(
    fake: FakeSlack, slack: SlackNotifier
) -> None:
    assert isinstance(slack, Notifier)
    note = notification(samples=[sample()])
    receipt = await slack.send(note)
    (call,) = fake.posted
    assert call.token == TOKEN
    (message,) = fake.messages("#alerts")
    # "<channel id>/<ts>": enough to update the message later, even after a restart.
    assert receipt.external_id == f"{FakeSlack.channel_id('alerts')}/{message['ts']}"
    assert message["metadata"] == {
        "event_type": EVENT_TYPE,
        "event_payload": {"key": note.id, "incident_id": "inc1"},
    }
    header = message["blocks"][0]
    assert header["type"] == "header" and "Acme (brand)" in header["text"]["text"]
    texts = [t for _, t in all_texts(message["blocks"])]
    assert any(t == "*Watch*\nAcme (brand)" for t in texts)
    assert any("24 negative mentions" in t for t in texts)
    assert any("@customer" in t and "acme broke my order" in t
               and "<https://social.example/1|open>" in t for t in texts)
    assert "Acme (brand)" in message["text"]
    assert call.params["unfurl_links"] is False


async def test_target_channel_wins_over_the_default(fake: FakeSlack, slack: SlackNotifier) -> None:
    await slack.send(notification(target="#exec"))
    assert len(fake.messages("#exec")) == 1 and fake.messages("#fallback") == []


async def test_hostile_mention_text_is_inert_and_within_slack_limits(
    fake: FakeSlack, slack: SlackNotifier
) -> None:
    hostile_text = HOSTILE + " " + "x" * 10_000
    samples = [sample(hostile_text, author="<!everyone>", url="javascript:alert(1)"),
               sample("<https://evil.example|bank>" * 400, url="https://evil.example|bank")]
    slack_with_bad_name = SlackNotifier(
        token=TOKEN, channel="#alerts", base_url=fake.url,
        watch_names={"acme": "<!here> Acme"},
    )
    try:
        await slack_with_bad_name.send(
            notification(samples=samples, summary=HOSTILE + "y" * 10_000))
    finally:
        await slack_with_bad_name.close()
    (message,) = fake.messages()
    header = message["blocks"][0]["text"]
    assert header["type"] == "plain_text"  # Slack shows plain_text literally, never as markup
    assert len(header["text"]) <= 150
    texts = [*all_texts(message["blocks"][1:]), ("fallback", message["text"])]
    for kind, text in texts:
        assert "<!" not in text, kind
        assert "|bank>" not in text, kind
        assert "<script" not in text, kind
        assert "<https://evil" not in text, kind
        assert "javascript:" not in text, kind
        assert "@here" not in text and "@everyone" not in text, kind
        limit = {"section": 3000, "field": 2000, "header": 150}.get(kind, 3000)
        assert len(text) <= limit, (kind, len(text))
    assert "&lt;script&gt;" in json.dumps(message["blocks"])


async def test_a_claimed_sample_says_who_answers_it_inertly(
    fake: FakeSlack, slack: SlackNotifier
) -> None:
    claimed = sample().model_copy(update={"claim": "Ana is answering this"})
    hostile = sample("x").model_copy(update={"claim": f"{HOSTILE} is answering this"})
    await slack.send(notification(samples=[claimed, hostile]))
    (message,) = fake.messages()
    said = next(t for _, t in all_texts(message["blocks"]) if "What people say" in t)
    assert "acme broke my order <https://social.example/1|open> — _Ana is answering this_" \
        in said
    assert "<!" not in said and "@here" not in said and "|bank>" not in said


async def test_rate_limit_is_retryable_with_retry_after(
    fake: FakeSlack, slack: SlackNotifier
) -> None:
    fake.fail_next("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(DeliveryError) as info:
        await slack.send(notification())
    assert info.value.retryable is True
    assert info.value.retry_after == 7.0
    assert "ratelimited" in info.value.reason
    await slack.send(notification())  # the next attempt goes through
    assert len(fake.posted) == 1


async def test_server_errors_are_retryable(fake: FakeSlack, slack: SlackNotifier) -> None:
    fake.fail_next("chat.postMessage", status=503)
    with pytest.raises(DeliveryError) as info:
        await slack.send(notification())
    assert info.value.retryable is True and info.value.retry_after is None


async def test_channel_not_found_is_permanent() -> None:
    async with FakeSlack(token=TOKEN, known_channels={"#alerts"}) as fake:
        slack = SlackNotifier(token=TOKEN, channel="#alerts", base_url=fake.url)
        with pytest.raises(DeliveryError) as info:
            await slack.send(notification(target="#nope"))
        await slack.close()
    assert info.value.retryable is False
    assert "channel_not_found" in info.value.reason


async def test_bad_token_is_permanent(fake: FakeSlack) -> None:
    slack = SlackNotifier(token="xoxb-wrong", channel="#alerts", base_url=fake.url)
    with pytest.raises(DeliveryError) as info:
        await slack.send(notification())
    await slack.close()
    assert info.value.retryable is False and "invalid_auth" in info.value.reason


async def test_update_of_edits_the_earlier_message_in_place(fake: FakeSlack) -> None:
    first = SlackNotifier(token=TOKEN, channel="#alerts", base_url=fake.url)
    posted = await first.send(notification())
    await first.close()
    # A restarted worker has only the receipt it recorded: no channel lookup needed.
    later = SlackNotifier(token=TOKEN, channel="#alerts", base_url=fake.url,
                          watch_names={"acme": "Acme (brand)"})
    update = notification(note_id="inc1:L1:slack:#alerts:acknowledged:warning",
                          summary="acknowledged by ana", update_of=posted.external_id)
    receipt = await later.send(update)
    await later.close()
    assert receipt.external_id == posted.external_id
    (message,) = fake.messages()
    assert posted.external_id == f"{FakeSlack.channel_id('alerts')}/{message['ts']}"
    assert "acknowledged by ana" in json.dumps(message["blocks"])
    assert message["metadata"]["event_payload"]["key"] == update.id
    assert [c.method for c in fake.calls] == ["chat.postMessage", "chat.update"]
    assert fake.calls[-1].params["ts"] == message["ts"]
    assert fake.calls[-1].params["channel"] == FakeSlack.channel_id("alerts")


async def test_update_of_an_unknown_message_is_permanent(
    fake: FakeSlack, slack: SlackNotifier
) -> None:
    await slack.send(notification())
    with pytest.raises(DeliveryError) as info:
        await slack.send(notification(update_of=f"{FakeSlack.channel_id('alerts')}/1.000001"))
    assert info.value.retryable is False and "message_not_found" in info.value.reason


async def test_find_sent_finds_an_earlier_post_by_its_key(fake: FakeSlack) -> None:
    note = notification()
    first = SlackNotifier(token=TOKEN, channel="#alerts", base_url=fake.url)
    sent = await first.send(note)
    await first.send(notification(note_id="other-key"))
    await first.close()
    restarted = SlackNotifier(token=TOKEN, channel="#alerts", base_url=fake.url)
    found = await restarted.find_sent(note)
    assert found is not None and found.external_id == sent.external_id
    assert await restarted.find_sent(notification(note_id="never-sent")) is None
    assert await restarted.find_sent(notification(target="#silent")) is None  # unknown channel
    await restarted.close()
    assert "conversations.list" in [c.method for c in fake.calls]  # name -> id, after restart
    history = [c for c in fake.calls if c.method == "conversations.history"]
    assert history and all(c.params["channel"] == FakeSlack.channel_id("alerts")
                           for c in history)


@pytest.mark.parametrize("user", ["U0ANA", "W0GRIDUSER"])
async def test_find_sent_finds_a_direct_message_to_a_user_after_a_restart(
    fake: FakeSlack, user: str
) -> None:
    note = notification(target=user, note_id=f"inc1:L2:slack:{user}:open:warning")
    first = SlackNotifier(token=TOKEN, channel="#alerts", base_url=fake.url)
    sent = await first.send(note)
    await first.close()
    im = FakeSlack.channel_id(user)
    assert im.startswith("D") and sent.external_id is not None
    assert sent.external_id.startswith(f"{im}/")  # Slack answers with the IM, not the user
    restarted = SlackNotifier(token=TOKEN, channel="#alerts", base_url=fake.url)
    try:
        found = await restarted.find_sent(note)
        assert found is not None and found.external_id == sent.external_id
        assert await restarted.find_sent(notification(target=user, note_id="never")) is None
    finally:
        await restarted.close()
    opened = [c for c in fake.calls if c.method == "conversations.open"]
    assert [c.params.get("users") for c in opened] == [user]  # then remembered
    history = [c for c in fake.calls if c.method == "conversations.history"]
    assert [c.params["channel"] for c in history] == [im, im]
    assert "conversations.list" not in [c.method for c in fake.calls]  # users are not names


async def test_find_sent_for_an_unknown_user_cannot_tell() -> None:
    async with FakeSlack(token=TOKEN, known_users={"U0ANA"}) as fake:
        slack = SlackNotifier(token=TOKEN, channel="#alerts", base_url=fake.url)
        try:
            assert await slack.find_sent(notification(target="U0NOBODY")) is None
        finally:
            await slack.close()
        (call,) = fake.calls
        assert (call.method, call.error) == ("conversations.open", "user_not_found")


async def test_fake_slack_opens_direct_messages_like_slack(fake: FakeSlack) -> None:
    client = AsyncWebClient(token=TOKEN, base_url=fake.url, retry_handlers=[])
    first = await client.conversations_open(users="U0ANA")
    again = await client.conversations_open(users="U0ANA")
    assert first["channel"] == {"id": FakeSlack.channel_id("U0ANA")}
    assert "already_open" not in first.data and again["already_open"] is True
    for params, error in (({}, "users_list_not_supplied"), ({"users": "nobody"}, "user_not_found"),
                          ({"channel": "D0NEVEROPEN"}, "channel_not_found")):
        with pytest.raises(SlackApiError) as info:
            await client.api_call("conversations.open", params=params)
        assert info.value.response["error"] == error
    # History takes the IM's id, never the user's, as in Slack.
    with pytest.raises(SlackApiError) as info:
        await client.conversations_history(channel="U0ANA")
    assert info.value.response["error"] == "channel_not_found"


async def test_find_sent_cannot_tell_when_slack_fails(fake: FakeSlack) -> None:
    slack = SlackNotifier(token=TOKEN, channel="#alerts", base_url=fake.url)
    fake.go_down()
    assert await slack.find_sent(notification()) is None
    await slack.close()


def _failures() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("ratelimited", {"status": 429, "retry_after": 3}),
        ("edge 500", {"status": 500}),
        ("api error", {"error": "channel_not_found"}),
        ("invalid_auth", {"error": "invalid_auth"}),
        ("token_revoked", {"error": "token_revoked"}),
    ]


@pytest.mark.parametrize(("name", "failure"), _failures())
async def test_token_never_reaches_errors_or_logs(
    fake: FakeSlack, caplog: pytest.LogCaptureFixture, name: str, failure: dict[str, Any]
) -> None:
    caplog.set_level(logging.DEBUG)
    slack = SlackNotifier(token=TOKEN, channel="#alerts", base_url=fake.url)
    fake.fail_next("*", times=10, **failure)
    errors: list[BaseException] = []
    for note in (notification(), notification(update_of="C0ALERTS/1.000001")):
        with pytest.raises(DeliveryError) as info:
            await slack.send(note)
        errors.append(info.value)
    assert await slack.find_sent(notification()) is None
    await slack.close()
    assert_no_token(errors, caplog)


async def test_token_never_reaches_errors_or_logs_when_unreachable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakeSlack(token=TOKEN) as fake:
        url = fake.url
    slack = SlackNotifier(token=TOKEN, channel="#alerts", base_url=url, timeout_s=5)
    with pytest.raises(DeliveryError) as info:
        await slack.send(notification())
    assert info.value.retryable is True
    assert await slack.find_sent(notification()) is None
    await slack.close()
    assert_no_token([info.value], caplog)


def assert_no_token(errors: list[BaseException], caplog: pytest.LogCaptureFixture) -> None:
    for error in errors:
        assert TOKEN not in str(error) and TOKEN not in repr(error)
        assert TOKEN not in "".join(traceback.format_exception(error))
    assert caplog.records, "the debug logging was expected to capture something"
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in caplog.text


def with_story(note: Notification, text: str, *, campaign: bool) -> Notification:
    story = StorySummary(id="s", text=text, count=120, authors=118, span_min=9)
    evidence = Evidence(detector="negative_spike", severity="warning", window_start=NOW,
                        window_end=NOW, observed=312, expected=20, score=15, stories=41,
                        largest_story=story, campaign=campaign)
    return note.model_copy(update={"incident": note.incident.model_copy(
        update={"evidence": [evidence]})})


async def test_the_largest_story_is_shown_escaped(fake: FakeSlack, slack: SlackNotifier) -> None:
    await slack.send(with_story(notification(), HOSTILE + " Acme charger exploded",
                                campaign=True))
    await slack.send(notification(target="#plain"))
    (message,) = fake.messages("#alerts")
    (line,) = [t for _, t in all_texts(message["blocks"]) if t.startswith("Largest story")]
    assert "campaign" in line and "\u00d7120 by 118 accounts in 9 min of 41 stories" in line
    assert "Acme charger exploded" in line
    assert "<!" not in line and "<https://evil" not in line and "@here" not in line
    assert "&lt;script&gt;" in line
    (plain,) = fake.messages("#plain")
    assert not any("Largest story" in t for _, t in all_texts(plain["blocks"]))


async def test_an_update_after_a_join_names_both_watches(fake: FakeSlack,
                                                        slack: SlackNotifier) -> None:
    posted = await slack.send(notification())
    joined = notification(note_id="inc1:2:slack:#alerts:update", update_of=posted.external_id)
    joined = joined.model_copy(update={"incident": joined.incident.model_copy(
        update={"watches": ["beta"], "joined": ["beta.1"]})})
    await slack.send(joined)
    (message,) = fake.messages("#alerts")
    assert ("Watch", "Acme (brand), beta") in [
        (t.split("\n")[0].strip("*"), t.split("\n")[-1]) for _, t in all_texts(message["blocks"])]
