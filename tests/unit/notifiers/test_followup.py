"""Follow-ups on every channel that was sent the trigger.

The notifications come from the real escalation engine (so the timeline it writes is what the
status line reads) and go through the real deliver chain (so the receipts' external ids are
what threads the follow-ups) to real local servers: aiosmtpd, a fake ntfy, a fake PagerDuty
Events API and a signed-webhook receiver. No broker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest_asyncio
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from agents.deliver.limits import Digests, RateWindow
from agents.deliver.stages import Chain, build_chain
from agents.escalate.incidents import Decision, EscalationEngine
from notifiers import registry
from notifiers.email import EmailNotifier, EmailSettings
from notifiers.followup import change_of, status_line
from notifiers.pagerduty import PagerDutyNotifier, PagerDutySettings
from notifiers.push import NtfySettings, PushNotifier
from notifiers.retry import RetryPolicy
from notifiers.webhook import WebhookEndpoint, WebhookNotifier, WebhookSettings
from streams.config.escalation import EscalationSettings, Level, Policy, Route, TargetSpec
from streams.core.links import LinkSigner
from streams.core.records import Ack, Delivery, Notification, SampleMention, Signal, stable_id
from streams.runtime.metrics import Metrics
from tests.fakes.ntfy import FakeNtfy
from tests.fakes.pagerduty import FakePagerDuty
from tests.fakes.smtp import FakeSMTP
from tests.fakes.webhook import FakeWebhookReceiver

T0 = datetime(2024, 5, 1, 3, 0, tzinfo=UTC)
HOSTILE = '<script>alert(1)</script> <a href="javascript:x">x</a> @here'
KEY = "R0UT1NGKEY0000000000000000000000"
SECRET = "whsec-0123456789abcdef-followup"
FAST = RetryPolicy(first_delay_s=0.01, max_delay_s=0.02, deadline_s=0.5)
LEVEL_1 = [("email", "oncall@example.com"), ("push", "oncall-phone"),
           ("pagerduty", "comms"), ("webhook", "ops")]
POLICY = Policy(id="crisis", levels=[
    Level(targets=[TargetSpec(email=["oncall@example.com"]), TargetSpec(push="oncall-phone"),
                   TargetSpec(pagerduty="comms"), TargetSpec(webhook="ops")], timeout_s=300),
    Level(targets=[TargetSpec(email=["lead@example.com"])], timeout_s=300),
])


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def engine() -> EscalationEngine:
    settings = EscalationSettings(route=Route(policy="crisis"), policies=[POLICY],
                                  resolve_after_s=1800, reopen_within_s=3600)
    return EscalationEngine(settings=settings, policies=[POLICY], schedules={})


def signal(minute: float = 0, severity: str = "warning", text: str = "acme lost my order"
           ) -> Signal:
    start = T0 + timedelta(minutes=minute)
    return Signal(
        id=stable_id("acme", minute, severity), watch_id="acme", detector="negative_spike",
        severity=severity, window_start=start,  # type: ignore[arg-type]
        window_end=start + timedelta(minutes=1), observed=24, expected=4, score=6,
        summary=f"24 negative mentions at minute {minute}",
        samples=[SampleMention(key=f"x:{minute}", url="https://social.example/1",
                               author="customer", text=text, priority=80)])


def ack(incident_id: str, now: datetime, action: str = "ack", by: str = "ana",
        source: str = "slack") -> Ack:
    return Ack(incident_id=incident_id, action=action, by=by, source=source,  # type: ignore[arg-type]
               at=now)


def of(d: Decision, kind: str) -> list[Notification]:
    return [n for n in d.notifications if n.kind == kind]


# -- what a follow-up says ------------------------------------------------------------------
def test_acknowledged_says_by_whom_and_how() -> None:
    eng = engine()
    d = eng.on_signal(None, signal(), at(0))
    assert d.incident is not None
    assert {change_of(n) for n in d.notifications} == {"triggered"}
    assert {status_line(n) for n in d.notifications} == {""}
    a = eng.on_ack(d.entry, ack(d.incident.id, at(192)), at(192))
    assert [(n.channel, n.target) for n in a.notifications] == LEVEL_1
    for note in a.notifications:
        assert change_of(note) == "acknowledged"
        assert status_line(note) == "Acknowledged by ana via Slack at 2024-05-01 03:03 UTC"


def test_resolved_says_by_whom_or_after_how_long_without_signals() -> None:
    eng = engine()
    d = eng.on_signal(None, signal(), at(0))
    assert d.incident is not None
    r = eng.on_ack(d.entry, ack(d.incident.id, at(900), "resolve", by="bo", source="api"),
                   at(900))
    assert {status_line(n) for n in r.notifications} == {
        "Resolved by bo via the API at 2024-05-01 03:15 UTC"}

    quiet = engine()
    d = quiet.on_signal(None, signal(), at(0))
    j = quiet.on_signal(d.entry, signal(5), at(600))  # the last signal, at +10 min
    auto = quiet.on_tick(j.entry, at(600 + 1800))
    assert auto.incident is not None and auto.incident.state == "resolved"
    assert {change_of(n) for n in auto.notifications} == {"resolved"}
    assert {status_line(n) for n in auto.notifications} == {
        "Auto-resolved after 30 min without signals at 2024-05-01 03:40 UTC"}


def test_an_escalation_tells_the_earlier_level_without_paging_it_again() -> None:
    eng = engine()
    d = eng.on_signal(None, signal(), at(0))
    t = eng.on_tick(d.entry, at(300))
    assert [(n.channel, n.target) for n in of(t, "escalate")] == [("email", "lead@example.com")]
    told = of(t, "update")
    assert [(n.channel, n.target) for n in told] == LEVEL_1
    for note in told + of(t, "escalate"):
        assert change_of(note) == "escalated"
        assert status_line(note) == "Escalated to level 2: nobody has acknowledged it yet"


def test_a_worse_signal_and_a_recurrence_are_named_as_such() -> None:
    eng = engine()
    d = eng.on_signal(None, signal(), at(0))
    w = eng.on_signal(d.entry, signal(1, "critical"), at(400))
    assert {change_of(n) for n in of(w, "update")} == {"updated"}
    assert {status_line(n) for n in of(w, "update")} == {"Updated: now critical"}
    assert w.incident is not None
    r = eng.on_ack(w.entry, ack(w.incident.id, at(500), "resolve"), at(500))
    again = eng.on_signal(r.entry, signal(20, "critical"), at(900))
    assert again.notifications and {change_of(n) for n in again.notifications} == {"reopened"}


def test_who_acted_is_one_clean_line() -> None:
    eng = engine()
    d = eng.on_signal(None, signal(), at(0))
    assert d.incident is not None
    by = "ana\r\nBcc: victim@example.com\u202e <b>x</b>"
    a = eng.on_ack(d.entry, ack(d.incident.id, at(60), by=by, source="link"), at(60))
    line = status_line(a.notifications[0])
    assert "\n" not in line and "\r" not in line and "\u202e" not in line
    assert line.startswith("Acknowledged by ana  Bcc: victim@example.com <b>x</b> via a signed")


# -- every channel hears it, through the deliver chain ----------------------------------------
class Receipts(list[Delivery]):
    async def __call__(self, record: Delivery) -> None:
        self.append(record)


@pytest_asyncio.fixture
async def servers() -> AsyncIterator[dict[str, Any]]:
    async with FakeSMTP() as smtp, FakeNtfy() as ntfy, \
            FakePagerDuty(routing_keys=[KEY]) as pd, \
            FakeWebhookReceiver(secret=SECRET) as hook:
        yield {"smtp": smtp, "ntfy": ntfy, "pd": pd, "hook": hook}


@pytest_asyncio.fixture
async def chain(servers: dict[str, Any]) -> AsyncIterator[tuple[Chain, Receipts]]:
    links = LinkSigner(secret=b"0123456789abcdef-test", base_url="https://escucha.example")
    names = {"acme": "Acme"}
    notifiers = {
        "email": EmailNotifier(settings=EmailSettings(
            host="127.0.0.1", port=servers["smtp"].port, from_addr="escucha@example.com",
            timeout_s=5), links=links, watch_names=names),
        "push": PushNotifier(settings=NtfySettings(base_url=servers["ntfy"].url),
                             links=links, watch_names=names),
        "pagerduty": PagerDutyNotifier(settings=PagerDutySettings(
            events_url=servers["pd"].events_url, services={"comms": SecretStr(KEY)}),
            watch_names=names),
        "webhook": WebhookNotifier(settings=WebhookSettings(endpoints={"ops": WebhookEndpoint(
            url=SecretStr(servers["hook"].url), secret=SecretStr(SECRET))})),
    }
    receipts = Receipts()
    built, _ = build_chain(
        ledger={}, notifiers=notifiers, receipts=receipts, fallback_targets=[], schedules={},
        metrics=Metrics(registry=CollectorRegistry(), channels=registry.names,
                        watches=["acme"]),
        window=RateWindow(60), digests=Digests(), policy=FAST)
    yield built, receipts
    for notifier in notifiers.values():
        await notifier.close()


async def deliver(chain: Chain, d: Decision) -> None:
    for note in d.notifications:
        assert await chain(note) == "delivered", note.id


async def test_every_channel_sent_the_trigger_hears_escalation_ack_and_resolution(
    servers: dict[str, Any], chain: tuple[Chain, Receipts]
) -> None:
    run, _ = chain
    smtp, ntfy, pd, hook = servers["smtp"], servers["ntfy"], servers["pd"], servers["hook"]
    eng = engine()
    d = eng.on_signal(None, signal(text=HOSTILE), at(0))
    assert d.incident is not None
    incident = d.incident.id
    await deliver(run, d)
    t = eng.on_tick(d.entry, at(300))                  # level 2: the lead is paged
    await deliver(run, t)
    a = eng.on_ack(t.entry, ack(incident, at(400)), at(400))
    await deliver(run, a)
    r = eng.on_ack(a.entry, ack(incident, at(900), "resolve", by="bo", source="api"), at(900))
    await deliver(run, r)

    # Email: everything to oncall@ is one thread under the first message.
    oncall = [m for m in smtp.messages if m["To"] == "oncall@example.com"]
    first, *replies = oncall
    assert first["In-Reply-To"] is None and not first["Subject"].startswith("Re:")
    assert len(replies) == 3
    for reply in replies:
        assert reply["In-Reply-To"] == first["Message-ID"]
        assert reply["References"].split() == [first["References"], first["Message-ID"]]
        assert reply["Subject"] == "Re: " + first["Subject"]
    said = [str(m.get_body(preferencelist=("plain",)).get_content()).splitlines()[0]
            for m in replies]
    assert said == ["Escalated to level 2: nobody has acknowledged it yet",
                    "Acknowledged by ana via Slack at 2024-05-01 03:06 UTC",
                    "Resolved by bo via the API at 2024-05-01 03:15 UTC"]
    for message in oncall:  # the mention is text in every one of them
        html = str(message.get_body(preferencelist=("html",)).get_content())
        assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    lead = [m for m in smtp.messages if m["To"] == "lead@example.com"]
    assert [m["In-Reply-To"] is None for m in lead] == [True, False, False]

    # Push: one notification on the phone, replaced each time, resolved and quiet at the end.
    published = [m for m in ntfy.messages if m["topic"] == "oncall-phone"]
    assert len(published) == 4 and len({m["sequence_id"] for m in published}) == 1
    assert published[1]["title"].endswith("escalated, level 2")
    (shown,) = ntfy.shown("oncall-phone")
    assert shown["title"].endswith("resolved by bo") and "white_check_mark" in shown["tags"]
    assert shown["priority"] == 2 and "actions" not in shown
    assert shown["message"].startswith("Resolved by bo via the API")

    # PagerDuty: one alert, told of the escalation by a deduplicated trigger, paged once.
    (alert,) = pd.alerts
    assert alert.actions == ["trigger", "trigger", "acknowledge", "resolve"]
    assert alert.state == "resolved" and {e["dedup_key"] for e in pd.events} == {alert.dedup_key}
    assert alert.events[1]["payload"]["custom_details"]["change"] == "escalated"

    # Webhook: the event kinds, each follow-up naming the first notification.
    docs = [r.json for r in hook.received]
    assert [doc["event"] for doc in docs] == ["triggered", "escalated", "acknowledged",
                                              "resolved"]
    assert all(doc["in_reply_to"] == docs[0]["id"] for doc in docs[1:])
    assert docs[2]["status"] == "Acknowledged by ana via Slack at 2024-05-01 03:06 UTC"


async def test_an_auto_resolution_reaches_email_and_push_too(
    servers: dict[str, Any], chain: tuple[Chain, Receipts]
) -> None:
    run, receipts = chain
    eng = engine()
    d = eng.on_signal(None, signal(), at(0))
    await deliver(run, d)
    a = eng.on_ack(d.entry, ack(d.incident.id if d.incident else "", at(60)), at(60))
    await deliver(run, a)
    r = eng.on_tick(a.entry, at(1800))  # resolve_after_s: 30 min without a signal
    await deliver(run, r)
    line = "Auto-resolved after 30 min without signals at 2024-05-01 03:30 UTC"
    last_mail = servers["smtp"].messages[-1]
    assert str(last_mail.get_body(preferencelist=("plain",)).get_content()).startswith(line)
    (shown,) = servers["ntfy"].shown("oncall-phone")
    assert shown["message"].startswith(line)
    assert {(x.channel, x.outcome) for x in receipts} == {(c, "delivered") for c, _ in LEVEL_1}
