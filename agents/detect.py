"""detect: enriched mentions (keyed by watch) → per-watch state in a table → Signals."""

from __future__ import annotations

import logging
import time
from typing import Any

from agents.detectors import NegativeSpikeDetector
from agents.matching import fold
from streams import topics
from streams.app import Pipeline
from streams.dlq import valid_records
from streams.records import EnrichedMention, dumps

__all__ = ["install"]

log = logging.getLogger(__name__)


def install(pipeline: Pipeline) -> None:
    app, settings, metrics = pipeline.app, pipeline.settings, pipeline.metrics
    detectors = {
        w.id: NegativeSpikeDetector(
            settings.detect, watch_terms=frozenset(fold(t) for t in w.terms)
        )
        for w in settings.watches
    }
    enriched = pipeline.topic(topics.ENRICHED)
    signals = pipeline.topic(topics.SIGNALS)
    dlq = pipeline.topic(topics.DLQ)
    # Keyed by watch id like the source topic, so each partition owns its watches' state.
    state_table = app.Table(
        "escucha.detect-state", default=dict, partitions=settings.kafka.partitions,
    )

    @app.agent(enriched, name="escucha.detect")
    async def detect(stream: Any) -> None:
        async for em in valid_records(stream, EnrichedMention, dlq=dlq, metrics=metrics,
                                   stage="detect"):
            detector = detectors.get(em.watch_id)
            if detector is None:
                continue  # a watch removed from config since the mention was classified
            state = dict(state_table[em.watch_id])
            fired = detector.observe(state, em)
            state_table[em.watch_id] = state
            for signal in fired:
                metrics.signals.labels(signal.detector, signal.severity).inc()
                if signal.trigger_posted_at is not None:
                    metrics.latency.labels("post_to_signal").observe(
                        max(0.0, time.time() - signal.trigger_posted_at.timestamp()))
                log.info("signal %s for %s: %s", signal.id, signal.watch_id, signal.summary)
                await signals.send(key=signal.watch_id.encode(), value=dumps(signal))
