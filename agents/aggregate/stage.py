"""The aggregate stage without Faust: fold mentions into buckets, flush changed snapshots.

The agent (``agents/aggregate/agent.py``) feeds it records, calls :meth:`flush` once a second,
on revoke and at shutdown, and tells it which partitions it still owns.

A record is done only when the snapshot that counts it is stored: :meth:`add` takes a token
for it (the agent's Faust event) and :meth:`flush` hands the tokens of everything it stored to
``ack``. The consumer commits no further than the lowest unacknowledged offset, so a kill -9
between a count and its snapshot re-reads the mention (and the stored keys skip what was
stored already) instead of losing it.

Bounded ticks: a back-fill (days of history replayed at the classifier's pace) touches
hundreds of buckets a second, and after any pause the backlog thousands at once; each
snapshot costs about a millisecond to build, serialise and hand to the producer. The timer's
flush therefore sends at most ``limit`` snapshots, oldest buckets first, and leaves the rest
dirty for the next tick (a bucket still filling is then sent once with more in it, not once
per tick). Records are acknowledged in order, as far as every one's bucket has been stored
since it was counted: with a partial flush the acknowledged prefix advances, and no record
whose count is only in memory is acknowledged. Flushes never run at once: a flush on revoke
or shutdown waits for the timer's to finish and then sends everything; a timer tick that
finds a flush running skips.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from agents.aggregate.builder import BucketBuilder
from streams.core.buckets import Bucket, BucketKey, bucket_id
from streams.core.records import EnrichedMention

__all__ = ["FLUSH_MAX_SNAPSHOTS", "AggregateStage"]

log = logging.getLogger(__name__)

#: Snapshots one timer tick sends at most (about a millisecond each to build, serialise and
#: produce): a back-fill's thousands of changed buckets go over several ticks instead of
#: overrunning one.
FLUSH_MAX_SNAPSHOTS = 400

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
        #: Records not acknowledged yet, oldest first: (token, bucket or None, sequence number).
        self._unstored: list[tuple[Any, BucketKey | None, int]] = []
        self._seq = itertools.count(1)
        #: Per bucket with records owed: the sequence number of its latest record, and that
        #: of the latest record its stored snapshot counts.
        self._added: dict[BucketKey, int] = {}
        self._stored_upto: dict[BucketKey, int] = {}
        self._flushing = asyncio.Lock()
        #: After an assignment the stored snapshots (the view) must be caught up before a
        #: bucket is seeded from them: the previous owner stored its last ones moments ago.
        self.needs_sync = False

    @property
    def unstored(self) -> int:
        """Records counted whose snapshot is not stored yet (not acknowledged)."""
        return len(self._unstored)

    def hold(self, token: Any) -> None:
        """A record that needs no counting (invalid, a removed watch) but must wait for the
        records before it: acknowledged once every record before it is."""
        self._unstored.append((token, None, next(self._seq)))

    def add(self, em: EnrichedMention, *, position: str, offset: int,
            token: Any = None) -> None:
        """Count one mention, continuing from the stored snapshot of a bucket not in memory.

        Without the seed a restart would start every open bucket from zero and overwrite the
        stored counts with the smaller ones.
        """
        if em.watch_id not in self.watches:
            if token is not None:
                self.hold(token)
            return  # a watch removed from config since the mention was classified
        key = self.builder.key_of(em)
        if key not in self.builder:
            stored = self.builder.evicted(key) or self._stored(bucket_id(*key))
            if stored is not None:
                self.builder.seed(stored)
        self.builder.add(em, position=position, offset=offset)
        if token is None:
            return
        if not self.builder.is_dirty(key):
            # Counted nothing new (a re-delivery or a duplicate) in a bucket whose counts
            # are stored or on their way: owed only behind the records before it.
            self.hold(token)
            return
        seq = next(self._seq)
        self._unstored.append((token, key, seq))
        self._added[key] = seq

    async def flush(self, send: Send, ack: Ack = _no_ack, *, limit: int | None = None) -> int:
        """Send changed buckets' snapshots, oldest first, at most ``limit`` of them (None:
        all), then ``ack`` the records stored; the number sent. A failed send keeps the rest
        dirty, and their records unacknowledged, for the next flush (the broker may be gone
        for a moment). With ``limit`` set (the timer) a flush already running means skip."""
        if limit is not None and self._flushing.locked():
            return 0
        async with self._flushing:
            return await self._flush(send, ack, limit)

    async def _flush(self, send: Send, ack: Ack, limit: int | None) -> int:
        keys: list[BucketKey] = self.builder.dirty()
        if limit is not None:
            keys = keys[:max(0, limit)]
        # Each snapshot counts every record of its bucket added before this point.
        upto = [self._added.get(k, 0) for k in keys]
        snapshots = [self.builder.snapshot(k) for k in keys]
        # Clean before sending: a mention absorbed while a send is awaited marks its bucket
        # dirty again and goes out with a later flush.
        self.builder.mark_clean(keys)
        sent = 0
        for i, snap in enumerate(snapshots):
            try:
                await send(snap.watch_id.encode(), snap.model_dump_json().encode())
            except Exception as exc:  # broker gone: keep the counts, try again next second
                self.builder.mark_dirty(keys[i:])
                log.warning("could not store %d bucket snapshots (%s); retrying",
                            len(keys) - i, exc)
                break
            self._stored_upto[keys[i]] = upto[i]
            sent += 1
        await self._ack_stored(ack)
        if sent == len(snapshots):
            self.builder.evict()  # only clean buckets, whose snapshots are stored
        return sent

    async def _ack_stored(self, ack: Ack) -> None:
        """Acknowledge the longest prefix of records whose buckets are stored since."""
        done = 0
        for _token, key, seq in self._unstored:
            if key is not None and self._stored_upto.get(key, 0) < seq:
                break
            done += 1
        acked, self._unstored = self._unstored[:done], self._unstored[done:]
        if acked:
            owed = {key for _, key, _ in self._unstored}
            self._added = {k: v for k, v in self._added.items() if k in owed}
            self._stored_upto = {k: v for k, v in self._stored_upto.items() if k in owed}
        for token, _, _ in acked:
            await ack(token)

    def retain(self, positions: set[str]) -> int:
        """Forget buckets fed only by partitions now owned elsewhere (they would go stale).

        Tokens still held belong to the old assignment: the consumer forgot those offsets
        at revoke, and whoever reads the partitions now reads those records again."""
        self._unstored.clear()
        self._added.clear()
        self._stored_upto.clear()
        self.needs_sync = True
        return self.builder.retain(positions)
