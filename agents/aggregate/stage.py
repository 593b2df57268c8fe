"""The aggregate stage without Faust: fold mentions into buckets, flush changed snapshots.

The agent (``agents/aggregate/agent.py``) feeds it records, calls :meth:`flush` once a second,
on revoke and at shutdown, and tells it which partitions it still owns.

A record is done only when the snapshot that counts it is stored: :meth:`add` takes a token
for it (the agent's Faust event) and :meth:`flush` hands the tokens of everything it stored to
``ack``. The consumer commits no further than the lowest unacknowledged offset, so a kill -9
between a count and its snapshot re-reads the mention (and the stored keys skip what was
stored already) instead of losing it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from agents.aggregate.builder import BucketBuilder
from streams.core.buckets import Bucket, BucketKey, bucket_id
from streams.core.records import EnrichedMention

__all__ = ["AggregateStage"]

log = logging.getLogger(__name__)

#: Sends one snapshot: (key, value) to escucha.aggregates.
Send = Callable[[bytes, bytes], Awaitable[None]]
#: Acknowledges one record whose counts are stored (given the token passed to ``add``).
Ack = Callable[[Any], Awaitable[Any]]


async def _no_ack(token: Any) -> None:
    return None


class AggregateStage:
    def __init__(self, *, builder: BucketBuilder, watches: Collection[str],
                 stored: Callable[[str], Bucket | None]) -> None:
        self.builder = builder
        self.watches = frozenset(watches)
        #: The latest stored snapshot of a bucket id (the aggregates view), to seed from.
        self._stored = stored
        #: Tokens of records added since the last complete flush, oldest first.
        self._unstored: list[Any] = []

    @property
    def unstored(self) -> int:
        """Records counted whose snapshot is not stored yet (not acknowledged)."""
        return len(self._unstored)

    def hold(self, token: Any) -> None:
        """A record that needs no counting (invalid, a removed watch) but must wait for the
        records before it: acknowledged with the next complete flush."""
        self._unstored.append(token)

    def add(self, em: EnrichedMention, *, position: str, offset: int,
            token: Any = None) -> None:
        """Count one mention, continuing from the stored snapshot of a bucket not in memory.

        Without the seed a restart would start every open bucket from zero and overwrite the
        stored counts with the smaller ones.
        """
        if token is not None:
            self._unstored.append(token)
        if em.watch_id not in self.watches:
            return  # a watch removed from config since the mention was classified
        key = self.builder.key_of(em)
        if key not in self.builder:
            stored = self.builder.evicted(key) or self._stored(bucket_id(*key))
            if stored is not None:
                self.builder.seed(stored)
        self.builder.add(em, position=position, offset=offset)

    async def flush(self, send: Send, ack: Ack = _no_ack) -> int:
        """Send every changed bucket's snapshot, then ``ack`` the records they count; the
        number sent. A failed send keeps the rest dirty, and every record unacknowledged,
        for the next flush (the broker may be gone for a moment)."""
        # Everything added before this point is in the snapshots taken below.
        tokens, self._unstored = self._unstored, []
        keys: list[BucketKey] = self.builder.dirty()
        if not keys:
            await self._ack(tokens, ack)
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
                self._unstored[:0] = tokens
                log.warning("could not store %d bucket snapshots (%s); retrying",
                            len(keys) - i, exc)
                return i
        await self._ack(tokens, ack)
        self.builder.evict()
        return len(snapshots)

    @staticmethod
    async def _ack(tokens: list[Any], ack: Ack) -> None:
        for token in tokens:
            await ack(token)

    def retain(self, positions: set[str]) -> int:
        """Forget buckets fed only by partitions now owned elsewhere (they would go stale).

        Tokens still held belong to the old assignment: the consumer forgot those offsets
        at revoke, and whoever reads the partitions now reads those records again."""
        self._unstored.clear()
        return self.builder.retain(positions)
