"""Story ids for stored mentions: the near-duplicate folding of detection, per watch.

The store gives each mention, in each watch it belongs to, the story id detection's
:class:`~agents.detect.stories.StoryIndex` gives it (one index per watch, the same defaults:
MinHash + LSH over the watch's last day, the first copy's key naming the story), so a
copy-paste storm of 300 accounts is stored as one story and the console can show it once.

Limitation, the same as detection's: the indexes live in the worker's memory. After a
restart they start empty, so a story still running then continues under a second id (the
grouped view shows it as two stories). Not done yet: seeding the indexes at start from the
store's last hours of rows. A worker whose store is PostgreSQL shared with
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

    def _index(self, watch: str) -> StoryIndex:
        index = self._indexes.get(watch)
        if index is None:
            index = self._indexes[watch] = self._new()
        return index
