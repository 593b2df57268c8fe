"""WebhookNotifier against a recording receiver on loopback that checks signatures for real."""

from __future__ import annotations

import json
import logging
import socket
import time
import traceback
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from pydantic import SecretStr, ValidationError

from notifiers.base import Notifier
from notifiers.errors import DeliveryError
from notifiers.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookEndpoint,
    WebhookNotifier,
    WebhookSettings,
    WebhookSignatureError,
    build_body,
    sign_webhook,
    verify_webhook,
)
from streams.core.records import Incident, Notification, SampleMention
from tests.fakes.webhook import FakeWebhookReceiver

TOKEN = "T0KEN-in-the-path-9f8e7d6c5b4a"
SECRET = "whsec-HMAC-SECRET-0123456789abcdef"
PATH = f"/hooks/catch/{TOKEN}"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HOSTILE = "<script>alert(1)</script> \"quoted\" \\ \x1b[31m \ud800 \u202e <!channel>"


def notification(*, kind: str = "trigger", target: str = "ops-hook",
                 text: str = "acme lost my order", digest: list[str] | None = None
                 ) -> Notification:
    incident = Incident(
        id="acme.4f2a9c", fingerprint="acme:negative_spike", watch_id="acme",
        detector="negative_spike", severity="critical", opened_at=NOW, updated_at=NOW,
        summary="240 negative mentions in 5 min (expected 12)", signal_ids=["s1"],
        samples=[SampleMention(key="x:1", url="https://social.example/1", author="customer",
                               text=text, priority=80)],
    )
    return Notification(id=f"acme.4f2a9c:L1:webhook:{kind}", incident=incident, level=1,
                        channel="webhook", target=target, created_at=NOW,
                        kind=kind, digest=digest or [])  # type: ignore[arg-type]


def endpoint(url: str, secret: str = SECRET, timeout_s: float = 5) -> WebhookEndpoint:
    return WebhookEndpoint(url=SecretStr(url), secret=SecretStr(secret), timeout_s=timeout_s)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeWebhookReceiver]:
    async with FakeWebhookReceiver(secret=SECRET, path=PATH) as server:
        yield server


@pytest_asyncio.fixture
async def hook(fake: FakeWebhookReceiver) -> AsyncIterator[WebhookNotifier]:
    notifier = WebhookNotifier(settings=WebhookSettings(endpoints={
        "ops-hook": endpoint(fake.url),
        "wrong-secret": endpoint(fake.url, "another-secret-0123456789"),
        "wrong-path": endpoint(fake.base_url + f"/hooks/catch/{TOKEN}-old"),
    }))
    yield notifier
    await notifier.close()


# -- delivery and wire shape ------------------------------------------------------------------

async def test_signed_post_is_verified_and_carries_the_incident(
    fake: FakeWebhookReceiver, hook: WebhookNotifier
) -> None:
    assert isinstance(hook, Notifier)
    note = notification()
    receipt = await hook.send(note)
    assert "HTTP 200" in receipt.detail and TOKEN not in receipt.detail
    (request,) = fake.received
    assert request.path == PATH and request.verified
    assert request.header("Content-Type") == "application/json"
    assert request.header("Idempotency-Key") == note.id
    stamp = request.header(TIMESTAMP_HEADER)
    assert stamp is not None and abs(int(stamp) - time.time()) < 60
    assert request.header(SIGNATURE_HEADER) == sign_webhook(
        request.body, secret=SECRET, timestamp=int(stamp))
    assert request.body == build_body(note)
    doc = request.json
    # A first alert: no status line, nothing it replies to.
    assert set(doc) == {"version", "id", "kind", "event", "level", "created_at", "incident"}
    assert doc["version"] == 1 and doc["id"] == note.id and doc["kind"] == "trigger"
    assert doc["event"] == "triggered" and receipt.external_id == note.id
    assert doc["level"] == 1
    assert doc["incident"] == note.incident.model_dump(mode="json")


async def test_every_kind_is_delivered_and_digest_lines_travel(
    fake: FakeWebhookReceiver, hook: WebhookNotifier
) -> None:
    for kind in ("trigger", "update", "acknowledge", "resolve", "escalate", "reminder"):
        await hook.send(notification(kind=kind))
    await hook.send(notification(kind="digest", digest=["a: 3 mentions", "b: 1 mention"]))
    assert [r.json["kind"] for r in fake.received][-1] == "digest"
    assert fake.received[-1].json["digest"] == ["a: 3 mentions", "b: 1 mention"]
    assert len(fake.received) == 7


async def test_follow_ups_say_what_happened_and_name_the_first_notification(
    fake: FakeWebhookReceiver, hook: WebhookNotifier
) -> None:
    first = await hook.send(notification())
    inc = notification().incident
    states: dict[str, dict[str, object]] = {
        "acknowledge": {"state": "acknowledged", "acked_by": "ana", "acked_at": NOW},
        "resolve": {"state": "resolved", "resolved_by": "bo", "resolved_at": NOW},
        "escalate": {}, "reminder": {}, "update": {},
    }
    for kind, change in states.items():
        note = notification(kind=kind).model_copy(update={
            "incident": inc.model_copy(update=change), "update_of": first.external_id})
        await hook.send(note)
    docs = [r.json for r in fake.received]
    assert [d["event"] for d in docs] == ["triggered", "acknowledged", "resolved", "escalated",
                                          "reminder", "updated"]
    assert "in_reply_to" not in docs[0] and "status" not in docs[0]
    assert {d["in_reply_to"] for d in docs[1:]} == {docs[0]["id"]}
    assert docs[1]["status"] == "Acknowledged by ana at 2024-05-01 12:00 UTC"
    assert docs[2]["status"] == "Resolved by bo at 2024-05-01 12:00 UTC"
    assert all(r.verified for r in fake.requests)  # every follow-up is signed like the first


async def test_hostile_text_stays_data(fake: FakeWebhookReceiver, hook: WebhookNotifier) -> None:
    note = notification(text=HOSTILE)
    await hook.send(note)
    (request,) = fake.received
    request.body.decode("ascii")  # ASCII-only on the wire, lone surrogate included
    assert b"<script>" in request.body  # not HTML-escaped: receivers escape for their medium
    assert request.json["incident"]["samples"][0]["text"] == HOSTILE


@pytest.mark.parametrize("status", [201, 202, 204])
async def test_any_2xx_is_delivered(status: int) -> None:
    async with FakeWebhookReceiver(secret=SECRET, path=PATH, ok_status=status) as server:
        notifier = WebhookNotifier(settings=WebhookSettings(
            endpoints={"ops-hook": endpoint(server.url)}))
        try:
            receipt = await notifier.send(notification())
        finally:
            await notifier.close()
    assert f"HTTP {status}" in receipt.detail and len(server.received) == 1


async def test_find_sent_cannot_tell(hook: WebhookNotifier) -> None:
    assert await hook.find_sent(notification()) is None


# -- verify_webhook -----------------------------------------------------------------------------

def signed(body: bytes, stamp: int, secret: str = SECRET) -> dict[str, str]:
    return {TIMESTAMP_HEADER: str(stamp),
            SIGNATURE_HEADER: sign_webhook(body, secret=secret, timestamp=stamp)}


def test_verify_accepts_a_fresh_signature_in_any_header_case() -> None:
    body = build_body(notification())
    headers = signed(body, 1_700_000_000)
    verify_webhook(body, headers, secret=SECRET, now=1_700_000_100)
    verify_webhook(body, {k.lower(): v for k, v in headers.items()}, secret=SECRET,
                   now=1_700_000_100)


@pytest.mark.parametrize(("case", "message"), [
    ("tampered", "does not match"),
    ("wrong-secret", "does not match"),
    ("old", "old"),
    ("future", "future"),
    ("unsigned", "unsigned"),
    ("bad-stamp", "unix seconds"),
    ("bad-scheme", "sha256="),
    ("stamp-swapped", "does not match"),
])
def test_verify_rejects(case: str, message: str) -> None:
    body = build_body(notification())
    stamp = 1_700_000_000
    now = float(stamp)
    headers = signed(body, stamp)
    if case == "tampered":
        body = body.replace(b"240 negative", b"2 negative")
    elif case == "wrong-secret":
        headers = signed(body, stamp, "not-the-secret-at-all-000")
    elif case == "old":
        now = stamp + 301.0
    elif case == "future":
        now = stamp - 301.0
    elif case == "unsigned":
        headers = {TIMESTAMP_HEADER: str(stamp)}
    elif case == "bad-stamp":
        headers[TIMESTAMP_HEADER] = "yesterday"
    elif case == "bad-scheme":
        headers[SIGNATURE_HEADER] = "md5=abc"
    elif case == "stamp-swapped":  # a captured signature replayed with a fresh timestamp
        headers[TIMESTAMP_HEADER] = str(stamp + 1000)
        now = stamp + 1000.0
    with pytest.raises(WebhookSignatureError, match=message):
        verify_webhook(body, headers, secret=SECRET, now=now)


async def test_receiver_refuses_replay_of_an_old_request(fake: FakeWebhookReceiver) -> None:
    notifier = WebhookNotifier(
        settings=WebhookSettings(endpoints={"ops-hook": endpoint(fake.url)}),
        clock=lambda: time.time() - 3600,  # a captured request, sent again an hour later
    )
    try:
        with pytest.raises(DeliveryError) as info:
            await notifier.send(notification())
    finally:
        await notifier.close()
    assert not info.value.retryable and "HTTP 401" in info.value.reason
    assert fake.received == [] and "old" in (fake.requests[0].refusal or "")


async def test_tampered_body_is_refused_by_the_receiver(fake: FakeWebhookReceiver) -> None:
    body = build_body(notification())
    stamp = int(time.time())
    headers = {**signed(body, stamp), "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session, session.post(
        fake.url, data=body.replace(b"critical", b"info"), headers=headers
    ) as resp:
        assert resp.status == 401
    assert fake.received == []


# -- failures ---------------------------------------------------------------------------------

async def test_wrong_secret_is_permanent(fake: FakeWebhookReceiver, hook: WebhookNotifier) -> None:
    with pytest.raises(DeliveryError) as info:
        await hook.send(notification(target="wrong-secret"))
    assert not info.value.retryable and "HTTP 401" in info.value.reason
    assert "secret" in info.value.reason  # says what to check


async def test_unknown_endpoint_is_permanent(fake: FakeWebhookReceiver,
                                             hook: WebhookNotifier) -> None:
    with pytest.raises(DeliveryError) as info:
        await hook.send(notification(target="nowhere"))
    assert not info.value.retryable and "nowhere" in info.value.reason
    assert "ops-hook" in info.value.reason and fake.requests == []


async def test_429_is_retryable_with_retry_after(fake: FakeWebhookReceiver,
                                                 hook: WebhookNotifier) -> None:
    fake.fail_next(429, retry_after=9)
    with pytest.raises(DeliveryError) as info:
        await hook.send(notification())
    assert info.value.retryable and info.value.retry_after == 9
    await hook.send(notification())
    assert len(fake.received) == 1


@pytest.mark.parametrize(("status", "retryable"), [
    (500, True), (502, True), (503, True), (504, True), (408, True),
    (400, False), (403, False), (410, False), (302, False),
])
async def test_status_classification(fake: FakeWebhookReceiver, hook: WebhookNotifier,
                                     status: int, retryable: bool) -> None:
    fake.fail_next(status)
    with pytest.raises(DeliveryError) as info:
        await hook.send(notification())
    assert info.value.retryable is retryable
    assert f"webhook ops-hook: HTTP {status}" in info.value.reason
    assert len(fake.requests) == 1  # a redirect is not followed


async def test_down_then_up(fake: FakeWebhookReceiver, hook: WebhookNotifier) -> None:
    fake.go_down()
    with pytest.raises(DeliveryError) as info:
        await hook.send(notification())
    assert info.value.retryable
    fake.come_up()
    await hook.send(notification())
    assert len(fake.received) == 1


async def test_connection_refused_is_retryable_and_names_the_endpoint() -> None:
    url = f"http://127.0.0.1:{closed_port()}{PATH}?token={TOKEN}"
    notifier = WebhookNotifier(settings=WebhookSettings(endpoints={"ops-hook": endpoint(url)}))
    try:
        with pytest.raises(DeliveryError) as info:
            await notifier.send(notification())
    finally:
        await notifier.close()
    assert info.value.retryable and info.value.reason.startswith("webhook ops-hook: ")
    assert "ECONNREFUSED" in info.value.reason or "Connect" in info.value.reason


# -- secrets ----------------------------------------------------------------------------------

def test_settings_hide_url_and_secret() -> None:
    s = WebhookSettings(endpoints={"ops-hook": endpoint(f"https://hooks.example{PATH}")})
    for text in (repr(s), str(s), s.model_dump_json()):
        assert TOKEN not in text and SECRET not in text


@pytest.mark.parametrize(("url", "secret", "field"), [
    (f"ftp://hooks.example{PATH}", SECRET, "url"),
    (f"hooks.example{PATH}", SECRET, "url"),
    (f"https://hooks.example{PATH}", "short-" + TOKEN[:4], "secret"),
])
def test_bad_endpoint_config_is_refused_without_echoing_it(url: str, secret: str,
                                                           field: str) -> None:
    with pytest.raises(ValidationError) as info:
        WebhookEndpoint(url=url, secret=secret)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as nested:
        WebhookSettings.model_validate({"endpoints": {"a": {"url": url, "secret": secret}}})
    for err in (info.value, nested.value):
        text = str(err)
        assert field in text and TOKEN not in text and SECRET not in text
        assert "short-" not in text


async def _every_failure(fake: FakeWebhookReceiver) -> list[DeliveryError]:
    refused_port = closed_port()
    notifier = WebhookNotifier(settings=WebhookSettings(endpoints={
        "ops-hook": endpoint(fake.url),
        "wrong-secret": endpoint(fake.url, "another-secret-0123456789"),
        "wrong-path": endpoint(fake.base_url + f"/hooks/catch/{TOKEN}-old"),
        "refused": endpoint(f"http://127.0.0.1:{refused_port}{PATH}?token={TOKEN}"),
        "userinfo": endpoint(f"http://user:{TOKEN}@127.0.0.1:{refused_port}{PATH}"),
        "slow": endpoint(fake.url, timeout_s=0.2),
    }))
    attempts: list[tuple[str, Any]] = [
        ("ops-hook", (400, None)), ("ops-hook", (429, 2)), ("ops-hook", (500, None)),
        ("ops-hook", (503, None)), ("ops-hook", (302, None)), ("wrong-secret", None),
        ("wrong-path", None), ("refused", None), ("userinfo", None), ("nowhere", None),
    ]
    errors: list[DeliveryError] = []
    try:
        for target, failure in attempts:
            if failure is not None:
                fake.fail_next(failure[0], retry_after=failure[1])
            with pytest.raises(DeliveryError) as info:
                await notifier.send(notification(target=target))
            errors.append(info.value)
        fake.go_down()
        with pytest.raises(DeliveryError) as info:
            await notifier.send(notification())
        errors.append(info.value)
        fake.come_up()
        fake.delay_s = 1.0
        with pytest.raises(DeliveryError) as info:
            await notifier.send(notification(target="slow"))
        errors.append(info.value)
    finally:
        fake.come_up()
        fake.delay_s = 0.0
        await notifier.close()
    return errors


async def test_url_token_and_hmac_secret_never_reach_errors_or_logs(
    fake: FakeWebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors = await _every_failure(fake)
    assert len(errors) == 12
    assert errors[-1].retryable and "no answer within 0.2s" in errors[-1].reason
    # The wrong-path receiver echoed the token in its 404 body; it must not come through.
    assert any(TOKEN in r.path for r in fake.requests if r.status == 404)
    for err in errors:
        text = "".join(traceback.format_exception(err))
        for secret in (TOKEN, SECRET, "another-secret-0123456789"):
            assert secret not in err.reason and secret not in str(err) and secret not in text
        assert "127.0.0.1" not in err.reason and "/hooks/" not in err.reason
    for secret in (TOKEN, SECRET, "another-secret-0123456789"):
        assert secret not in caplog.text
        assert all(secret not in json.dumps(r.args, default=str) for r in caplog.records)
