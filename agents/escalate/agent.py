"""escalate: signals, acks, clock ticks and receipts (all keyed by watch) → incidents.

One agent reads the four topics as one stream, so every change to a watch's incidents is
applied in order by the worker that owns that watch's partition. The escalation clock is a
timer that never writes state itself: it only sends a tick, which comes back through the
stream (a table may only change inside stream iteration, and this keeps one writer).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from faust.exceptions import NotReady

from agents.escalate.incidents import EscalationEngine
from agents.escalate.stage import EscalateStage, effective_policies
from streams.core import topics
from streams.core.records import (
    RecordError,
    watch_of,
)
from streams.runtime.dlq import dead_letter
from streams.runtime.pipeline import Pipeline
from streams.runtime.stopping import finish_in_hand

__all__ = ["install"]

log = logging.getLogger(__name__)


def install(pipeline: Pipeline) -> None:
    app, settings, metrics = pipeline.app, pipeline.settings, pipeline.metrics
    incident_view, silence_view = pipeline.views.incidents, pipeline.views.silences
    engine = EscalationEngine(
        settings=settings.escalation, policies=effective_policies(settings),
        schedules={s.id: s for s in settings.escalation.schedules},
        silences=silence_view.silences, resolved_ids=incident_view.resolved_ids,
        playbooks=settings.playbooks,
        # Unsorted and unfiltered: asked every clock round per inhibited incident.
        incidents=lambda: list(incident_view.items.values()),
    )
    control = app.topic(
        topics.SIGNALS.name, topics.ACKS.name, topics.ESCALATION.name, topics.DELIVERIES.name,
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
        partitions=settings.kafka.partitions,
    )
    ticks = pipeline.topic(topics.ESCALATION)
    dlq = pipeline.topic(topics.DLQ)
    # Both tables are written only while handling events keyed by watch id, so their
    # changelog partitions follow the watch: the same worker owns all of a watch's incidents.
    stage = EscalateStage(
        engine=engine, metrics=metrics,
        incidents=app.Table("escucha.incidents", default=None,
                            partitions=settings.kafka.partitions),
        by_fingerprint=app.Table("escucha.incident-index", default=None,
                                 partitions=settings.kafka.partitions))

    async def handle(topic: str, raw: bytes, now: datetime) -> None:
        for out in stage.handle(topic, raw, now):
            await pipeline.topic(out.topic).send(key=out.key, value=out.value)

    @app.agent(control, name="escucha.escalate")
    async def escalate(stream: Any) -> None:
        async for event in stream.events():
            msg = event.message
            try:
                # A stop must not ack a signal or an ack half-applied: streams/runtime/stopping.py.
                await finish_in_hand(handle(msg.topic, event.value, datetime.now(UTC)),
                                     what=f"{msg.topic}[{msg.partition}]@{msg.offset}")
            except RecordError as exc:
                await dead_letter(dlq, metrics, stage="escalate", reason=str(exc),
                                  payload=event.value,
                                  origin=f"{msg.topic}[{msg.partition}]@{msg.offset}")

    @app.timer(interval=1.0, name="escucha.escalation-clock")
    async def escalation_clock() -> None:
        for incident_id in stage.due(datetime.now(UTC), time.monotonic()):
            try:
                await ticks.send(key=watch_of(incident_id).encode(),
                                 value=incident_id.encode())
            except NotReady:
                stage.untick(incident_id)
                return  # shutting down: the next worker's clock takes over

    @app.task
    async def incident_view_task() -> None:
        await incident_view.run()

    @app.task
    async def silence_view_task() -> None:
        await silence_view.run()
