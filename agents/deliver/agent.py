"""deliver: notifications → the chain of delivery stages (agents/deliver/stages.py), per lane.

The agent only runs the lanes and the acks: one lane per (channel, target), so an SMTP relay
that is down for minutes does not hold back the PagerDuty page or the Slack post of the same
incident, which share its partition; within a lane the order holds (a Slack update after its
post). A notification is acked only when its lane has finished with it, and a line held for a
digest only when the digest listing it is sent (agents/deliver/stages.py: Digests).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from agents.deliver.stages import Digests, TokenBucket, build_chain
from notifiers.base import Notifier
from notifiers.errors import DeliveryError
from notifiers.registry import build_notifiers as build_registry_notifiers
from notifiers.retry import RetryPolicy
from streams.config.settings import Settings
from streams.core import topics
from streams.core.records import Delivery, Notification, RecordError, dumps, parse, watch_of
from streams.runtime.dlq import dead_letter
from streams.runtime.faust import handling
from streams.runtime.pipeline import Pipeline
from streams.runtime.stopping import finish_in_hand

__all__ = ["build_notifiers", "install"]

log = logging.getLogger(__name__)
_LANE_DEPTH = 1000  # notifications waiting per (channel, target) before the stream waits


def build_notifiers(settings: Settings, *, links: Any = None) -> dict[str, Notifier]:
    """One notifier per configured channel (notifiers/registry.py)."""
    return build_registry_notifiers(settings.notifiers, links=links,
                                    watch_names={w.id: w.name for w in settings.watches})


def install(pipeline: Pipeline, *, policy: RetryPolicy | None = None,
            links: Any = None) -> None:
    app, settings, metrics = pipeline.app, pipeline.settings, pipeline.metrics
    notifiers = build_notifiers(settings, links=links)
    bucket = TokenBucket(settings.escalation.rate_limit_per_min)
    digests = Digests()
    notifications = pipeline.topic(topics.NOTIFICATIONS)
    deliveries = pipeline.topic(topics.DELIVERIES)
    dlq = pipeline.topic(topics.DLQ)
    # Keyed by notification id, written while handling that notification's event, so it is
    # co-partitioned with the incident it belongs to.
    ledger = app.Table("escucha.deliveries", default=None,
                       partitions=settings.kafka.partitions)

    async def receipt(record: Delivery) -> None:
        # Keyed by watch: receipts go back to the escalate agent for the incident timeline.
        await deliveries.send(key=watch_of(record.incident_id).encode(), value=dumps(record))

    async def durable() -> None:
        await app.producer.flush()

    chain, attempt, record = build_chain(
        ledger=ledger, notifiers=notifiers, metrics=metrics, receipts=receipt,
        fallback_targets=settings.escalation.fallback,
        schedules={s.id: s for s in settings.escalation.schedules},
        bucket=bucket, digests=digests, durable=durable, policy=policy)

    stream_of: list[Any] = []  # the agent's stream, for the digests' acks

    async def lane(stream: Any, queue: asyncio.Queue[tuple[Any, Notification]]) -> None:
        """Deliver one (channel, target)'s notifications in order, acking each when done."""
        while True:
            event, note = await queue.get()
            outcome = "failed"
            with handling(event):  # table writes go to this event's partition
                try:
                    # A stop lets the delivery in hand end first (streams/runtime/stopping.py);
                    # one still retrying after that is cut, and not acked below, so it is not
                    # lost.
                    outcome = await finish_in_hand(chain(note, token=event),
                                                   what=f"delivery {note.id}")
                except Exception:  # a bug in one delivery must not stop the lane
                    log.exception("delivering %s failed unexpectedly", note.id)
            if outcome == "held":
                continue  # acked when its digest is sent (send_digests below)
            # Faust commits only up to the lowest offset not yet acked, so a crash or a stop
            # before this line re-delivers the notification (and the ledger dedups it).
            await stream.ack(event)

    @app.agent(notifications, name="escucha.deliver")
    async def deliver(stream: Any) -> None:
        lanes: dict[tuple[str, str], asyncio.Queue[tuple[Any, Notification]]] = {}
        tasks: list[asyncio.Task[None]] = []
        manual = stream.noack()
        stream_of[:] = [manual]
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
        for key, held in digests.take(bucket):
            note = Digests.digest_of(key, held)
            result = await attempt(notifiers[key[0]], note)
            if isinstance(result, DeliveryError):
                digests.put_back(key, held)  # keep them for the next round
                log.error("digest to %s %s failed: %s", *key, result.reason)
            else:
                await record(note, "delivered", result, f"digest of {len(held)}")
                for line, event in digests.sent(held):
                    if event is None or not stream_of:
                        continue
                    with handling(event):  # the line's own ledger partition
                        ledger[line.id] = {"state": "digested"}
                    await stream_of[0].ack(event)

    @app.on_partitions_assigned.connect  # type: ignore[misc, arg-type]
    async def _forget_held(app: Any, assigned: Any, **kwargs: Any) -> None:
        # Every partition is read again from its committed offset: held lines come back.
        digests.forget()

    @app.on_before_shutdown.connect  # type: ignore[misc, arg-type]
    async def close_notifiers(app: Any, **kwargs: Any) -> None:
        for notifier in notifiers.values():
            await notifier.close()
