"""Story ids for stored mentions: the near-duplicate folding of detection, per watch.

The store gives each mention, in each watch it belongs to, the story id detection's
:class:`~agents.detect.stories.StoryIndex` gives it (one index per watch, the same defaults:
MinHash + LSH over the watch's last day, the first copy's key naming the story), so a
copy-paste storm of 300 accounts is stored as one story and the console can show it once.

The indexes live in the worker's memory, so at start they are seeded from the store's own
rows (agents/store/seeding.py: each watch's last ``store.story_seed_hours``, at most
``store.story_seed_max`` mentions, with their stored ids): a story still running across a
restart keeps its id. Older than that, or past the bound, a story that comes back opens a
second id. A worker whose store is PostgreSQL shared with
others sees only its own partitions' mentions, so a story spread over partitions may carry
one id per worker, as detection's stories do. Ids never change once stored: a rebuild over a
live store keeps them and only fills in the missing ones (rows stored before schema
version 3); a rebuild into a cleared store assigns them all afresh, in the topic's order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from agents.detect.stories import StoryIndex
from streams.core.records import EnrichedMention

__all__ = ["StoryBook"]


class StoryBook:
    """One :class:`StoryIndex` per watch; safe to call from several threads."""

    def __init__(self, *, index: Callable[[], StoryIndex] = StoryIndex) -> None:
        self._new = index
        self._indexes: dict[str, StoryIndex] = {}
        self._lock = threading.Lock()  # the writer's thread and a seeding rebuild may meet

    def assign(self, em: EnrichedMention, watches: Iterable[str]) -> tuple[str, ...]:
        """The story of ``em`` in each of ``watches``, in their order."""
        m = em.mention
        at = m.created_at.timestamp()
        with self._lock:
            return tuple(self._index(w).assign(m.text, key=m.key, at=at) for w in watches)

    def seed(self, watch: str, mentions: Iterable[tuple[str, str, float]]) -> int:
        """Remember ``watch``'s stored mentions, each (text, story id, posted at in seconds),
        oldest first, under their stored ids; how many were given."""
        n = 0
        with self._lock:
            index = self._index(watch)
            for text, story, at in mentions:
                index.seed(text, story=story, at=at)
                n += 1
        return n

    def _index(self, watch: str) -> StoryIndex:
        index = self._indexes.get(watch)
        if index is None:
            index = self._indexes[watch] = self._new()
        return index
