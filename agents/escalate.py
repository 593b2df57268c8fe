"""escalate: signals (keyed by watch) → incidents in a table → level-1 notifications."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from agents.incidents import IncidentBook, Target
from streams import topics
from streams.app import Pipeline
from streams.dlq import valid_records
from streams.records import Incident, Signal, dumps, parse
from streams.settings import Settings

__all__ = ["install", "level1_targets"]

log = logging.getLogger(__name__)


def level1_targets(settings: Settings) -> list[Target]:
    """Who hears first: every channel that is configured (the console needs no account)."""
    targets = []
    if settings.notifiers.console.enabled:
        targets.append(Target("console", "stdout"))
    if settings.notifiers.slack.token is not None:
        targets.append(Target("slack", settings.notifiers.slack.channel))
    return targets


def install(pipeline: Pipeline) -> None:
    app, settings, metrics = pipeline.app, pipeline.settings, pipeline.metrics
    book = IncidentBook(
        resolve_after=timedelta(seconds=settings.detect.resolve_after_s),
        level1=level1_targets(settings),
    )
    signals = pipeline.topic(topics.SIGNALS)
    notifications = pipeline.topic(topics.NOTIFICATIONS)
    dlq = pipeline.topic(topics.DLQ)
    # Keyed by fingerprint (watch:detector); signals are keyed by watch, so co-partitioned.
    incidents = app.Table(
        "escucha.incidents", default=None, partitions=settings.kafka.partitions,
    )

    @app.agent(signals, name="escucha.escalate")
    async def escalate(stream: Any) -> None:
        async for signal in valid_records(stream, Signal, dlq=dlq, metrics=metrics,
                                   stage="escalate"):
            fingerprint = book.fingerprint(signal)
            stored = incidents.get(fingerprint)
            current = parse(Incident, stored) if stored else None
            decision = book.on_signal(current, signal)
            if decision is None:
                continue
            incidents[fingerprint] = decision.incident.model_dump(mode="json")
            if decision.opened:
                metrics.incidents.labels(decision.incident.severity).inc()
                log.info("incident %s opened for %s", decision.incident.id, signal.watch_id)
            for note in decision.notifications:
                await notifications.send(key=note.incident.id.encode(), value=dumps(note))
