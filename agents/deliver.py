"""deliver: notifications → dedup → rate limit → retry → record (→ fallback), every channel.

Exactly-once delivery on an at-least-once stream: before a notifier is called, an intent
("pending") is written to the deliveries table and flushed to its changelog; after, the
outcome. A re-delivered notification whose outcome is recorded is skipped; one left
"pending" by a killed worker is first looked up in the channel (``find_sent``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from faust.streams import _current_event

from agents.oncall import resolve_targets
from notifiers.base import Notifier, Receipt
from notifiers.errors import DeliveryError
from notifiers.retry import RetryPolicy, send_with_retry
from streams import topics
from streams.app import Pipeline
from streams.dlq import dead_letter
from streams.records import Delivery, Notification, RecordError, dumps, parse, watch_of
from streams.settings import Settings
from streams.stopping import finish_in_hand

__all__ = ["TokenBucket", "build_notifiers", "install"]

log = logging.getLogger(__name__)
#: Kinds that change an existing message; never held back by the rate limit.
_STATE_KINDS = frozenset({"acknowledge", "resolve", "update"})
_LANE_DEPTH = 1000  # notifications waiting per (channel, target) before the stream waits


def build_notifiers(settings: Settings, *, links: Any = None) -> dict[str, Notifier]:
    """One notifier per configured channel."""
    from notifiers.console import ConsoleNotifier
    from notifiers.slack import SlackNotifier

    names = {w.id: w.name for w in settings.watches}
    n = settings.notifiers
    out: dict[str, Notifier] = {}
    if n.console.enabled:
        out["console"] = ConsoleNotifier(watch_names=names)
    if n.slack.token is not None:
        out["slack"] = SlackNotifier(token=n.slack.token.get_secret_value(),
                                     channel=n.slack.channel, base_url=n.slack.base_url,
                                     watch_names=names)
    if n.email is not None:
        from notifiers.email import EmailNotifier

        out["email"] = EmailNotifier(settings=n.email, links=links, watch_names=names)
    if n.push is not None:
        from notifiers.push import PushNotifier

        out["push"] = PushNotifier(settings=n.push, links=links, watch_names=names)
    if n.pagerduty is not None:
        from notifiers.pagerduty import PagerDutyNotifier

        out["pagerduty"] = PagerDutyNotifier(settings=n.pagerduty, watch_names=names)
    if n.webhook is not None:
        from notifiers.webhook import WebhookNotifier

        out["webhook"] = WebhookNotifier(settings=n.webhook)
    return out


class TokenBucket:
    """``per_minute`` sends per target, refilled continuously; bursts up to the same number."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._clock = clock
        self._state: dict[tuple[str, str], tuple[float, float]] = {}

    def take(self, key: tuple[str, str]) -> bool:
        now = self._clock()
        tokens, last = self._state.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens < 1:
            self._state[key] = (tokens, now)
            return False
        self._state[key] = (tokens - 1, now)
        return True


def install(pipeline: Pipeline, *, policy: RetryPolicy | None = None,
            links: Any = None) -> None:
    app, settings, metrics = pipeline.app, pipeline.settings, pipeline.metrics
    notifiers = build_notifiers(settings, links=links)
    policy = policy or RetryPolicy()
    bucket = TokenBucket(settings.escalation.rate_limit_per_min)
    # Held back by the rate limit, per target, until the next digest. In memory: a crash
    # loses these digest lines (each was already marked "digested"), never a first alert.
    digests: dict[tuple[str, str], list[Notification]] = {}
    notifications = pipeline.topic(topics.NOTIFICATIONS)
    deliveries = pipeline.topic(topics.DELIVERIES)
    dlq = pipeline.topic(topics.DLQ)
    # Keyed by notification id, written while handling that notification's event, so it is
    # co-partitioned with the incident it belongs to.
    table = app.Table("escucha.deliveries", default=None, partitions=settings.kafka.partitions)

    async def receipt(note: Notification, outcome: str, rec: Receipt | None,
                      detail: str) -> None:
        metrics.notifications.labels(note.channel, outcome).inc()
        record = Delivery(
            notification_id=note.id, incident_id=note.incident.id, channel=note.channel,
            target=note.target, outcome=outcome,  # type: ignore[arg-type]
            detail=detail, external_id=rec.external_id if rec else None, at=datetime.now(UTC))
        # Keyed by watch: receipts go back to the escalate agent for the incident timeline.
        await deliveries.send(key=watch_of(note.incident.id).encode(), value=dumps(record))

    async def attempt(notifier: Notifier, note: Notification) -> Receipt | DeliveryError:
        started = time.monotonic()
        try:
            rec = await send_with_retry(
                notifier, note, policy=policy,
                on_retry=lambda _e: metrics.notifications.labels(note.channel, "retried").inc())
        except DeliveryError as exc:
            return exc
        metrics.delivery_seconds.labels(note.channel).observe(time.monotonic() - started)
        posted = note.incident.trigger_posted_at
        if note.kind == "trigger" and posted is not None:
            metrics.latency.labels("post_to_delivered").observe(
                max(0.0, time.time() - posted.timestamp()))
        return rec

    async def fallback(note: Notification, why: str) -> None:
        """A permanent failure goes to the fallback targets, so the alert is not lost."""
        if note.kind in _STATE_KINDS:
            return  # an ack/resolve notice for a message that never arrived helps nobody
        for spec in settings.escalation.fallback:
            for channel, target in resolve_targets(spec, {s.id: s for s in
                                                          settings.escalation.schedules},
                                                   datetime.now(UTC)):
                notifier = notifiers.get(channel)
                if notifier is None or (channel, target) == (note.channel, note.target):
                    continue
                copy = note.model_copy(update={
                    "id": f"{note.id}:fallback:{channel}:{target}", "channel": channel,
                    "target": target, "update_of": None})
                log.warning("falling back to %s %s for %s (%s)", channel, target, note.id, why)
                result = await attempt(notifier, copy)
                if isinstance(result, DeliveryError):
                    await receipt(copy, "failed", None, result.reason)
                else:
                    await receipt(copy, "delivered", result, f"fallback: {result.detail}")

    async def handle(note: Notification) -> None:
        previous = table.get(note.id)
        if previous and previous.get("state") in ("delivered", "failed", "digested"):
            metrics.notifications.labels(note.channel, "duplicate").inc()
            log.info("notification %s already %s; skipped", note.id, previous["state"])
            return
        notifier = notifiers.get(note.channel)
        if notifier is None:
            table[note.id] = {"state": "failed"}
            await receipt(note, "failed", None, f"channel {note.channel!r} not configured")
            await fallback(note, "channel not configured")
            return
        key = (note.channel, note.target)
        if note.kind not in _STATE_KINDS and not bucket.take(key):
            table[note.id] = {"state": "digested"}
            digests.setdefault(key, []).append(note)
            metrics.notifications.labels(note.channel, "digested").inc()
            return
        thread_key = f"message:{note.incident.id}:{note.channel}:{note.target}"
        first = table.get(thread_key)
        if first and first.get("external_id"):
            note = note.model_copy(update={"update_of": first["external_id"]})
        rec = await notifier.find_sent(note) if previous else None
        if rec is not None:
            log.info("notification %s was sent before a restart; not resent", note.id)
        else:
            table[note.id] = {"state": "pending"}
            await app.producer.flush()  # the intent must be durable before the side effect
            result = await attempt(notifier, note)
            if isinstance(result, DeliveryError):
                log.error("notification %s to %s failed: %s", note.id, note.channel,
                          result.reason)
                table[note.id] = {"state": "failed"}
                await receipt(note, "failed", None, result.reason)
                await fallback(note, result.reason)
                await app.producer.flush()
                return
            rec = result
        table[note.id] = {"state": "delivered", "external_id": rec.external_id}
        if rec.external_id and not first:
            table[thread_key] = {"external_id": rec.external_id}
        await receipt(note, "delivered", rec, rec.detail)
        await app.producer.flush()

    async def lane(stream: Any, queue: asyncio.Queue[tuple[Any, Notification]]) -> None:
        """Deliver one (channel, target)'s notifications in order, acking each when done."""
        while True:
            event, note = await queue.get()
            # Table writes go to the partition of the event being handled; outside the
            # stream's own loop Faust only knows it through this context variable.
            token = _current_event.set(weakref.ref(event))
            try:
                # A stop lets the delivery in hand end first (streams/stopping.py); one still
                # retrying after that is cut, and not acked below, so it is not lost.
                await finish_in_hand(handle(note), what=f"delivery {note.id}")
            except Exception:  # a bug in one delivery must not stop the lane
                log.exception("delivering %s failed unexpectedly", note.id)
            finally:
                _current_event.reset(token)
            # Faust commits only up to the lowest offset not yet acked, so a crash or a stop
            # before this line re-delivers the notification (and the table dedups it).
            await stream.ack(event)

    @app.agent(notifications, name="escucha.deliver")
    async def deliver(stream: Any) -> None:
        # One lane per (channel, target): an SMTP relay that is down for minutes must not
        # hold back the PagerDuty page or the Slack post of the same incident, which share
        # its partition. Within a lane the order holds (a Slack update after its post).
        lanes: dict[tuple[str, str], asyncio.Queue[tuple[Any, Notification]]] = {}
        tasks: list[asyncio.Task[None]] = []
        manual = stream.noack()
        try:
            async for event in manual.events():
                try:
                    note = parse(Notification, event.value)
                except RecordError as exc:
                    msg = event.message
                    await dead_letter(dlq, metrics, stage="deliver", reason=str(exc),
                                      payload=event.value,
                                      origin=f"{msg.topic}[{msg.partition}]@{msg.offset}")
                    await manual.ack(event)
                    continue
                key = (note.channel, note.target)
                if key not in lanes:
                    lanes[key] = asyncio.Queue(maxsize=_LANE_DEPTH)
                    tasks.append(asyncio.create_task(lane(manual, lanes[key])))
                await lanes[key].put((event, note))  # a full lane slows the stream down
        finally:
            for task in tasks:
                task.cancel()
            # Wait for the lanes to finish what they hold, while the producer still runs.
            await asyncio.gather(*tasks, return_exceptions=True)

    @app.timer(interval=10.0, name="escucha.digests")
    async def send_digests() -> None:
        for key, held in list(digests.items()):
            if not held or not bucket.take(key):
                continue
            digests[key] = []
            last = held[-1]
            lines = [f"{n.incident.severity}: {n.incident.watch_id} — {n.kind} "
                     f"(level {n.level}) {n.incident.summary[:160]}" for n in held]
            note = last.model_copy(update={
                "id": f"digest:{key[0]}:{key[1]}:{held[0].id}", "kind": "digest",
                "digest": lines, "update_of": None})
            result = await attempt(notifiers[key[0]], note)
            if isinstance(result, DeliveryError):
                digests[key] = held + digests.get(key, [])  # keep them for the next round
                log.error("digest to %s %s failed: %s", *key, result.reason)
            else:
                await receipt(note, "delivered", result, f"digest of {len(held)}")

    @app.on_before_shutdown.connect  # type: ignore[misc, arg-type]
    async def close_notifiers(app: Any, **kwargs: Any) -> None:
        for notifier in notifiers.values():
            await notifier.close()
