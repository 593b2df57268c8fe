"""Teams and Google Chat after a worker restart: the delivery chain with an in-memory ledger,
real notifiers and the fake webhooks (no broker).

A restarted worker reads again what it had not committed. A notification whose outcome is in
the ledger is skipped for every channel. One left "pending" (the worker died after posting,
before recording) is resent, because neither webhook can be asked what it holds
(``find_sent`` is None): Google Chat's requestId turns the resend into a no-op; Teams has no
such key and shows the card twice, as the README says.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest_asyncio
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from agents.deliver.limits import Digests, RateWindow
from agents.deliver.stages import Chain, build_chain
from notifiers import registry
from notifiers.googlechat import GoogleChatNotifier, GoogleChatSettings
from notifiers.retry import RetryPolicy
from notifiers.teams import TeamsNotifier, TeamsSettings
from streams.core.records import Delivery, Incident, Notification
from streams.runtime.metrics import Metrics
from tests.fakes.googlechat import FakeGoogleChat
from tests.fakes.teams import FakeTeams

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


class _Receipts(list[Delivery]):
    async def __call__(self, record: Delivery) -> None:
        self.append(record)


def _note(channel: str) -> Notification:
    inc = Incident(id="acme.0123456789abcdef", watch_id="acme", detector="influencer",
                   severity="critical", state="open", opened_at=T0, updated_at=T0,
                   summary="a 2M-follower account is furious", fingerprint="acme")
    return Notification(id=f"{inc.id}:1:{channel}:comms:trigger", incident=inc, level=1,
                        channel=channel, target="comms", created_at=T0)


@dataclass
class _Rig:
    teams: FakeTeams
    chat: FakeGoogleChat
    chain: Chain
    ledger: dict[str, Any]
    metrics: Metrics

    async def deliver_both(self) -> list[str]:
        return [await self.chain(_note(c)) for c in ("teams", "googlechat")]


@pytest_asyncio.fixture
async def rig() -> AsyncIterator[_Rig]:
    async with FakeTeams() as teams, FakeGoogleChat() as chat:
        notifiers = {
            "teams": TeamsNotifier(
                settings=TeamsSettings(webhooks={"comms": SecretStr(teams.url)})),
            "googlechat": GoogleChatNotifier(
                settings=GoogleChatSettings(webhooks={"comms": SecretStr(chat.url)})),
        }
        metrics = Metrics(registry=CollectorRegistry(), channels=registry.names,
                          watches=["acme"])
        ledger: dict[str, Any] = {}
        chain, _ = build_chain(
            ledger=ledger, notifiers=notifiers, metrics=metrics, receipts=_Receipts(),
            fallback_targets=[], schedules={}, window=RateWindow(20), digests=Digests(),
            policy=RetryPolicy(first_delay_s=0.01, max_delay_s=0.02, deadline_s=0.5))
        yield _Rig(teams=teams, chat=chat, chain=chain, ledger=ledger, metrics=metrics)
        for notifier in notifiers.values():
            await notifier.close()


async def test_a_recorded_notification_is_never_posted_again(rig: _Rig) -> None:
    assert await rig.deliver_both() == ["delivered", "delivered"]
    assert await rig.deliver_both() == ["duplicate", "duplicate"]  # re-read after a restart
    for channel in ("teams", "googlechat"):
        assert rig.metrics.notifications.labels(channel, "duplicate")._value.get() == 1
    assert len(rig.teams.posts) == 1 and len(rig.chat.posts) == 1


async def test_a_crash_between_post_and_record_repeats_teams_but_not_chat(rig: _Rig) -> None:
    await rig.deliver_both()
    # What the killed worker left durable: the intents, not the outcomes.
    rig.ledger.clear()
    rig.ledger.update({_note(c).id: {"state": "pending"} for c in ("teams", "googlechat")})
    assert await rig.deliver_both() == ["delivered", "delivered"]
    assert len(rig.chat.messages) == 1  # the resend got the first message back
    assert [p.created for p in rig.chat.posts] == [True, False]
    assert len(rig.teams.cards) == 2  # no idempotency key a workflow webhook would honour
