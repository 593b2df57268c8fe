"""deliver: notifications → dedup → retry → record, for every channel.

Exactly-once delivery on an at-least-once stream: before a notifier is called, an intent
("pending") is written to the deliveries table and flushed to its changelog; after, the
outcome. A re-delivered notification whose outcome is recorded is skipped; one left
"pending" by a killed worker is first looked up in the channel (``find_sent``).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from notifiers.base import Notifier, Receipt
from notifiers.console import ConsoleNotifier
from notifiers.errors import DeliveryError
from notifiers.retry import RetryPolicy, send_with_retry
from notifiers.slack import SlackNotifier
from streams import topics
from streams.app import Pipeline
from streams.dlq import valid_records
from streams.records import Delivery, Notification, dumps
from streams.settings import Settings

__all__ = ["build_notifiers", "install"]

log = logging.getLogger(__name__)


def build_notifiers(settings: Settings) -> dict[str, Notifier]:
    names = {w.id: w.name for w in settings.watches}
    out: dict[str, Notifier] = {}
    if settings.notifiers.console.enabled:
        out["console"] = ConsoleNotifier(watch_names=names)
    slack = settings.notifiers.slack
    if slack.token is not None:
        out["slack"] = SlackNotifier(
            token=slack.token.get_secret_value(), channel=slack.channel,
            base_url=slack.base_url, watch_names=names,
        )
    return out


def install(pipeline: Pipeline, *, policy: RetryPolicy | None = None) -> None:
    app, settings, metrics = pipeline.app, pipeline.settings, pipeline.metrics
    notifiers = build_notifiers(settings)
    policy = policy or RetryPolicy()
    notifications = pipeline.topic(topics.NOTIFICATIONS)
    deliveries = pipeline.topic(topics.DELIVERIES)
    dlq = pipeline.topic(topics.DLQ)
    # Keyed by notification id, written while handling that notification's event, so it is
    # co-partitioned with the incident it belongs to.
    table = app.Table(
        "escucha.deliveries", default=None, partitions=settings.kafka.partitions,
    )

    async def record(note: Notification, outcome: str, receipt: Receipt | None,
                     detail: str) -> None:
        table[note.id] = {"state": outcome, "external_id": receipt.external_id if receipt
                          else None}
        metrics.notifications.labels(note.channel, outcome).inc()
        receipt_record = Delivery(
            notification_id=note.id, incident_id=note.incident.id, channel=note.channel,
            target=note.target, outcome=outcome,  # type: ignore[arg-type]
            detail=detail, external_id=receipt.external_id if receipt else None,
            at=datetime.now(UTC),
        )
        await deliveries.send(key=note.incident.id.encode(), value=dumps(receipt_record))

    @app.agent(notifications, name="escucha.deliver")
    async def deliver(stream: Any) -> None:
        async for note in valid_records(stream, Notification, dlq=dlq, metrics=metrics,
                                   stage="deliver"):
            await handle(note)

    async def handle(note: Notification) -> None:
        previous = table.get(note.id)
        if previous and previous.get("state") in ("delivered", "failed"):
            metrics.notifications.labels(note.channel, "duplicate").inc()
            log.info("notification %s already %s; skipped", note.id, previous["state"])
            return
        notifier = notifiers.get(note.channel)
        if notifier is None:
            await record(note, "failed", None, f"channel {note.channel!r} not configured")
            return
        thread_key = f"message:{note.incident.id}:{note.channel}:{note.target}"
        first = table.get(thread_key)
        if first and first.get("external_id"):
            note = note.model_copy(update={"update_of": first["external_id"]})
        receipt = await notifier.find_sent(note) if previous else None
        if receipt is not None:
            log.info("notification %s was sent before a restart; not resent", note.id)
        else:
            table[note.id] = {"state": "pending"}
            await app.producer.flush()  # the intent must be durable before the side effect
            started = time.monotonic()
            try:
                receipt = await send_with_retry(
                    notifier, note, policy=policy,
                    on_retry=lambda _e: metrics.notifications.labels(
                        note.channel, "retried").inc(),
                )
            except DeliveryError as exc:
                log.error("notification %s to %s failed: %s", note.id, note.channel, exc.reason)
                await record(note, "failed", None, exc.reason)
                return
            metrics.delivery_seconds.labels(note.channel).observe(time.monotonic() - started)
        await record(note, "delivered", receipt, receipt.detail)
        if receipt.external_id and not first:
            table[thread_key] = {"external_id": receipt.external_id}
        await app.producer.flush()
