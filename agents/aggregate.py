"""aggregate: enriched mentions (keyed by watch) → per-watch bucket snapshots on escucha.aggregates.

Each valid mention is folded into its watch's event-time bucket (agents/buckets.py); changed
buckets are sent as whole snapshots, keyed by watch id, at most once a second each. Readers
(streams.views.AggregateView: the console, reports) keep the latest snapshot per bucket.

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

from agents.buckets import BucketBuilder, BucketKey, bucket_id
from streams import topics
from streams.app import Pipeline
from streams.dlq import valid_events
from streams.records import EnrichedMention
from streams.views import AggregateView

__all__ = ["FLUSH_INTERVAL_S", "install"]

log = logging.getLogger(__name__)
FLUSH_INTERVAL_S = 1.0


def install(pipeline: Pipeline) -> None:
    app, settings, metrics = pipeline.app, pipeline.settings, pipeline.metrics
    cfg = settings.aggregates
    view = pipeline.views.get("aggregates")
    if not isinstance(view, AggregateView):  # build_pipeline creates it; a test may not
        view = AggregateView(bootstrap=pipeline.bootstrap, topic=topics.AGGREGATES.name)
        pipeline.views["aggregates"] = view
    builder = BucketBuilder(
        size_s=cfg.bucket_s, top_mentions=cfg.top_mentions, top_terms=cfg.top_terms,
        top_authors=cfg.top_authors,
        watch_terms={w.id: w.all_terms for w in settings.watches})
    watches = {w.id for w in settings.watches}
    enriched = pipeline.topic(topics.ENRICHED)
    out = pipeline.topic(topics.AGGREGATES)

    @app.task
    async def aggregate_view_task() -> None:
        await view.run()

    async def flush() -> None:
        keys: list[BucketKey] = builder.dirty()
        if not keys:
            return
        snapshots = [builder.snapshot(k) for k in keys]
        # Clean before sending: a mention absorbed while a send is awaited marks its bucket
        # dirty again and goes out with the next flush.
        builder.mark_clean(keys)
        for i, snap in enumerate(snapshots):
            try:
                await out.send(key=snap.watch_id.encode(), value=snap.model_dump_json().encode())
            except Exception as exc:  # broker gone: keep the counts, try again next second
                builder.mark_dirty(keys[i:])
                log.warning("could not store %d bucket snapshots (%s); retrying",
                            len(keys) - i, exc)
                return
        builder.evict()

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
        builder.retain({f"{tp.topic}:{tp.partition}" for tp in assigned})

    @app.on_before_shutdown.connect  # type: ignore[misc, arg-type]
    async def _shutdown(app: Any, **kwargs: Any) -> None:
        await flush()  # Faust flushes the producer right after this signal

    @app.agent(enriched, name="escucha.aggregate")
    async def aggregate(stream: Any) -> None:
        # Counts continue from the stored snapshots: without them a restart would start every
        # open bucket from zero and overwrite the stored counts with the smaller ones.
        await view.ready.wait()
        # detect dead-letters bad enriched records; reporting them here too would double them.
        async for em, msg in valid_events(stream, EnrichedMention, dlq=None, metrics=metrics,
                                          stage="aggregate"):
            if em.watch_id not in watches:
                continue  # a watch removed from config since the mention was classified
            key = builder.key_of(em)
            if key not in builder:
                stored = builder.evicted(key) or view.get(bucket_id(*key))
                if stored is not None:
                    builder.seed(stored)
            builder.add(em, position=f"{msg.topic}:{msg.partition}", offset=msg.offset)
