"""Each delivery stage alone, against an in-memory ledger and real notifiers (no broker).

The console notifier writes to a StringIO; a webhook notifier pointed at a closed loopback
port fails for real (connection refused), with a retry policy short enough for a unit test.
"""

from __future__ import annotations

import io
import socket
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from agents.deliver.limits import Digests, RateWindow
from agents.deliver.stages import (
    Attempt,
    Chain,
    Dedup,
    Fallback,
    Record,
    Route,
    Send,
    Thread,
    build_chain,
    thread_key,
)
from notifiers import registry
from notifiers.base import Receipt
from notifiers.console import ConsoleNotifier
from notifiers.retry import RetryPolicy
from notifiers.webhook import WebhookNotifier, WebhookSettings
from streams.config.escalation import TargetSpec
from streams.core.records import Delivery, Incident, Notification
from streams.runtime.metrics import Metrics

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
FAST = RetryPolicy(first_delay_s=0.01, max_delay_s=0.02, deadline_s=0.05)


def metrics() -> Metrics:
    return Metrics(registry=CollectorRegistry(), channels=registry.names, watches=["acme"])


def count(m: Metrics, channel: str, outcome: str) -> float:
    return m.notifications.labels(channel, outcome)._value.get()


def incident(id: str = "acme.0123456789abcdef") -> Incident:
    return Incident(id=id, watch_id="acme", detector="negative_spike", severity="warning",
                    state="open", opened_at=T0, updated_at=T0, summary="negatives 4x",
                    fingerprint="acme")


def note(kind: str = "trigger", *, id: str = "n1", channel: str = "console",
         target: str = "stdout", level: int = 1) -> Notification:
    return Notification(id=id, incident=incident(), kind=kind, channel=channel,  # type: ignore[arg-type]
                        target=target, level=level, created_at=T0)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def failing_webhook() -> WebhookNotifier:
    settings = WebhookSettings(endpoints={"ops": {
        "url": f"http://127.0.0.1:{closed_port()}/hook", "secret": "s" * 32}})
    return WebhookNotifier(settings=settings)


class Receipts(list[Delivery]):
    async def __call__(self, record: Delivery) -> None:
        self.append(record)


def console() -> tuple[ConsoleNotifier, io.StringIO]:
    out = io.StringIO()
    return ConsoleNotifier(stream=out, watch_names={"acme": "Acme"}), out


# -- Dedup -----------------------------------------------------------------------------------

@pytest.mark.parametrize("state", ["delivered", "failed", "digested"])
def test_dedup_skips_what_has_an_outcome(state: str) -> None:
    m = metrics()
    assert Dedup(ledger={"n1": {"state": state}}, metrics=m)(note()) is None
    assert count(m, "console", "duplicate") == 1


@pytest.mark.parametrize("ledger", [{}, {"n1": {"state": "pending"}},
                                    {"n2": {"state": "delivered"}}])
def test_dedup_passes_new_and_pending_notifications(ledger: dict[str, Any]) -> None:
    m = metrics()
    n = note()
    assert Dedup(ledger=ledger, metrics=m)(n) is n
    assert count(m, "console", "duplicate") == 0


# -- held lines (the rate limit and digests: test_limits.py) ---------------------------------

def test_a_held_line_is_not_done_so_a_restart_holds_or_sends_it_again() -> None:
    # The worker stopped before the digest: the notification is read again, and the
    # ledger's "held" does not make Dedup skip it (a "digested" one it would).
    ledger = {"n0": {"state": "held"}}
    m = metrics()
    assert Dedup(ledger=ledger, metrics=m)(note(id="n0")) is not None
    ledger["n0"] = {"state": "digested"}
    assert Dedup(ledger=ledger, metrics=m)(note(id="n0")) is None


# -- Thread ----------------------------------------------------------------------------------

def test_thread_points_later_notifications_at_the_first_message() -> None:
    n = note("update", id="n2", channel="slack", target="#c")
    assert Thread(ledger={})(n).update_of is None
    ledger = {thread_key(n): {"external_id": "1700000000.000100"}}
    assert Thread(ledger=ledger)(n).update_of == "1700000000.000100"
    other = note("update", id="n3", channel="slack", target="#other")
    assert Thread(ledger=ledger)(other).update_of is None


# -- Record, Attempt, Send, Fallback, Route --------------------------------------------------

async def test_record_counts_and_hands_on_one_receipt() -> None:
    m, receipts = metrics(), Receipts()
    await Record(metrics=m, receipts=receipts)(note(), "delivered", Receipt(external_id="x"),
                                               "ok")
    [r] = receipts
    assert (r.notification_id, r.outcome, r.external_id, r.detail) == ("n1", "delivered", "x",
                                                                       "ok")
    assert count(m, "console", "delivered") == 1


def parts(m: Metrics, notifiers: dict[str, Any], fallback: list[TargetSpec] | None = None
          ) -> tuple[dict[str, Any], Receipts, Attempt, Record, Fallback]:
    ledger: dict[str, Any] = {}
    receipts = Receipts()
    attempt = Attempt(metrics=m, policy=FAST)
    record = Record(metrics=m, receipts=receipts)
    fb = Fallback(targets=fallback or [], schedules={}, notifiers=notifiers, attempt=attempt,
                  record=record)
    return ledger, receipts, attempt, record, fb


async def test_send_writes_the_intent_durably_before_the_side_effect() -> None:
    m = metrics()
    out = io.StringIO()
    events: list[str] = []
    ledger, _receipts, attempt, record, fb = parts(m, {})

    class Watching(ConsoleNotifier):
        async def send(self, notification: Notification) -> Receipt:
            events.append(f"send with ledger {ledger.get(notification.id)}")
            return await super().send(notification)

    async def durable() -> None:
        events.append(f"durable with ledger {ledger.get('n1')}")

    send = Send(ledger=ledger, attempt=attempt, record=record, fallback=fb, durable=durable)
    rec = await send(Watching(stream=out), note(), seen_before=False)
    assert rec is not None and "INCIDENT" in out.getvalue()
    assert events == ["durable with ledger {'state': 'pending'}",
                      "send with ledger {'state': 'pending'}"]


async def test_send_failure_is_recorded_and_falls_back_to_the_fallback_targets() -> None:
    m = metrics()
    fallback_console, out = console()
    notifiers = {"webhook": failing_webhook(), "console": fallback_console}
    ledger, receipts, attempt, record, fb = parts(m, notifiers, [TargetSpec(console=True)])
    send = Send(ledger=ledger, attempt=attempt, record=record, fallback=fb)
    try:
        n = note(channel="webhook", target="ops")
        assert await send(notifiers["webhook"], n, seen_before=False) is None
    finally:
        await notifiers["webhook"].close()
    assert ledger["n1"] == {"state": "failed"}
    assert [(r.channel, r.outcome) for r in receipts] == [("webhook", "failed"),
                                                          ("console", "delivered")]
    assert receipts[1].notification_id == "n1:fallback:console:stdout"
    assert "INCIDENT" in out.getvalue()


async def test_fallback_skips_state_changes_and_the_failed_target_itself() -> None:
    m = metrics()
    c, out = console()
    _, receipts, _, _, fb = parts(m, {"console": c}, [TargetSpec(console=True)])
    assert await fb(note("resolve"), "down") == 0
    assert await fb(note(), "down") == 0  # the failed target is the only fallback
    assert receipts == [] and out.getvalue() == ""


async def test_send_looks_up_a_possibly_sent_notification_instead_of_resending() -> None:
    m = metrics()
    found: list[str] = []
    ledger, _receipts, attempt, record, fb = parts(m, {})

    class Remembers(ConsoleNotifier):
        async def find_sent(self, notification: Notification) -> Receipt | None:
            found.append(notification.id)
            return Receipt(external_id="earlier")

    out = io.StringIO()
    rec = await Send(ledger=ledger, attempt=attempt, record=record, fallback=fb)(
        Remembers(stream=out), note(), seen_before=True)
    assert rec == Receipt(external_id="earlier") and found == ["n1"]
    assert out.getvalue() == ""  # not sent again


async def test_route_fails_a_channel_that_is_not_configured() -> None:
    m = metrics()
    c, _out = console()
    ledger, receipts, _, record, fb = parts(m, {"console": c}, [TargetSpec(console=True)])
    route = Route(notifiers={"console": c}, ledger=ledger, record=record, fallback=fb)
    assert await route(note(channel="slack", target="#c")) is None
    assert ledger["n1"] == {"state": "failed"}
    assert receipts[0].detail == "channel 'slack' not configured"
    assert receipts[1].channel == "console"  # and it fell back
    assert await route(note()) is c


# -- the whole chain -------------------------------------------------------------------------

def chain_of(m: Metrics, notifiers: dict[str, Any], *, per_minute: int = 20
             ) -> tuple[Chain, dict[str, Any], Receipts, Digests]:
    ledger: dict[str, Any] = {}
    receipts = Receipts()
    digests = Digests()
    chain, _ = build_chain(ledger=ledger, notifiers=notifiers, metrics=m,
                           receipts=receipts, fallback_targets=[], schedules={},
                           window=RateWindow(per_minute, clock=lambda: 0.0), digests=digests,
                           policy=FAST)
    return chain, ledger, receipts, digests


async def test_chain_delivers_once_and_skips_the_redelivery() -> None:
    m = metrics()
    c, out = console()
    chain, ledger, receipts, _ = chain_of(m, {"console": c})
    assert await chain(note()) == "delivered"
    assert await chain(note()) == "duplicate"
    assert out.getvalue().count("INCIDENT") == 1
    assert ledger["n1"]["state"] == "delivered"
    assert [r.outcome for r in receipts] == ["delivered"]


async def test_chain_digests_past_the_limit() -> None:
    m = metrics()
    c, _ = console()
    chain, _ledger, _, digests = chain_of(m, {"console": c}, per_minute=1)
    assert [await chain(note(id=f"n{i}")) for i in range(3)] == ["delivered", "held",
                                                                  "held"]
    assert len(digests.held[("console", "stdout")]) == 2


async def test_chain_threads_later_messages_under_the_first_one() -> None:
    m = metrics()
    sent: list[str | None] = []

    class Numbered(ConsoleNotifier):
        async def send(self, notification: Notification) -> Receipt:
            await super().send(notification)
            sent.append(notification.update_of)
            return Receipt(external_id=f"ext-{len(sent)}")

    chain, ledger, _, _ = chain_of(m, {"console": Numbered(stream=io.StringIO())})
    assert await chain(note(id="n1")) == "delivered"
    assert await chain(note("update", id="n2")) == "delivered"
    assert sent == [None, "ext-1"]
    assert ledger[thread_key(note())] == {"external_id": "ext-1"}  # not moved to ext-2
