"""The worker's story indexes, shared by detection and the mention store.

Detection (agents/detect/detectors.py) and the store (agents/store/store.py) both need the
story of each mention in each watch: detection for its evidence, the store for the console's
grouped view. Both read the enriched topic, keyed by watch, in one consumer group, so a worker
holds the same partitions for both and meets every mention twice. A :class:`StoryBook` keeps
one :class:`~agents.detect.stories.StoryIndex` per watch for the whole worker and remembers
its recent answers (``memo`` of them, by watch and mention key): whichever stage meets a
mention first computes its story, the other reads the answer. Computed twice, MinHash was
the largest cost of the store stage (26% of the worker's main process for the two, by
py-spy; bench/RESULTS.md), and the two stages could disagree after a restart, when only the
store's index was seeded.

Both stages go through one watch's mentions in the same order (one partition), so the index
still sees them in the order they were posted, once each. An answer pushed out of the memo
(a store far behind detection, or a stage disabled) or read again (a batch re-read after a
crash) is computed again on the same index: a text the index has seen joins the story it
was given. (Such an answer goes into the memo too, so a stage more than half the memo
behind computes every answer again, as it did before the book was shared, until it is
within reach.)

The store seeds the book at start from its own rows (agents/store/seeding.py), so a story
still running across a restart keeps its id in the store and in detection's evidence alike;
a mention detection meets before the seeding has finished may still open a new id. Seeding
covers each watch's last ``store.story_seed_hours`` (at most ``store.story_seed_max``
mentions). A worker whose store is PostgreSQL shared with others sees only its own
partitions' mentions, so a story spread over partitions may carry one id per worker. Ids
never change once stored: a rebuild over a live store keeps them and only fills in the
missing ones (rows stored before schema version 3); a rebuild into a cleared store assigns
them all afresh, in the topic's order.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable

from agents.detect.stories import StoryIndex
from streams.core.records import EnrichedMention

__all__ = ["MEMO", "StoryBook"]

#: Answers remembered for the stage that is behind. The store writes batches of
#: ``store.batch_size`` (default 500) and lags detection by a batch or two; 20,000 keys (a
#: few MB) cover minutes of a storm at the pipeline's full rate.
MEMO = 20_000


class StoryBook:
    """One :class:`StoryIndex` per watch and a memo of recent answers; thread-safe (the
    store assigns in its writer thread, detection in the event loop)."""

    def __init__(self, *, index: Callable[[], StoryIndex] = StoryIndex,
                 memo: int = MEMO) -> None:
        self._new = index
        self._indexes: dict[str, StoryIndex] = {}
        self._memo: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._memo_size = memo
        self._lock = threading.Lock()
        #: Answers computed, and answers read from the memo (for tests and the bench).
        self.computed = self.remembered = 0

    @property
    def pending(self) -> int:
        """Answers held for the stage behind."""
        return len(self._memo)

    def story(self, watch: str, *, text: str, key: str, at: float) -> str:
        """The story id of mention ``key`` (posted at ``at`` seconds) in ``watch``."""
        with self._lock:
            return self._story(watch, text, key, at)

    def assign(self, em: EnrichedMention, watches: Iterable[str]) -> tuple[str, ...]:
        """The story of ``em`` in each of ``watches``, in their order."""
        m = em.mention
        at = m.created_at.timestamp()
        with self._lock:
            return tuple(self._story(w, m.text, m.key, at) for w in watches)

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

    def _story(self, watch: str, text: str, key: str, at: float) -> str:
        # Each answer is wanted once more (by the other stage): taken, not kept, so the memo
        # holds only what the stage behind has still to read.
        known = self._memo.pop((watch, key), None)
        if known is not None:
            self.remembered += 1
            return known
        story = self._index(watch).assign(text, key=key, at=at)
        self.computed += 1
        self._memo[(watch, key)] = story
        if len(self._memo) > self._memo_size:
            self._memo.popitem(last=False)
        return story

    def _index(self, watch: str) -> StoryIndex:
        index = self._indexes.get(watch)
        if index is None:
            index = self._indexes[watch] = self._new()
        return index
