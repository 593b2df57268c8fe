"""The store stage's logic, without Faust: write a batch, and say what became of each record.

The store shares the enriched topic's partitions with detection (Faust hands each record to
every agent reading the topic, and stops fetching a partition while any of them lags), so a
store that held its records for long would hold up alerts. Hence, per batch:

- written: every record is acknowledged;
- a record the store refuses (bad data): dead-lettered with the reason, then acknowledged;
  the rest of the batch is written;
- the database unavailable (down, locked, full): the batch is tried again, waiting 0.5 s,
  1 s, 2 s, … for at most ``hold_s``; still failing, it is **let go**: acknowledged, counted
  and logged with the offsets it covered. The mentions stay on the enriched topic, and
  ``escucha store rebuild`` (idempotent) writes whatever the store is missing.
- from then on the store is marked unavailable and batches are let go at once, without
  waiting on the database: holding every batch ``hold_s`` would slow the store to a batch per
  ``hold_s``, below the classifier's pace, and stall detection behind it after all.
  :meth:`StoreStage.probe` (a timer in the agent) tries the database and marks it back.

Before its first write the stage seeds the store's story indexes (``seed``,
agents/store/seeding.py), so a story running across a restart keeps its id. The database
unavailable then is handled as for a write (the batch waits, then is let go, and seeding is
tried again with the next batch); any other failure to seed is logged and writing goes on
unseeded: a second id for a running story is better than a store that stops.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from agents.store.store import MentionStore, StoreError, StoreUnavailable, WriteResult
from streams.core.records import EnrichedMention

__all__ = ["BatchOutcome", "StoreStage"]

log = logging.getLogger(__name__)
T = TypeVar("T")  # what the caller acknowledges a record by (a Faust event)


@dataclass
class BatchOutcome(Generic[T]):
    stored: int = 0  # mentions new to the store
    written: list[T] = field(default_factory=list)  # stored, or already there
    rejected: list[tuple[T, str]] = field(default_factory=list)
    let_go: list[T] = field(default_factory=list)  # never written: the store was unavailable
    error: str | None = None  # why they were let go


class StoreStage:
    def __init__(self, *, store: MentionStore, hold_s: float = 10.0,
                 write: Callable[[Sequence[EnrichedMention]], Awaitable[WriteResult]]
                 | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 seed: Callable[[], int] | None = None) -> None:
        self.store = store
        #: Seeds the story indexes (blocking, run in a thread) before the first write; None
        #: once done.
        self._seed = seed
        self.hold_s = hold_s
        self._write = write or self._in_thread
        self._sleep = sleep
        self._clock = clock
        #: Why the database was last found unusable; None while it is available.
        self.unavailable: str | None = None

    async def _in_thread(self, mentions: Sequence[EnrichedMention]) -> WriteResult:
        # Blocking database work, off the event loop (heartbeats and the web go on).
        return await asyncio.to_thread(self.store.write, mentions)

    async def handle(self, items: Sequence[tuple[T, EnrichedMention]]) -> BatchOutcome[T]:
        outcome: BatchOutcome[T] = BatchOutcome()
        if not items:
            return outcome
        if self.unavailable is not None:
            outcome.let_go = [token for token, _ in items]
            outcome.error = self.unavailable
            return outcome
        deadline = self._clock() + self.hold_s
        delay = 0.5
        while True:
            try:
                await self._seed_once()
                result = await self._write([em for _, em in items])
                break
            except StoreError as exc:  # unavailable, or not usable at all (a newer schema)
                if self._clock() + delay > deadline:
                    outcome.let_go = [token for token, _ in items]
                    outcome.error = self.unavailable = str(exc)
                    return outcome
                log.warning("store: %s; trying again in %.1fs", exc, delay)
                await self._sleep(delay)
                delay = min(delay * 2, 5.0)
        refused = dict(result.rejected)
        outcome.stored = result.stored
        for i, (token, _em) in enumerate(items):
            if i in refused:
                outcome.rejected.append((token, refused[i]))
            else:
                outcome.written.append(token)
        return outcome

    async def _seed_once(self) -> None:
        if self._seed is None:
            return
        started = self._clock()
        try:
            n = await asyncio.to_thread(self._seed)
        except StoreUnavailable:
            raise  # as a write's: wait, or let the batch go; seeding is tried again
        except Exception as exc:
            log.warning("store: story ids not seeded from the store (%s); a story running "
                        "across the restart may continue under a second id", exc)
        else:
            log.info("store: story ids seeded from %d stored mention(s) in %.1fs", n,
                     self._clock() - started)
        self._seed = None

    async def probe(self) -> bool:
        """Try the database (in a thread); mark it available again if it answers."""
        try:
            await asyncio.to_thread(self.store.ping)
        except StoreError as exc:
            self.unavailable = str(exc)
            return False
        self.unavailable = None
        return True
