"""PushNotifier against a fake ntfy server on loopback speaking ntfy's publish API."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from pydantic import SecretStr, ValidationError

from notifiers.base import Notifier
from notifiers.errors import DeliveryError
from notifiers.push import NtfySettings, PushNotifier, sequence_id
from streams.core.links import LinkError, LinkSigner
from streams.core.records import Incident, Notification, NotificationKind, SampleMention
from tests.fakes.ntfy import FakeNtfy, press

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TOKEN = "tk_AgQdq7mVBoFD37zQVN29RhuMzNIz2-SECRET"
HOSTILE = '<script>alert(1)</script> <a href="javascript:x">x</a> <!channel> @here'


def sample(text: str = "acme broke my order", *, author: str = "customer",
           url: str | None = "https://social.example/1") -> SampleMention:
    return SampleMention(key="x:1", url=url, author=author, text=text, priority=80)


def notification(
    *, kind: NotificationKind = "trigger", state: str = "open", severity: str = "critical",
    samples: list[SampleMention] | None = None, target: str = "escucha-oncall_1",
    summary: str = "24 negative mentions in the 1-minute window from 12:00 UTC",
    **incident: Any,
) -> Notification:
    inc = Incident.model_validate({
        "id": "acme.1", "fingerprint": "acme:negative_spike", "watch_id": "acme",
        "detector": "negative_spike", "severity": severity, "state": state,
        "opened_at": NOW, "updated_at": NOW, "summary": summary,
        "samples": [sample()] if samples is None else samples, **incident,
    })
    return Notification(id="acme.1:L1:push:open", incident=inc, level=1, channel="push",
                        target=target, created_at=NOW, kind=kind)


class AckEndpoint:
    """Stands in for escucha's web route: records POSTs to /a/<token>, verifies them."""

    def __init__(self, signer: LinkSigner) -> None:
        self.signer = signer
        self.actions: list[tuple[str, str, str]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _post(self, request: web.Request) -> web.Response:
        try:
            action = self.signer.verify(request.match_info["token"])
        except LinkError as exc:
            return web.Response(status=403, text=str(exc))
        form = await request.post()
        self.actions.append((action.action, action.incident_id, str(form.get("by"))))
        return web.Response(text="acknowledged")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/a/{token}", self._post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest_asyncio.fixture
async def ntfy() -> AsyncIterator[FakeNtfy]:
    async with FakeNtfy(token=TOKEN) as server:
        yield server


@pytest_asyncio.fixture
async def ack_endpoint() -> AsyncIterator[AckEndpoint]:
    # The signer's base URL must be known before the server starts; the port is not.
    endpoint = AckEndpoint(LinkSigner(secret=b"0123456789abcdef-test", base_url="http://x"))
    await endpoint.start()
    endpoint.signer = LinkSigner(secret=b"0123456789abcdef-test", base_url=endpoint.url)
    yield endpoint
    await endpoint.stop()


@pytest.fixture
def signer(ack_endpoint: AckEndpoint) -> LinkSigner:
    return ack_endpoint.signer


@pytest_asyncio.fixture
async def push(ntfy: FakeNtfy, signer: LinkSigner) -> AsyncIterator[PushNotifier]:
    notifier = PushNotifier(
        settings=NtfySettings(base_url=ntfy.url, token=SecretStr(TOKEN), timeout_s=5),
        links=signer, watch_names={"acme": "Acme"})
    yield notifier
    await notifier.close()


async def test_publishes_ntfy_json_with_an_acknowledge_button(
    ntfy: FakeNtfy, push: PushNotifier, signer: LinkSigner
) -> None:
    assert isinstance(push, Notifier) and push.channel == "push"
    receipt = await push.send(notification())
    (request,) = ntfy.requests
    assert (request.method, request.path, request.token) == ("POST", "/", TOKEN)
    (msg,) = ntfy.messages
    # The receipt names the incident's sequence, which later messages replace.
    assert receipt.external_id == msg["sequence_id"] == sequence_id(notification())
    assert msg["event"] == "message" and msg["topic"] == "escucha-oncall_1"
    assert msg["title"] == "[CRITICAL] Acme: negative spike"
    assert msg["priority"] == 5
    assert msg["tags"] == ["rotating_light"]
    assert msg["click"] == "https://social.example/1"
    assert "24 negative mentions" in msg["message"]
    assert "@customer: acme broke my order" in msg["message"]
    (action,) = msg["actions"]
    assert {k: action[k] for k in ("action", "label", "method", "clear", "body")} == {
        "action": "http", "label": "Acknowledge", "method": "POST", "clear": True,
        "body": "by=ntfy%3Aescucha-oncall_1"}
    token = action["url"].removeprefix(f"{signer.base_url}/a/")
    verified = signer.verify(token)
    assert (verified.action, verified.incident_id) == ("ack", "acme.1")


async def test_pressing_acknowledge_posts_the_signed_link(
    ntfy: FakeNtfy, push: PushNotifier, ack_endpoint: AckEndpoint
) -> None:
    await push.send(notification())
    (msg,) = ntfy.messages
    assert await press(msg, "Acknowledge") == 200
    # Attributed to the topic (a personal topic names the person), as the web form would be.
    assert ack_endpoint.actions == [("ack", "acme.1", "ntfy:escucha-oncall_1")]
    assert await ntfy.press(msg, "Acknowledge") == 200  # the fake's method does the same


@pytest.mark.parametrize(("severity", "priority", "tag"), [
    ("critical", 5, "rotating_light"), ("warning", 4, "warning"),
    ("info", 3, "information_source"),
])
async def test_priority_follows_severity(
    ntfy: FakeNtfy, push: PushNotifier, severity: str, priority: int, tag: str
) -> None:
    await push.send(notification(severity=severity))
    (msg,) = ntfy.messages
    assert msg["priority"] == priority and msg["tags"][0] == tag


@pytest.mark.parametrize(("state", "extra", "suffix"), [
    ("acknowledged", {"acked_by": "ana"}, " — acknowledged by ana"),
    ("resolved", {"resolved_by": "bo"}, " — resolved by bo"),
])
async def test_no_button_once_acknowledged_or_resolved(
    ntfy: FakeNtfy, push: PushNotifier, state: str, extra: dict[str, Any], suffix: str
) -> None:
    await push.send(notification(kind="update", state=state, **extra))
    (msg,) = ntfy.messages
    assert "actions" not in msg
    assert msg["title"] == "[CRITICAL] Acme: negative spike" + suffix


async def test_no_button_without_a_link_signer(ntfy: FakeNtfy) -> None:
    notifier = PushNotifier(settings=NtfySettings(base_url=ntfy.url, token=SecretStr(TOKEN)),
                            links=None)
    try:
        await notifier.send(notification())
    finally:
        await notifier.close()
    assert "actions" not in ntfy.messages[0]


async def test_hostile_text_is_cleaned_and_bounded(ntfy: FakeNtfy, push: PushNotifier) -> None:
    samples = [sample(HOSTILE + "\r\n\x1b[31m" + "A" * 10_000, author="\u202eevil",
                      url="javascript:alert(1)"), sample("x" * 10_000), sample("é" * 10_000)]
    await push.send(notification(samples=samples, summary="S" * 10_000))
    (msg,) = ntfy.messages
    assert "click" not in msg  # the first sample's URL is not a plain http(s) link
    assert len(msg["message"].encode()) <= 4096
    assert len(msg["title"]) <= 200
    assert "\x1b" not in msg["message"] and "\u202e" not in msg["message"]
    assert "A" * 300 not in msg["message"]
    # One sample, one line: its text cannot forge further lines of the message.
    assert all(len(line) <= 1100 for line in msg["message"].splitlines())


async def test_wrong_or_missing_token_is_not_retryable(ntfy: FakeNtfy, signer: LinkSigner) -> None:
    for token in (SecretStr("tk_wrong"), None):
        notifier = PushNotifier(settings=NtfySettings(base_url=ntfy.url, token=token),
                                links=signer)
        try:
            with pytest.raises(DeliveryError) as info:
                await notifier.send(notification())
        finally:
            await notifier.close()
        assert info.value.retryable is False
        assert "401" in info.value.reason and "notifiers.push.token" in info.value.reason
    assert ntfy.messages == []


async def test_rate_limit_is_retryable_with_retry_after(
    ntfy: FakeNtfy, push: PushNotifier
) -> None:
    ntfy.fail_next(429, retry_after=30)
    with pytest.raises(DeliveryError) as info:
        await push.send(notification())
    assert info.value.retryable is True and info.value.retry_after == 30
    assert "429" in info.value.reason and "too many requests" in info.value.reason
    await push.send(notification())
    assert len(ntfy.messages) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_retryable(
    ntfy: FakeNtfy, push: PushNotifier, status: int
) -> None:
    ntfy.fail_next(status)
    with pytest.raises(DeliveryError) as info:
        await push.send(notification())
    assert info.value.retryable is True and info.value.retry_after is None


async def test_server_down_is_retryable(ntfy: FakeNtfy, push: PushNotifier) -> None:
    await ntfy.stop()
    with pytest.raises(DeliveryError) as info:
        await push.send(notification())
    assert info.value.retryable is True


@pytest.mark.parametrize("topic", ["", "bad topic", "a/b", "../admin", "x" * 65, "tópico",
                                   "alerts?auth=x"])
async def test_an_invalid_topic_is_not_retryable(
    ntfy: FakeNtfy, push: PushNotifier, topic: str
) -> None:
    with pytest.raises(DeliveryError) as info:
        await push.send(notification(target=topic))
    assert info.value.retryable is False and "topic" in info.value.reason
    assert ntfy.requests == []


async def test_the_token_never_reaches_errors_or_logs(
    ntfy: FakeNtfy, push: PushNotifier, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[DeliveryError] = []
    for status in (401, 429, 500):
        ntfy.fail_next(status, retry_after=1)
        with pytest.raises(DeliveryError) as info:
            await push.send(notification())
        errors.append(info.value)
    await push.send(notification())
    await ntfy.stop()
    with pytest.raises(DeliveryError) as info:
        await push.send(notification())
    errors.append(info.value)
    for err in errors:
        for shown in (str(err), repr(err), err.reason, repr(err.__cause__)):
            assert TOKEN not in shown
    assert TOKEN not in caplog.text


async def test_a_given_session_is_used_and_left_open(ntfy: FakeNtfy) -> None:
    async with aiohttp.ClientSession() as session:
        notifier = PushNotifier(settings=NtfySettings(base_url=ntfy.url, token=SecretStr(TOKEN)),
                                links=None, session=session)
        await notifier.send(notification())
        await notifier.close()
        assert not session.closed
    assert len(ntfy.messages) == 1


@pytest.mark.parametrize("bad", [
    {"base_url": "ftp://ntfy.example.com"},
    {"base_url": "https://user:pass@ntfy.example.com"},
    {"base_url": "ntfy.example.com"},
    {"timeout_s": 0},
    {"topic": "alerts"},
])
def test_settings_refuse_bad_values(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        NtfySettings(**bad)


def test_settings_never_show_the_token() -> None:
    settings = NtfySettings(base_url="https://ntfy.example.com/", token=SecretStr(TOKEN))
    assert settings.base_url == "https://ntfy.example.com"
    assert TOKEN not in repr(settings) and TOKEN not in str(settings.model_dump())


# -- follow-ups replace the alert ------------------------------------------------------------
async def test_follow_ups_replace_the_alert_on_the_phone(ntfy: FakeNtfy, push: PushNotifier
                                                        ) -> None:
    first = await push.send(notification())
    acked = notification(kind="acknowledge", state="acknowledged", acked_by="ana",
                         acked_at=NOW)
    second = await push.send(acked.model_copy(update={"update_of": first.external_id}))
    resolved = notification(kind="resolve", state="resolved", resolved_by="bo",
                            resolved_at=NOW)
    third = await push.send(resolved.model_copy(update={"update_of": second.external_id}))
    assert first.external_id == second.external_id == third.external_id
    assert [m["sequence_id"] for m in ntfy.messages] == [first.external_id] * 3
    # Each replacement is quieter: someone has it (3), it is over (2, no sound).
    assert [m["priority"] for m in ntfy.messages] == [5, 3, 2]
    assert [m["message"].splitlines()[0] for m in ntfy.messages[1:]] == [
        "Acknowledged by ana at 2024-05-01 12:00 UTC", "Resolved by bo at 2024-05-01 12:00 UTC"]
    (shown,) = ntfy.shown("escucha-oncall_1")
    assert shown == ntfy.messages[-1] and shown["tags"] == ["rotating_light", "white_check_mark"]
    assert "actions" not in shown


async def test_an_alert_published_before_sequences_is_replaced_by_its_message_id(
    ntfy: FakeNtfy, push: PushNotifier
) -> None:
    note = notification(kind="resolve", state="resolved", resolved_by="bo")
    receipt = await push.send(note.model_copy(update={"update_of": "PwekXhKejqtx"}))
    assert ntfy.messages[0]["sequence_id"] == receipt.external_id == "PwekXhKejqtx"


@pytest.mark.parametrize("parent", ["../x y", "a" * 65, "<escucha.1@localhost>", ""])
async def test_a_parent_that_is_no_sequence_id_falls_back_to_the_incidents(
    ntfy: FakeNtfy, push: PushNotifier, parent: str
) -> None:
    note = notification(kind="acknowledge", state="acknowledged")
    receipt = await push.send(note.model_copy(update={"update_of": parent}))
    assert ntfy.messages[0]["sequence_id"] == receipt.external_id == sequence_id(note)
    assert receipt.external_id == sequence_id(notification())  # the trigger's


async def test_a_server_without_sequences_still_gets_every_follow_up(signer: LinkSigner
                                                                    ) -> None:
    async with FakeNtfy(sequences=False) as old:
        notifier = PushNotifier(settings=NtfySettings(base_url=old.url), links=signer)
        try:
            first = await notifier.send(notification())
            note = notification(kind="resolve", state="resolved", resolved_by="bo")
            await notifier.send(note.model_copy(update={"update_of": first.external_id}))
        finally:
            await notifier.close()
    # Not replaced (the server cannot), but not lost; the receipt still names the incident's
    # sequence, not a message id, so the follow-up carried the same sequence id.
    assert first.external_id == sequence_id(notification())
    assert [m["message"].splitlines()[0] for m in old.shown("escucha-oncall_1")][1] == (
        "Resolved by bo")


async def test_a_digest_replaces_nothing(ntfy: FakeNtfy, push: PushNotifier) -> None:
    note = notification(kind="digest").model_copy(update={"digest": ["a: 3", "b: 1"]})
    receipt = await push.send(note)
    (msg,) = ntfy.messages
    assert "sequence_id" not in msg and receipt.external_id == msg["id"]


async def test_fake_takes_a_sequence_id_from_the_header_or_the_path(ntfy: FakeNtfy) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{ntfy.url}/t", data=b"one",
                                headers={**auth, "X-Sequence-ID": "job-1"}) as resp:
            assert (await resp.json())["sequence_id"] == "job-1"
        async with session.put(f"{ntfy.url}/t/job-1", data=b"two", headers=auth) as resp:
            assert (await resp.json())["sequence_id"] == "job-1"
        async with session.post(f"{ntfy.url}/t", data=b"other", headers=auth) as resp:
            assert "sequence_id" not in await resp.json()
    assert [m["message"] for m in ntfy.shown("t")] == ["two", "other"]


# -- the fake also speaks ntfy's header form, as other publishers use it ---------------------
async def test_fake_accepts_a_plain_publish_with_headers(ntfy: FakeNtfy) -> None:
    headers = {
        "Authorization": f"Bearer {TOKEN}", "X-Title": "Disk full", "X-Priority": "high",
        "X-Tags": "warning,skull", "X-Click": "https://example.com/",
        "X-Actions": "http, Acknowledge, https://example.com/a/x?y=1, method=PUT, "
                     "headers.X-Kind=ack, body='{\"a\": 1, \"b\": 2}', clear=true; "
                     "view, Open, https://example.com/",
    }
    async with aiohttp.ClientSession() as session, session.post(
        f"{ntfy.url}/mytopic", data=b"Disk is at 99%", headers=headers
    ) as resp:
        assert resp.status == 200
        answer = await resp.json()
    assert answer == ntfy.messages[0]
    assert answer["topic"] == "mytopic" and answer["message"] == "Disk is at 99%"
    assert answer["title"] == "Disk full" and answer["priority"] == 4
    assert answer["tags"] == ["warning", "skull"] and answer["click"] == "https://example.com/"
    http, view = answer["actions"]
    assert http["url"] == "https://example.com/a/x?y=1" and http["method"] == "PUT"
    assert http["headers"] == {"X-Kind": "ack"} and http["body"] == '{"a": 1, "b": 2}'
    assert http["clear"] is True
    assert (view["action"], view["label"], view["url"]) == ("view", "Open",
                                                             "https://example.com/")


async def test_fake_refuses_what_ntfy_refuses(ntfy: FakeNtfy) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as session:
        async with session.post(ntfy.url + "/", json={"topic": "t"}) as resp:
            assert resp.status == 401
            assert await resp.json() == {"code": 40101, "http": 401, "error": "unauthorized",
                                         "link": "https://ntfy.sh/docs/publish/"}
        for body in ({"topic": "bad topic"}, {"topic": "t", "priority": 9},
                     {"topic": "t", "actions": [{"action": "http", "label": "x"}] * 4},
                     {"topic": "t", "sequence_id": "no spaces/or slashes"}):
            async with session.post(ntfy.url + "/", json=body, headers=auth) as resp:
                assert resp.status == 400, body
        async with session.post(ntfy.url + "/", json={"topic": "t", "message": "x" * 5000},
                                headers=auth) as resp:
            assert resp.status == 413
    assert ntfy.messages == []
