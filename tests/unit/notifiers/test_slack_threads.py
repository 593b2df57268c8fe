"""Buttons, update-in-place, threaded escalations and digests: SlackNotifier against FakeSlack."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from notifiers.errors import DeliveryError
from notifiers.slack import SlackNotifier, build_message
from notifiers.slack_actions import ACTION_ACK, ACTION_RESOLVE, INCIDENT_ID
from streams.core.records import Incident, Notification, NotificationKind, TimelineEntry
from tests.fakes.slack import FakeSlack

TOKEN = "xoxb-1234567890-SECRET-TOKEN-abcdef"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
INCIDENT = "acme.0123456789abcdef"
ALERTS = FakeSlack.channel_id("alerts")
HOSTILE_NAME = "ana <!channel> <https://evil.example|x> @here"


def incident(**changes: Any) -> Incident:
    base = Incident(
        id=INCIDENT, fingerprint="acme:negative_spike", watch_id="acme",
        detector="negative_spike", severity="critical", opened_at=NOW, updated_at=NOW,
        summary="24 negative mentions in one minute", signal_ids=["s1"],
    )
    return base.model_copy(update=changes)


def note(kind: NotificationKind = "trigger", *, seq: int = 1, level: int = 1,
         update_of: str | None = None, inc: Incident | None = None,
         digest: list[str] | None = None) -> Notification:
    return Notification(
        id=f"{INCIDENT}:{seq}:slack:#alerts:{kind}", incident=inc or incident(), level=level,
        channel="slack", target="#alerts", created_at=NOW + timedelta(minutes=seq), kind=kind,
        update_of=update_of, digest=digest or [],
    )


def acked(by: str = "ana") -> Incident:
    return incident(state="acknowledged", acked_by=by, acked_at=NOW + timedelta(minutes=5))


def resolved(by: str = "bo") -> Incident:
    return incident(state="resolved", acked_by="ana", acked_at=NOW + timedelta(minutes=5),
                    resolved_by=by, resolved_at=NOW + timedelta(minutes=20))


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=TOKEN, clock=lambda: NOW.timestamp() + 1) as server:
        yield server


@pytest_asyncio.fixture
async def slack(fake: FakeSlack) -> AsyncIterator[SlackNotifier]:
    notifier = SlackNotifier(token=TOKEN, channel="#fallback", base_url=fake.url,
                             watch_names={"acme": "Acme (brand)"})
    yield notifier
    await notifier.close()


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """action_id -> button element, from every actions block."""
    return {e["action_id"]: e for b in message["blocks"] if b["type"] == "actions"
            for e in b["elements"]}


def mrkdwn(message: dict[str, Any]) -> str:
    return json.dumps(message["blocks"], ensure_ascii=False)


def state_line(message: dict[str, Any]) -> str:
    # Right under the header: the first thing a responder reads.
    block = message["blocks"][1]
    assert block["type"] == "section"
    return str(block["text"]["text"])


# -- buttons by state -----------------------------------------------------------------------

async def test_open_incident_has_acknowledge_and_a_confirmed_resolve(
    fake: FakeSlack, slack: SlackNotifier
) -> None:
    await slack.send(note())
    (message,) = fake.messages()
    found = buttons(message)
    assert list(found) == [ACTION_ACK, ACTION_RESOLVE]
    ack, resolve = found[ACTION_ACK], found[ACTION_RESOLVE]
    assert ack["style"] == "primary" and ack["value"] == INCIDENT
    assert ack["text"] == {"type": "plain_text", "text": "Acknowledge", "emoji": True}
    assert "confirm" not in ack  # acknowledging is cheap and undoable by the next escalation
    assert resolve["style"] == "danger" and resolve["value"] == INCIDENT
    confirm = resolve["confirm"]
    assert set(confirm) == {"title", "text", "confirm", "deny", "style"}
    assert confirm["style"] == "danger"
    assert all(confirm[k]["type"] == "plain_text" for k in ("title", "text", "confirm", "deny"))
    assert len(confirm["title"]["text"]) <= 100 and len(confirm["text"]["text"]) <= 300
    assert len(confirm["confirm"]["text"]) <= 30 and len(confirm["deny"]["text"]) <= 30
    # The value is what comes back in the click; the click parser must accept it.
    assert INCIDENT_ID.fullmatch(resolve["value"])
    assert "*Open*" in state_line(message)


def test_acknowledged_incident_keeps_only_resolve_and_says_who_and_when() -> None:
    message = build_message(note("acknowledge", inc=acked()), watch_name="Acme")
    assert list(buttons(message)) == [ACTION_RESOLVE]
    assert "Acknowledged by ana at 12:05 UTC" in state_line(message)
    assert message["text"].startswith("Acknowledged by ana at 12:05 UTC")


def test_resolved_incident_has_no_buttons_and_says_who() -> None:
    message = build_message(note("resolve", inc=resolved()), watch_name="Acme")
    assert buttons(message) == {}
    assert not any(b["type"] == "actions" for b in message["blocks"])
    assert "Resolved by bo" in state_line(message)


def test_names_in_the_state_line_are_escaped() -> None:
    for inc in (acked(HOSTILE_NAME), resolved(HOSTILE_NAME)):
        message = build_message(note("update", inc=inc), watch_name="Acme")
        for text in (state_line(message), message["text"]):
            assert "<!" not in text and "<https://evil" not in text and "@here" not in text
            assert "&lt;!channel&gt;" in text


def test_block_id_changes_with_every_update() -> None:
    # Slack asks for a new block_id per iteration, or clients may keep stale buttons.
    ids = {next(b["block_id"] for b in build_message(n, watch_name="A")["blocks"]
                if b["type"] == "actions")
           for n in (note(), note("update", seq=2), note("acknowledge", seq=3, inc=acked()))}
    assert len(ids) == 3 and all(len(i) <= 255 for i in ids)


# -- update in place -------------------------------------------------------------------------

async def test_acknowledge_edits_the_first_message_in_place(
    fake: FakeSlack, slack: SlackNotifier
) -> None:
    first = await slack.send(note())
    (original,) = fake.messages()
    receipt = await slack.send(note("acknowledge", seq=2, inc=acked(), update_of=first.external_id))
    (message,) = fake.messages()  # still one message: no new top-level post
    assert message["ts"] == original["ts"] and message["thread_ts"] is None
    assert receipt.external_id == first.external_id == f"{ALERTS}/{message['ts']}"
    assert "Acknowledged by ana at 12:05 UTC" in state_line(message)
    assert list(buttons(message)) == [ACTION_RESOLVE]
    assert [c.method for c in fake.calls] == ["chat.postMessage", "chat.update"]
    assert fake.calls[-1].params["channel"] == ALERTS
    assert fake.calls[-1].params["ts"] == original["ts"]


async def test_resolve_edits_in_place_and_removes_the_buttons(
    fake: FakeSlack, slack: SlackNotifier
) -> None:
    first = await slack.send(note())
    await slack.send(note("acknowledge", seq=2, inc=acked(), update_of=first.external_id))
    await slack.send(note("resolve", seq=3, inc=resolved(), update_of=first.external_id))
    (message,) = fake.messages()
    assert buttons(message) == {}
    assert "Resolved by bo at 12:20 UTC" in state_line(message)
    assert "*State*\\nresolved" in mrkdwn(message)


async def test_update_refreshes_the_message(fake: FakeSlack, slack: SlackNotifier) -> None:
    first = await slack.send(note())
    worse = incident(summary="now 240 negative mentions")
    await slack.send(note("update", seq=2, inc=worse, update_of=first.external_id))
    (message,) = fake.messages()
    assert "now 240 negative mentions" in mrkdwn(message)
    assert list(buttons(message)) == [ACTION_ACK, ACTION_RESOLVE]


# -- threads ----------------------------------------------------------------------------------

def escalated(level: int) -> Incident:
    why = TimelineEntry(at=NOW + timedelta(minutes=5), kind="escalate",
                        text=f"default: not acknowledged within 5 min → level {level}")
    return incident(level=level, timeline=[why])


async def test_escalate_replies_in_the_thread_and_updates_the_parent(
    fake: FakeSlack, slack: SlackNotifier
) -> None:
    first = await slack.send(note())
    receipt = await slack.send(
        note("escalate", seq=2, level=2, inc=escalated(2), update_of=first.external_id))
    parent, reply = fake.messages()
    assert f"{ALERTS}/{parent['ts']}" == first.external_id  # the parent kept its ts
    assert reply["thread_ts"] == parent["ts"] and reply["channel"] == ALERTS
    assert "Escalated to level 2" in reply["text"]
    assert "not acknowledged within 5 min" in reply["text"]
    assert buttons(reply) == {}  # the parent carries the buttons, once
    # The receipt names what was written: the reply (the deliver stage keeps only the first).
    assert receipt.external_id == f"{ALERTS}/{reply['ts']}"
    assert "*Level*\\n2" in mrkdwn(parent)
    assert list(buttons(parent)) == [ACTION_ACK, ACTION_RESOLVE]
    assert [c.method for c in fake.calls] == [
        "chat.postMessage", "chat.postMessage", "chat.update"]
    thread_post = fake.calls[1].params
    assert thread_post["thread_ts"] == parent["ts"] and thread_post["channel"] == ALERTS
    assert fake.calls[2].params["ts"] == parent["ts"]


async def test_reminder_replies_in_the_thread(fake: FakeSlack, slack: SlackNotifier) -> None:
    first = await slack.send(note())
    await slack.send(note("reminder", seq=2, level=3, update_of=first.external_id))
    parent, reply = fake.messages()
    assert reply["thread_ts"] == parent["ts"]
    assert "Reminder" in reply["text"] and "still open" in reply["text"]
    assert "*Level*\\n3" in mrkdwn(parent)


async def test_escalation_reason_is_escaped(fake: FakeSlack, slack: SlackNotifier) -> None:
    first = await slack.send(note())
    why = TimelineEntry(at=NOW, kind="escalate", text="<!channel> <https://evil.example|x>")
    await slack.send(note("escalate", seq=2, level=2, inc=incident(timeline=[why]),
                          update_of=first.external_id))
    _, reply = fake.messages()
    for text in (reply["text"], mrkdwn(reply)):
        assert "<!channel>" not in text and "<https://evil" not in text


@pytest.mark.parametrize("kind", ["trigger", "update", "acknowledge", "resolve", "escalate",
                                  "reminder", "digest"])
async def test_without_update_of_every_kind_posts_top_level(
    fake: FakeSlack, slack: SlackNotifier, kind: NotificationKind
) -> None:
    receipt = await slack.send(note(kind, digest=["one line"]))
    (message,) = fake.messages()
    assert message["thread_ts"] is None
    assert receipt.external_id == f"{ALERTS}/{message['ts']}"
    assert [c.method for c in fake.calls] == ["chat.postMessage"]


async def test_failed_reply_raises_and_leaves_the_parent_alone(
    fake: FakeSlack, slack: SlackNotifier
) -> None:
    first = await slack.send(note())
    fake.fail_next("chat.postMessage", status=503)
    with pytest.raises(DeliveryError) as info:
        await slack.send(note("escalate", seq=2, level=2, update_of=first.external_id))
    assert info.value.retryable is True
    assert [c.method for c in fake.calls] == ["chat.postMessage", "chat.postMessage"]


async def test_failed_parent_update_does_not_fail_the_reply(
    fake: FakeSlack, slack: SlackNotifier
) -> None:
    # Raising would make the retry stage post the reply twice.
    first = await slack.send(note())
    fake.fail_next("chat.update", status=429, retry_after=3)
    receipt = await slack.send(note("escalate", seq=2, level=2, update_of=first.external_id))
    _, reply = fake.messages()
    assert receipt.external_id == f"{ALERTS}/{reply['ts']}"
    assert "parent not updated" in receipt.detail and TOKEN not in receipt.detail


async def test_find_sent_recognises_a_reply_and_an_edit_after_a_restart(
    fake: FakeSlack, slack: SlackNotifier
) -> None:
    first = await slack.send(note())
    escalation = note("escalate", seq=2, level=2, update_of=first.external_id)
    sent = await slack.send(escalation)
    restarted = SlackNotifier(token=TOKEN, channel="#alerts", base_url=fake.url)
    try:
        found = await restarted.find_sent(escalation)
        assert found is not None and found.external_id == sent.external_id
        # A later notification about the same message was never sent.
        assert await restarted.find_sent(
            note("escalate", seq=3, level=3, update_of=first.external_id)) is None
        ack = note("acknowledge", seq=4, inc=acked(), update_of=first.external_id)
        assert await restarted.find_sent(ack) is None
        await restarted.send(ack)
        again = await restarted.find_sent(ack)
        assert again is not None and again.external_id == first.external_id
    finally:
        await restarted.close()


# -- digest ----------------------------------------------------------------------------------

async def test_digest_lists_its_lines_escaped(fake: FakeSlack, slack: SlackNotifier) -> None:
    lines = ["acme: 3 new mentions", "<!here> <https://evil.example|bank> @everyone"]
    await slack.send(note("digest", digest=lines))
    (message,) = fake.messages()
    assert message["blocks"][0]["type"] == "header"
    assert "Digest: 2 notices" in message["blocks"][0]["text"]["text"]
    text = mrkdwn(message)
    assert "• acme: 3 new mentions" in text
    assert "&lt;!here&gt;" in text
    for body in (text, message["text"]):
        assert "<!" not in body and "<https://evil" not in body
        assert "@here" not in body and "@everyone" not in body
    assert buttons(message) == {}


async def test_huge_digest_stays_within_slack_limits(
    fake: FakeSlack, slack: SlackNotifier
) -> None:
    lines = [f"notice {i}: " + "x" * 5000 for i in range(1000)]
    await slack.send(note("digest", digest=lines))  # FakeSlack enforces Slack's block limits
    (message,) = fake.messages()
    assert len(message["blocks"]) <= 50
    assert all(len(b["text"]["text"]) <= 3000 for b in message["blocks"]
               if b["type"] == "section")
    assert len(message["text"]) <= 3000
    assert "more not shown" in message["blocks"][-1]["elements"][0]["text"]


async def test_digest_never_overwrites_an_incident_message(
    fake: FakeSlack, slack: SlackNotifier
) -> None:
    first = await slack.send(note())
    await slack.send(note("digest", seq=2, digest=["rolled up"], update_of=first.external_id))
    original, digest = fake.messages()
    assert digest["thread_ts"] is None and "rolled up" in mrkdwn(digest)
    assert "rolled up" not in mrkdwn(original)
