"""The aggregate stage without Faust: fold mentions into buckets, flush changed snapshots.

The agent (``agents/aggregate/agent.py``) feeds it records, calls :meth:`flush` once a second,
on revoke and at shutdown, and tells it which partitions it still owns.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection

from agents.aggregate.builder import BucketBuilder
from streams.core.buckets import Bucket, BucketKey, bucket_id
from streams.core.records import EnrichedMention

__all__ = ["AggregateStage"]

log = logging.getLogger(__name__)

#: Sends one snapshot: (key, value) to escucha.aggregates.
Send = Callable[[bytes, bytes], Awaitable[None]]


class AggregateStage:
    def __init__(self, *, builder: BucketBuilder, watches: Collection[str],
                 stored: Callable[[str], Bucket | None]) -> None:
        self.builder = builder
        self.watches = frozenset(watches)
        #: The latest stored snapshot of a bucket id (the aggregates view), to seed from.
        self._stored = stored

    def add(self, em: EnrichedMention, *, position: str, offset: int) -> None:
        """Count one mention, continuing from the stored snapshot of a bucket not in memory.

        Without the seed a restart would start every open bucket from zero and overwrite the
        stored counts with the smaller ones.
        """
        if em.watch_id not in self.watches:
            return  # a watch removed from config since the mention was classified
        key = self.builder.key_of(em)
        if key not in self.builder:
            stored = self.builder.evicted(key) or self._stored(bucket_id(*key))
            if stored is not None:
                self.builder.seed(stored)
        self.builder.add(em, position=position, offset=offset)

    async def flush(self, send: Send) -> int:
        """Send every changed bucket's snapshot; the number sent. A failed send keeps the
        rest dirty for the next flush (the broker may be gone for a moment)."""
        keys: list[BucketKey] = self.builder.dirty()
        if not keys:
            return 0
        snapshots = [self.builder.snapshot(k) for k in keys]
        # Clean before sending: a mention absorbed while a send is awaited marks its bucket
        # dirty again and goes out with the next flush.
        self.builder.mark_clean(keys)
        for i, snap in enumerate(snapshots):
            try:
                await send(snap.watch_id.encode(), snap.model_dump_json().encode())
            except Exception as exc:  # broker gone: keep the counts, try again next second
                self.builder.mark_dirty(keys[i:])
                log.warning("could not store %d bucket snapshots (%s); retrying",
                            len(keys) - i, exc)
                return i
        self.builder.evict()
        return len(snapshots)

    def retain(self, positions: set[str]) -> int:
        """Forget buckets fed only by partitions now owned elsewhere (they would go stale)."""
        return self.builder.retain(positions)
