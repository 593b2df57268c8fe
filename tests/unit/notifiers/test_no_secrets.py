"""Convention 4, for every notifier at once: no secret in any log line or error message.

Each channel is driven through the real retry stage against its real local fake, in the
ways a channel really fails (credentials refused, server errors, nothing listening), with
every logger at DEBUG. The secret must appear in no log record, no error, no traceback.
"""

from __future__ import annotations

import contextlib
import logging
import traceback
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from notifiers import registry
from notifiers.email import EmailNotifier, EmailSettings
from notifiers.errors import DeliveryError
from notifiers.googlechat import GoogleChatNotifier, GoogleChatSettings
from notifiers.pagerduty import PagerDutyNotifier, PagerDutySettings
from notifiers.push import NtfySettings, PushNotifier
from notifiers.retry import RetryPolicy, send_with_retry
from notifiers.slack import SlackNotifier
from notifiers.teams import TeamsNotifier, TeamsSettings
from notifiers.webhook import WebhookEndpoint, WebhookNotifier, WebhookSettings
from streams.core.links import LinkSigner
from streams.core.records import Incident, Notification, SampleMention
from tests.fakes.googlechat import FakeGoogleChat
from tests.fakes.ntfy import FakeNtfy
from tests.fakes.pagerduty import FakePagerDuty
from tests.fakes.slack import FakeSlack
from tests.fakes.smtp import FakeSMTP
from tests.fakes.teams import FakeTeams
from tests.fakes.webhook import FakeWebhookReceiver

SECRET = "s3cr3t-VALUE-that-must-never-leak-0123456789"
NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
_FAST = RetryPolicy(first_delay_s=0.01, max_delay_s=0.05, deadline_s=0.5)


def _note(channel: str, target: str) -> Notification:
    incident = Incident(
        id="acme.0123456789abcdef", fingerprint="acme:negative_spike", watch_id="acme",
        detector="negative_spike", severity="critical", opened_at=NOW, updated_at=NOW,
        summary="40 negative mentions, 8x expected",
        samples=[SampleMention(key="k", url="https://social.example/1", author="a",
                               text="acme is down", priority=80)])
    return Notification(id=f"{incident.id}:1:{channel}:{target}:trigger", incident=incident,
                        level=1, channel=channel, target=target, created_at=NOW)


_Case = Callable[[str], contextlib.AbstractAsyncContextManager[tuple[Any, Notification]]]


@contextlib.asynccontextmanager
async def _slack(mode: str) -> AsyncIterator[tuple[Any, Notification]]:
    async with FakeSlack(token="xoxb-the-right-one") as fake:
        if mode == "down":
            fake.go_down()
        url = fake.url if mode != "refused" else "http://127.0.0.1:9/api/"
        token = SECRET if mode != "ok" else "xoxb-the-right-one"
        yield SlackNotifier(token=token, channel="#crisis", base_url=url), _note("slack", "#c")


@contextlib.asynccontextmanager
async def _email(mode: str) -> AsyncIterator[tuple[Any, Notification]]:
    async with FakeSMTP(username="escucha", password="other-password") as fake:
        port = fake.port if mode != "refused" else 9
        settings = EmailSettings(host="127.0.0.1", port=port, username="escucha",
                                 password=SecretStr(SECRET), from_addr="escucha@example.com")
        links = LinkSigner(secret=SECRET.encode(), base_url="http://127.0.0.1:1")
        yield (EmailNotifier(settings=settings, links=links),
               _note("email", "lead@example.com"))


@contextlib.asynccontextmanager
async def _push(mode: str) -> AsyncIterator[tuple[Any, Notification]]:
    async with FakeNtfy(token="the-right-token") as fake:
        if mode == "down":
            fake.fail_next(503, times=10)
        url = fake.url if mode != "refused" else "http://127.0.0.1:9"
        settings = NtfySettings(base_url=url, token=SecretStr(SECRET))
        links = LinkSigner(secret=SECRET.encode(), base_url="http://127.0.0.1:1")
        notifier = PushNotifier(settings=settings, links=links)
        try:
            yield notifier, _note("push", "crisis")
        finally:
            await notifier.close()


@contextlib.asynccontextmanager
async def _pagerduty(mode: str) -> AsyncIterator[tuple[Any, Notification]]:
    async with FakePagerDuty(routing_keys=("another-routing-key-000000000000",)) as fake:
        if mode == "down":
            fake.go_down()
        url = fake.events_url if mode != "refused" else "http://127.0.0.1:9/v2/enqueue"
        settings = PagerDutySettings(events_url=url, services={"brand": SecretStr(SECRET)})
        notifier = PagerDutyNotifier(settings=settings)
        try:
            yield notifier, _note("pagerduty", "brand")
        finally:
            await notifier.close()


@contextlib.asynccontextmanager
async def _webhook(mode: str) -> AsyncIterator[tuple[Any, Notification]]:
    async with FakeWebhookReceiver(secret="a-different-hmac-secret-0000") as fake:
        if mode == "down":
            fake.go_down()
        base = fake.base_url if mode != "refused" else "http://127.0.0.1:9"
        endpoint = WebhookEndpoint(url=SecretStr(f"{base}/hooks/{SECRET}?token={SECRET}"),
                                   secret=SecretStr(SECRET))
        notifier = WebhookNotifier(settings=WebhookSettings(endpoints={"ops": endpoint}))
        try:
            yield notifier, _note("webhook", "ops")
        finally:
            await notifier.close()


@contextlib.asynccontextmanager
async def _teams(mode: str) -> AsyncIterator[tuple[Any, Notification]]:
    # The workflow URL's signature is the credential; the fake echoes it when it fails.
    async with FakeTeams(sig="the-right-signature-0000") as fake:
        if mode == "down":
            fake.go_down()
        url = fake.url.replace("the-right-signature-0000", SECRET)
        if mode == "refused":
            url = url.replace(url.split("/workflows")[0], "http://127.0.0.1:9")
        links = LinkSigner(secret=SECRET.encode(), base_url="http://127.0.0.1:1")
        notifier = TeamsNotifier(settings=TeamsSettings(webhooks={"ops": SecretStr(url)}),
                                 links=links)
        try:
            yield notifier, _note("teams", "ops")
        finally:
            await notifier.close()


@contextlib.asynccontextmanager
async def _googlechat(mode: str) -> AsyncIterator[tuple[Any, Notification]]:
    async with FakeGoogleChat(token="the-right-token-0000") as fake:
        if mode == "down":
            fake.go_down()
        url = fake.url.replace("the-right-token-0000", SECRET)
        if mode == "refused":
            url = url.replace(url.split("/v1/")[0], "http://127.0.0.1:9")
        links = LinkSigner(secret=SECRET.encode(), base_url="http://127.0.0.1:1")
        notifier = GoogleChatNotifier(
            settings=GoogleChatSettings(webhooks={"ops": SecretStr(url)}), links=links)
        try:
            yield notifier, _note("googlechat", "ops")
        finally:
            await notifier.close()


CASES: dict[str, _Case] = {"slack": _slack, "email": _email, "push": _push,
                           "pagerduty": _pagerduty, "webhook": _webhook, "teams": _teams,
                           "googlechat": _googlechat}


@pytest.mark.parametrize("mode", ["credentials", "down", "refused"])
@pytest.mark.parametrize("channel", sorted(CASES))
async def test_no_secret_in_logs_or_errors(channel: str, mode: str,
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with CASES[channel](mode) as (notifier, note):
        try:
            with pytest.raises(DeliveryError) as info:
                await send_with_retry(notifier, note, policy=_FAST)
        finally:
            await notifier.close()
    error = info.value
    seen = [str(error), repr(error), "".join(traceback.format_exception(error)),
            caplog.text, *(str(r.args) for r in caplog.records)]
    leaks = [s for s in seen if SECRET in s]
    assert not leaks, f"{channel}/{mode} leaked the secret: {leaks[0][:500]}"


def test_every_channel_with_a_secret_is_covered() -> None:
    # A new channel in notifiers/registry.py must join CASES (console holds no secret).
    assert set(CASES) == set(registry.names) - {"console"}
