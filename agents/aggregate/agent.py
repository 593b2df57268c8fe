"""aggregate: enriched mentions (keyed by watch) → per-watch bucket snapshots on escucha.aggregates.

Each valid mention is folded into its watch's event-time bucket (agents/aggregate/builder.py);
changed buckets are sent as whole snapshots, keyed by watch id, at most once a second each. Readers
(streams.runtime.views.AggregateView: the console, reports) keep the latest snapshot per bucket.

Restarts and rebalances: a bucket this worker does not hold in memory is seeded from the
latest stored snapshot (the aggregates view) before its first new mention, and each snapshot
carries the last offset it absorbed per partition, so re-delivered mentions are skipped
instead of counted twice.

The loss window, honestly: Faust commits consumed offsets on its own clock
(``kafka.commit_interval_s``), independently of the snapshot flush. A kill -9 after an offset
commit and before the next flush loses the mentions absorbed since the last flush, up to ~1 s
of counts in the buckets they fell in; they are not re-delivered. The opposite order only
re-delivers, which the offsets make harmless. A clean stop (SIGINT/SIGTERM) and a rebalance
flush first and lose nothing. After a rebalance the new owner seeds from what its view has
read; the old owner flushed while giving the partition up, normally seconds before.
"""

from __future__ import annotations

import logging
from typing import Any

from agents.aggregate.builder import BucketBuilder
from agents.aggregate.stage import AggregateStage
from streams.core import topics
from streams.core.records import EnrichedMention
from streams.runtime.dlq import valid_events
from streams.runtime.pipeline import Pipeline

__all__ = ["FLUSH_INTERVAL_S", "install"]

log = logging.getLogger(__name__)
FLUSH_INTERVAL_S = 1.0


def install(pipeline: Pipeline) -> None:
    app, settings, metrics = pipeline.app, pipeline.settings, pipeline.metrics
    cfg = settings.aggregates
    view = pipeline.views.aggregates
    builder = BucketBuilder(
        size_s=cfg.bucket_s, top_mentions=cfg.top_mentions, top_terms=cfg.top_terms,
        top_authors=cfg.top_authors,
        watch_terms={w.id: w.all_terms for w in settings.watches})
    stage = AggregateStage(builder=builder, watches={w.id for w in settings.watches},
                           stored=view.get)
    enriched = pipeline.topic(topics.ENRICHED)
    out = pipeline.topic(topics.AGGREGATES)

    @app.task
    async def aggregate_view_task() -> None:
        await view.run()

    async def send(key: bytes, value: bytes) -> None:
        await out.send(key=key, value=value)

    async def flush() -> None:
        await stage.flush(send)

    # One snapshot per mention would multiply the topic's volume by the mentions per bucket
    # (every snapshot is the whole bucket): once a second per changed bucket bounds it by the
    # number of active buckets instead, at the price of the loss window described above.
    @app.timer(interval=FLUSH_INTERVAL_S, name="escucha.aggregate-flush")
    async def flush_timer() -> None:
        await flush()

    @app.on_partitions_revoked.connect  # type: ignore[misc, arg-type]
    async def _revoked(app: Any, revoked: Any, **kwargs: Any) -> None:
        await flush()  # the next owner seeds from what is stored

    @app.on_partitions_assigned.connect  # type: ignore[misc, arg-type]
    async def _assigned(app: Any, assigned: Any, **kwargs: Any) -> None:
        # Buckets of partitions now owned elsewhere would go stale here; those still owned
        # were counted by nobody else meanwhile and stay.
        stage.retain({f"{tp.topic}:{tp.partition}" for tp in assigned})

    @app.on_before_shutdown.connect  # type: ignore[misc, arg-type]
    async def _shutdown(app: Any, **kwargs: Any) -> None:
        await flush()  # Faust flushes the producer right after this signal

    @app.agent(enriched, name="escucha.aggregate")
    async def aggregate(stream: Any) -> None:
        # Counts continue from the stored snapshots (AggregateStage.add): wait until they
        # are read.
        await view.ready.wait()
        # detect dead-letters bad enriched records; reporting them here too would double them.
        async for em, msg in valid_events(stream, EnrichedMention, dlq=None, metrics=metrics,
                                          stage="aggregate"):
            stage.add(em, position=f"{msg.topic}:{msg.partition}", offset=msg.offset)
