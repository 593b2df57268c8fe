"""aggregate: enriched mentions (keyed by watch) → per-watch bucket snapshots on escucha.aggregates.

Each valid mention is folded into its watch's event-time bucket (agents/aggregate/builder.py);
changed buckets are sent as whole snapshots, keyed by watch id, at most once a second each. Readers
(streams.runtime.views.AggregateView: the console, reports) keep the latest snapshot per bucket.

Restarts and rebalances: a bucket this worker does not hold in memory is seeded from the
latest stored snapshot (the aggregates view) before its first new mention, and each snapshot
carries the last offset it absorbed per partition and the keys of the mentions it counted,
so re-delivered mentions, and mentions classify wrote again at new offsets, are skipped
instead of counted twice.

No loss window: a mention is acknowledged only once the snapshot that counts it is stored
(agents/aggregate/stage.py), so the consumer never commits past a count that a kill -9 could
take with it; what the dead worker had counted but not stored is read again, and what it had
stored is recognised by its key. A clean stop (SIGINT/SIGTERM) and a rebalance flush first,
and a rebalance commits those acks before the partitions go (streams/runtime/faust.py). After
a rebalance the new owner seeds from what its view has read; the old owner flushed while
giving the partition up, normally seconds before.
"""

from __future__ import annotations

import logging
from typing import Any

from agents.aggregate.builder import BucketBuilder
from agents.aggregate.stage import FLUSH_MAX_SNAPSHOTS, AggregateStage
from streams.core import topics
from streams.core.records import EnrichedMention
from streams.runtime.dlq import parsed_events
from streams.runtime.pipeline import Pipeline

__all__ = ["FLUSH_INTERVAL_S", "install"]

log = logging.getLogger(__name__)
FLUSH_INTERVAL_S = 1.0


async def _no_stream(event: Any) -> None:
    return None  # no agent reading yet: nothing was taken, nothing to acknowledge


def install(pipeline: Pipeline) -> None:
    app, settings, metrics = pipeline.app, pipeline.settings, pipeline.metrics
    cfg = settings.aggregates
    view = pipeline.views.aggregates
    builder = BucketBuilder(
        size_s=cfg.bucket_s, top_mentions=cfg.top_mentions, top_terms=cfg.top_terms,
        top_authors=cfg.top_authors,
        watch_terms={w.id: w.all_terms for w in settings.watches},
        on_duplicate=metrics.duplicates.labels("aggregate").inc)
    stage = AggregateStage(builder=builder, watches={w.id for w in settings.watches},
                           stored=view.get)
    enriched = pipeline.topic(topics.ENRICHED)
    out = pipeline.topic(topics.AGGREGATES)

    @app.task
    async def aggregate_view_task() -> None:
        await view.run()

    async def send(key: bytes, value: bytes) -> None:
        await out.send(key=key, value=value)

    # The agent's stream, for the acks: set when the agent starts reading.
    stream_of: list[Any] = []

    async def ack(event: Any) -> None:
        await stream_of[0].ack(event)

    async def flush() -> None:  # everything: on revoke and at shutdown
        await stage.flush(send, ack if stream_of else _no_stream)

    # One snapshot per mention would multiply the topic's volume by the mentions per bucket
    # (every snapshot is the whole bucket): once a second per changed bucket bounds it by the
    # number of active buckets instead, at the price of the loss window described above.
    @app.timer(interval=FLUSH_INTERVAL_S, name="escucha.aggregate-flush")
    async def flush_timer() -> None:
        await stage.flush(send, ack if stream_of else _no_stream, limit=FLUSH_MAX_SNAPSHOTS)

    # Before the consumer commits on revoke (streams/runtime/faust.py): the next owner seeds
    # from what is stored, and reads again only what was not.
    app.before_revoke.append(flush)

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
        manual = stream.noack()
        stream_of[:] = [manual]

        async def invalid(event: Any, reason: str) -> None:
            # detect dead-letters bad enriched records; reporting them here too would double
            # them. Acked in order with the records around it.
            stage.hold(event)

        async for event, em in parsed_events(manual, EnrichedMention, on_invalid=invalid):
            if stage.needs_sync:
                # The partitions' previous owner stored its last snapshots while handing them
                # over, moments ago: seeding from a view that has not read them yet would
                # store counts without them.
                stage.needs_sync = False
                if not await view.sync():
                    log.warning("aggregates view not caught up after the rebalance; seeding "
                                "from what it has read")
            msg = event.message
            stage.add(em, position=f"{msg.topic}:{msg.partition}", offset=msg.offset,
                      token=event)
