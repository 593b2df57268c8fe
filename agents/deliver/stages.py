"""Delivery as a chain of small stages, free of Faust (Alertmanager's notify pipeline).

Each notification goes through, in order:

  Dedup → Route → RateLimit (held lines go to Digests) → Thread → Send (with retry) →
  Record, and Fallback when Route or Send fail for good.

The rate limit and its digests are in agents/deliver/limits.py; :class:`DigestRound` sends
the digests, on the agent's timer.

Exactly-once delivery on an at-least-once stream: before a notifier is called, an intent
("pending") is written to the ledger (the ``escucha.deliveries`` table in the worker, a dict
in tests) and made durable (``durable``: the producer's flush, so the table's changelog has
it); after, the outcome. A re-delivered notification whose outcome is recorded is skipped;
one left "pending" by a killed worker is first looked up in the channel (``find_sent``).

Each stage returns the notification to pass on, or None when it has finished with it.
``Receipts`` get one :class:`~streams.core.records.Delivery` per outcome: the agent sends
them to the escalate agent for the incident's timeline.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agents.deliver.limits import STATE_KINDS, Digests, Ledger, RateLimit, RateWindow, Target
from agents.escalate.oncall import resolve_targets
from notifiers.base import Notifier, Receipt
from notifiers.errors import DeliveryError
from notifiers.retry import RetryPolicy, send_with_retry
from streams.config.escalation import Schedule, TargetSpec
from streams.core.records import Delivery, Notification
from streams.i18n import EN, Lang
from streams.runtime.metrics import Metrics

__all__ = ["Attempt", "Chain", "Dedup", "DigestRound", "Fallback", "Record", "Route", "Send",
           "Thread", "build_chain", "thread_key"]

log = logging.getLogger(__name__)

#: Ledger states after which a notification is never sent again. ("held": a line waiting
#: for the next digest is not done: re-delivered after a restart, it is held again.)
DONE = frozenset({"delivered", "failed", "digested"})

Receipts = Callable[[Delivery], Awaitable[None]]
Durable = Callable[[], Awaitable[None]]
#: Makes a token (the agent's Faust event) the one being handled, so table writes go to its
#: partition (streams/runtime/faust.py: handling).
Within = Callable[[Any], AbstractContextManager[Any]]
Ack = Callable[[Any], Awaitable[None]]


async def _nothing() -> None:
    return None


async def _no_ack(_token: Any) -> None:
    return None


def _english(_key: Target) -> Lang:
    return EN


def _anywhere(_token: Any) -> AbstractContextManager[Any]:
    return contextlib.nullcontext()


def thread_key(note: Notification) -> str:
    """The ledger key of the first message sent about an incident to one target."""
    return f"message:{note.incident.id}:{note.channel}:{note.target}"


@dataclass
class Attempt:
    """One send with the shared retry policy, timed into the metrics."""

    metrics: Metrics
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    wall: Callable[[], float] = time.time

    async def __call__(self, notifier: Notifier, note: Notification) -> Receipt | DeliveryError:
        started = time.monotonic()
        try:
            rec = await send_with_retry(
                notifier, note, policy=self.policy,
                on_retry=lambda _e: self.metrics.notifications.labels(note.channel,
                                                                      "retried").inc())
        except DeliveryError as exc:
            return exc
        self.metrics.delivery_seconds.labels(note.channel).observe(time.monotonic() - started)
        posted = note.incident.trigger_posted_at
        if note.kind == "trigger" and posted is not None:
            self.metrics.latency.labels("post_to_delivered").observe(
                max(0.0, self.wall() - posted.timestamp()))
        return rec


@dataclass
class Record:
    """Counts an outcome and hands its receipt on."""

    metrics: Metrics
    receipts: Receipts

    async def __call__(self, note: Notification, outcome: str, rec: Receipt | None,
                       detail: str) -> None:
        self.metrics.notifications.labels(note.channel, outcome).inc()
        await self.receipts(Delivery(
            notification_id=note.id, incident_id=note.incident.id, channel=note.channel,
            target=note.target, outcome=outcome,  # type: ignore[arg-type]
            detail=detail, external_id=rec.external_id if rec else None,
            at=datetime.now(UTC)))


@dataclass
class Fallback:
    """A permanent failure goes to the fallback targets, so the alert is not lost."""

    targets: Sequence[TargetSpec]
    schedules: Mapping[str, Schedule]
    notifiers: Mapping[str, Notifier]
    attempt: Attempt
    record: Record

    async def __call__(self, note: Notification, why: str) -> int:
        """Send ``note`` to every fallback target but its own; how many were tried."""
        if note.kind in STATE_KINDS:
            return 0  # an ack/resolve notice for a message that never arrived helps nobody
        tried = 0
        for spec in self.targets:
            for channel, target in resolve_targets(spec, self.schedules, datetime.now(UTC)):
                notifier = self.notifiers.get(channel)
                if notifier is None or (channel, target) == (note.channel, note.target):
                    continue
                copy = note.model_copy(update={
                    "id": f"{note.id}:fallback:{channel}:{target}", "channel": channel,
                    "target": target, "update_of": None})
                log.warning("falling back to %s %s for %s (%s)", channel, target, note.id, why)
                tried += 1
                result = await self.attempt(notifier, copy)
                if isinstance(result, DeliveryError):
                    await self.record(copy, "failed", None, result.reason)
                else:
                    await self.record(copy, "delivered", result, f"fallback: {result.detail}")
        return tried


@dataclass
class Dedup:
    """Skips a notification whose outcome the ledger already holds (a re-delivery)."""

    ledger: Ledger
    metrics: Metrics

    def __call__(self, note: Notification) -> Notification | None:
        previous = self.ledger.get(note.id)
        if previous and previous.get("state") in DONE:
            self.metrics.notifications.labels(note.channel, "duplicate").inc()
            log.info("notification %s already %s; skipped", note.id, previous["state"])
            return None
        return note


@dataclass
class Route:
    """Finds the channel's notifier; a channel that is not configured fails at once."""

    notifiers: Mapping[str, Notifier]
    ledger: Ledger
    record: Record
    fallback: Fallback

    async def __call__(self, note: Notification) -> Notifier | None:
        notifier = self.notifiers.get(note.channel)
        if notifier is None:
            self.ledger[note.id] = {"state": "failed"}
            await self.record(note, "failed", None, f"channel {note.channel!r} not configured")
            await self.fallback(note, "channel not configured")
        return notifier


@dataclass
class Thread:
    """Points a later notification at the first message sent about its incident there."""

    ledger: Ledger

    def __call__(self, note: Notification) -> Notification:
        first = self.ledger.get(thread_key(note))
        if first and first.get("external_id"):
            return note.model_copy(update={"update_of": first["external_id"]})
        return note


@dataclass
class Send:
    """Intent, send with retry, outcome; a failure is recorded and falls back."""

    ledger: Ledger
    attempt: Attempt
    record: Record
    fallback: Fallback
    durable: Durable = _nothing

    async def __call__(self, notifier: Notifier, note: Notification, *,
                       seen_before: bool) -> Receipt | None:
        """The receipt, or None when the send failed for good (recorded, fallen back)."""
        rec = await notifier.find_sent(note) if seen_before else None
        if rec is not None:
            log.info("notification %s was sent before a restart; not resent", note.id)
            return rec
        self.ledger[note.id] = {"state": "pending"}
        await self.durable()  # the intent must be durable before the side effect
        result = await self.attempt(notifier, note)
        if isinstance(result, DeliveryError):
            log.error("notification %s to %s failed: %s", note.id, note.channel, result.reason)
            self.ledger[note.id] = {"state": "failed"}
            await self.record(note, "failed", None, result.reason)
            await self.fallback(note, result.reason)
            await self.durable()
            return None
        return result


@dataclass
class Chain:
    """The stages, in order, for one notification at a time (per lane)."""

    ledger: Ledger
    dedup: Dedup
    route: Route
    rate_limit: RateLimit
    thread: Thread
    send: Send
    record: Record
    durable: Durable = _nothing

    async def __call__(self, note: Notification, token: Any = None) -> str:
        """Deliver one notification; what became of it (for logs and tests). "held": a line
        of the next digest, whose ``token`` is not to be acknowledged until that is sent."""
        seen_before = self.ledger.get(note.id) is not None
        if self.dedup(note) is None:
            return "duplicate"
        notifier = await self.route(note)
        if notifier is None:
            return "failed"
        if self.rate_limit(note, token) is None:
            return "held"
        note = self.thread(note)
        rec = await self.send(notifier, note, seen_before=seen_before)
        if rec is None:
            return "failed"
        self.ledger[note.id] = {"state": "delivered", "external_id": rec.external_id}
        # Only this (channel, target)'s lane writes its thread key: still unset here means
        # this was the first message, which later ones thread under.
        if rec.external_id and not self.ledger.get(thread_key(note)):
            self.ledger[thread_key(note)] = {"external_id": rec.external_id}
        await self.record(note, "delivered", rec, rec.detail)
        await self.durable()
        return "delivered"


@dataclass
class DigestRound:
    """Sends each held target's digest once its window has room: one message listing every
    line held for it (however many: the window counts the digest as one send). Then the
    lines are marked "digested" in the ledger and their tokens acknowledged.

    Exactly once, like :class:`Send`: the digest's intent is in the ledger before it is sent
    and its outcome after; a digest of the same lines found "pending" after a restart is
    looked up in the channel first. A failed digest keeps its lines for the next round.
    Every write happens ``within`` a held line's token: they all share the target's partition.
    """

    digests: Digests
    window: RateWindow
    notifiers: Mapping[str, Notifier]
    ledger: Ledger
    attempt: Attempt
    record: Record
    within: Within = _anywhere
    ack: Ack = _no_ack
    durable: Durable = _nothing
    #: The language of a target's digest lines (notifiers.registry.lang_for); English if unset.
    langs: Callable[[Target], Lang] = _english

    async def __call__(self) -> int:
        """One round over the held targets; how many digests went out."""
        sent = 0
        for key in self.digests.waiting():
            if not self.digests.held.get(key) or key in self.digests.sending:
                continue  # forgotten by a rebalance while an earlier digest was sent
            token = self.digests.token_of(self.digests.held[key][0])
            with self.within(token):
                if not self.window.take(key):
                    continue
            if await self._send(key, self.digests.start(key), token):
                sent += 1
        return sent

    async def _send(self, key: Target, lines: list[Notification], token: Any) -> bool:
        notifier = self.notifiers[key[0]]  # held only after Route found it
        note = Digests.digest_of(key, lines, self.langs(key))
        before = self.ledger.get(note.id)
        if not (before and before.get("state") == "delivered"):
            rec = await notifier.find_sent(note) if before else None
            if rec is None:
                with self.within(token):
                    self.ledger[note.id] = {"state": "pending"}
                await self.durable()  # the intent must be durable before the side effect
                result = await self.attempt(notifier, note)
                if isinstance(result, DeliveryError):
                    self.digests.put_back(key, lines)
                    log.error("digest to %s %s failed: %s", *key, result.reason)
                    return False
                rec = result
            with self.within(token):
                self.ledger[note.id] = {"state": "delivered", "external_id": rec.external_id}
            await self.record(note, "delivered", rec, f"digest of {len(lines)}")
        done = [(line, t) for line, t in self.digests.sent(key, lines) if t is not None]
        for line, t in done:
            with self.within(t):  # the line's own ledger partition (the target's)
                self.ledger[line.id] = {"state": "digested"}
        await self.durable()  # "digested" before the acks let the offsets be committed
        for _line, t in done:
            await self.ack(t)
        return True


def build_chain(*, ledger: Ledger, notifiers: Mapping[str, Notifier], metrics: Metrics,
                receipts: Receipts, fallback_targets: Sequence[TargetSpec],
                schedules: Mapping[str, Schedule], window: RateWindow, digests: Digests,
                durable: Durable = _nothing, within: Within = _anywhere, ack: Ack = _no_ack,
                policy: RetryPolicy | None = None,
                langs: Callable[[Target], Lang] | None = None) -> tuple[Chain, DigestRound]:
    """The stages wired together: the chain, and the round that sends its digests."""
    attempt = Attempt(metrics=metrics, policy=policy or RetryPolicy())
    record = Record(metrics=metrics, receipts=receipts)
    fallback = Fallback(targets=fallback_targets, schedules=schedules, notifiers=notifiers,
                        attempt=attempt, record=record)
    chain = Chain(
        ledger=ledger, durable=durable,
        dedup=Dedup(ledger=ledger, metrics=metrics),
        route=Route(notifiers=notifiers, ledger=ledger, record=record, fallback=fallback),
        rate_limit=RateLimit(window=window, digests=digests, ledger=ledger, metrics=metrics),
        thread=Thread(ledger=ledger),
        send=Send(ledger=ledger, attempt=attempt, record=record, fallback=fallback,
                  durable=durable),
        record=record)
    rounds = DigestRound(digests=digests, window=window, notifiers=notifiers, ledger=ledger,
                         attempt=attempt, record=record, within=within, ack=ack,
                         durable=durable, langs=langs or _english)
    return chain, rounds
