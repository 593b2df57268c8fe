"""deliver: notifications → the chain of delivery stages (agents/deliver/stages.py), per lane.

The agent only runs the lanes, the digest timer and the acks: one lane per (channel, target),
so an SMTP relay that is down for minutes does not hold back the PagerDuty page or the Slack
post of another target that shares its partition; within a lane the order holds (a Slack
update after its post). A notification is acked only when its lane has finished with it, and
a line held for a digest only when the digest listing it is sent.

Notifications are keyed by target, so this worker sees every notification to the targets of
its partitions; the rate limit's window (``escucha.rate``) and the delivery ledger
(``escucha.deliveries``) are written only while handling an event of the target they concern,
so both live in the target's changelog partition and move with it (agents/deliver/limits.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from agents.deliver.limits import Digests, RateWindow
from agents.deliver.stages import build_chain
from notifiers.base import Notifier
from notifiers.registry import build_notifiers as build_registry_notifiers
from notifiers.registry import lang_for
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


def install(pipeline: Pipeline, *, policy: RetryPolicy | None = None, links: Any = None,
            clock: Callable[[], float] = time.time, digest_every_s: float = 10.0) -> None:
    """``clock``: the rate limit's wall clock; ``digest_every_s``: how often held digests are
    tried (a digest waits at most that long once its target's window has room)."""
    app, settings, metrics = pipeline.app, pipeline.settings, pipeline.metrics
    notifiers = build_notifiers(settings, links=links)
    notifications = pipeline.topic(topics.NOTIFICATIONS)
    deliveries = pipeline.topic(topics.DELIVERIES)
    dlq = pipeline.topic(topics.DLQ)
    # Both tables are written only while handling one of the target's events (the lanes and
    # the digests use ``handling``), so each key stays in one changelog partition: the
    # target's. The ledger is keyed by notification id (and thread keys), the window by
    # "channel:target".
    ledger = app.Table("escucha.deliveries", default=None,
                       partitions=settings.kafka.partitions)
    windows = app.Table("escucha.rate", default=None, partitions=settings.kafka.partitions)
    window = RateWindow(settings.escalation.rate_limit_per_min, state=windows, clock=clock)
    digests = Digests()
    stream_of: list[Any] = []  # the agent's stream, for the digests' acks

    async def receipt(record: Delivery) -> None:
        # Keyed by watch: receipts go back to the escalate agent for the incident timeline.
        await deliveries.send(key=watch_of(record.incident_id).encode(), value=dumps(record))

    async def durable() -> None:
        await app.producer.flush()

    async def ack(event: Any) -> None:
        if stream_of:
            await stream_of[0].ack(event)

    chain, digest_round = build_chain(
        ledger=ledger, notifiers=notifiers, metrics=metrics, receipts=receipt,
        fallback_targets=settings.escalation.fallback,
        schedules={s.id: s for s in settings.escalation.schedules},
        window=window, digests=digests, durable=durable, within=handling, ack=ack,
        policy=policy, langs=lambda key: lang_for(settings.notifiers, *key))

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

    @app.timer(interval=digest_every_s, name="escucha.digests")
    async def send_digests() -> None:
        try:
            await digest_round()
        except Exception:  # a bug in one round must not stop the next ones
            log.exception("sending digests failed unexpectedly")

    @app.on_partitions_assigned.connect  # type: ignore[misc, arg-type]
    async def _forget_held(app: Any, assigned: Any, **kwargs: Any) -> None:
        # Every partition is read again from its committed offset: held lines come back.
        digests.forget()

    @app.on_before_shutdown.connect  # type: ignore[misc, arg-type]
    async def close_notifiers(app: Any, **kwargs: Any) -> None:
        for notifier in notifiers.values():
            await notifier.close()
