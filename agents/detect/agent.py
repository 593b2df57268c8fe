"""detect: enriched mentions (keyed by watch) → per-watch state in a table → Signals.

Acks are manual: a mention is acknowledged once a saved state counts it (agents/detect/
stage.py), so a kill -9 never commits past counts that died with the worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from agents.detect.detectors import DetectionEngine
from agents.detect.stage import DetectStage
from agents.detect.storybook import StoryBook
from streams.core import topics
from streams.core.records import EnrichedMention, Signal, dumps
from streams.runtime.batches import BatchPolicy, handle_batch
from streams.runtime.dlq import dead_letter, origin_of, parsed_events
from streams.runtime.faust import handling
from streams.runtime.pipeline import Pipeline
from streams.runtime.stopping import finish_in_hand

__all__ = ["install"]

log = logging.getLogger(__name__)
#: How often a watch whose traffic stopped has its state saved (and its mentions acked).
SAVE_TIMER_S = 1.0


async def _nothing(item: Any) -> None:
    return None


def install(pipeline: Pipeline, *, stories: StoryBook | None = None) -> None:
    """``stories``: the worker's story indexes, shared with its mention store."""
    app, settings, metrics = pipeline.app, pipeline.settings, pipeline.metrics
    stories = stories or StoryBook()
    detectors = {
        w.id: DetectionEngine(
            settings.detect_for(w), watch_terms=frozenset(w.all_terms),
            on_duplicate=metrics.duplicates.labels("detect").inc, stories=stories)
        for w in settings.watches
    }
    enriched = pipeline.topic(topics.ENRICHED)
    signals = pipeline.topic(topics.SIGNALS)
    dlq = pipeline.topic(topics.DLQ)
    # Keyed by watch id like the source topic, so each partition owns its watches' state.
    state_table = app.Table(
        "escucha.detect-state", default=dict, partitions=settings.kafka.partitions,
    )
    stage = DetectStage(detectors=detectors, table=state_table,
                        on_trim=lambda watch: metrics.detect_state_trimmed.labels(watch).inc())
    stream_of: list[Any] = []  # the agent's stream, for the acks
    policy = BatchPolicy(attempts=settings.kafka.handler_attempts,
                         backoff_s=settings.kafka.handler_backoff_s)

    async def ack_done() -> None:
        for event in stage.done():
            await stream_of[0].ack(event)

    async def save(*, force: bool) -> None:
        for watch in stage.save_due(force=force):
            waiting = stage.unsaved(watch)
            # The table writes to the changelog partition of the event being handled: the
            # watch's own (the enriched topic and the table are keyed alike).
            with handling(waiting[-1]):
                stage.save(watch)
        if stream_of:
            await ack_done()

    @app.timer(interval=SAVE_TIMER_S, name="escucha.detect-save")
    async def save_timer() -> None:
        await save(force=False)

    async def save_all() -> None:
        await save(force=True)

    # Before the consumer commits on revoke (streams/runtime/faust.py).
    app.before_revoke.append(save_all)

    @app.on_partitions_assigned.connect  # type: ignore[misc, arg-type]
    async def _forget(app: Any, assigned: Any, **kwargs: Any) -> None:
        stage.forget()  # another worker may have moved a watch's state on since

    @app.agent(enriched, name="escucha.detect")
    async def detect(stream: Any) -> None:
        manual = stream.noack()
        stream_of[:] = [manual]

        async def invalid(event: Any, reason: str) -> None:
            await dead_letter(dlq, metrics, stage="detect", reason=reason, payload=event.value,
                              origin=origin_of(event))
            await manual.ack(event)

        async for event, em in parsed_events(manual, EnrichedMention, on_invalid=invalid):
            msg = event.message
            fired = stage.observe(em, topic=msg.topic, partition=msg.partition,
                                  offset=msg.offset, token=event)
            if fired:
                # The state above already counts this mention: a stop must not cut the sends
                # that follow (streams/runtime/stopping.py), or the signal would never go out.
                await finish_in_hand(emit(fired, event), what=f"{len(fired)} signal(s)")
            await ack_done()

    async def emit(fired: list[Signal], event: Any) -> None:
        msg = event.message
        for signal in fired:
            metrics.signals.labels(signal.detector, signal.severity).inc()
            # Wall time since the trigger reached the enriched topic: the issue's "a signal
            # within 10 s of the mention being processed", measured in production.
            if msg.timestamp:
                metrics.latency.labels("enriched_to_signal").observe(
                    max(0.0, time.time() - msg.timestamp))
            if signal.trigger_posted_at is not None:
                metrics.latency.labels("post_to_signal").observe(
                    max(0.0, time.time() - signal.trigger_posted_at.timestamp()))
            log.info("signal %s for %s: %s", signal.id, signal.watch_id, signal.summary)

        async def send(batch: Sequence[Signal]) -> None:
            for signal in batch:
                await signals.send(key=signal.watch_id.encode(), value=dumps(signal))

        async def reject(signal: Signal, reason: str) -> None:
            await dead_letter(dlq, metrics, stage="detect", reason=f"signal not sent: {reason}",
                              payload=dumps(signal), origin=origin_of(event))

        # A send that fails is tried again; one that keeps failing keeps the signal on the
        # dead-letter topic rather than losing it unseen.
        await handle_batch(fired, send, ack=_nothing, reject=reject, stage="detect",
                           policy=policy, on_retry=metrics.handler_retries.labels("detect").inc)
