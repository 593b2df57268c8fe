"""The aggregate stage's buckets: full counters per (watch, bucket), free of Kafka.

:class:`BucketBuilder` keeps full counters for the buckets it owns and turns them into
:class:`~streams.core.buckets.Bucket` snapshots (the record stored on ``escucha.aggregates``),
where terms, authors and top mentions are cut to their top k.

Counts are of distinct mentions: each bucket keeps the key digest of every mention it counted
and is stored with them, so a mention that classify wrote again at a new enriched offset
(after a crash, a rebalance or a hole read again) is recognised, in this worker or in the
next one that seeds the bucket from its stored snapshot. A bucket older than ``keep_s``
before its watch's newest one is stored once more without its keys ("sealed") and then
evicted: re-reads come minutes after the first read, and the keys would otherwise cost every
view of every worker memory for as long as the bucket is retained (a 6-hour-late post read
twice is the one case counted twice).
"""

from __future__ import annotations

import heapq
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from agents.classify.matching import fold
from streams.core.buckets import (
    SENTIMENTS,
    Bucket,
    BucketKey,
    TopMention,
    bucket_start,
    top_counts,
    top_rank,
)
from streams.core.records import EnrichedMention, key_digest
from streams.core.terms import terms_of

__all__ = ["BucketBuilder"]

_EVICTED_MAX = 20_000  # snapshots kept for stragglers (top-k only: a few kB each)
#: Key digests one bucket keeps, the newest: ~15 bytes each in its stored snapshot, one broker
#: record of at most 1 MB. Unbounded, a watch at ~200 mentions/s (several workers classifying
#: for it) filled a 5-minute bucket past the limit, and the producer error would crash the
#: worker. A re-read comes seconds to a minute after the first read; 40,000 cover minutes at
#: that pace. An older mention read again past them would be counted twice.
MAX_BUCKET_KEYS = 40_000
_TEXT_CHARS = 280  # what a console row or a report line shows of a mention


@dataclass
class _Acc:
    """Full counters of one bucket (only snapshots are cut to top k)."""

    count: int = 0
    sentiment: Counter[str] = field(default_factory=Counter)
    priority_sum: int = 0
    reach: int = 0
    engagement: int = 0
    languages: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    terms: Counter[str] = field(default_factory=Counter)
    authors: Counter[str] = field(default_factory=Counter)
    top: list[TopMention] = field(default_factory=list)
    offsets: dict[str, int] = field(default_factory=dict)
    keys: dict[str, None] = field(default_factory=dict)  # a set in arrival order
    sealed: bool = False  # keys dropped (see the module's docstring)

    @classmethod
    def of(cls, b: Bucket) -> _Acc:
        return cls(count=b.count, sentiment=Counter(b.sentiment), priority_sum=b.priority_sum,
                   reach=b.reach, engagement=b.engagement, languages=Counter(b.languages),
                   sources=Counter(b.sources), terms=Counter(b.terms),
                   authors=Counter(b.authors), top=sorted(b.top, key=top_rank),
                   offsets=dict(b.offsets), keys=dict.fromkeys(b.keys),
                   sealed=b.count > 0 and not b.keys)


class BucketBuilder:
    """Folds enriched mentions into the buckets of the watches this worker owns."""

    def __init__(self, *, size_s: int, top_mentions: int = 5, top_terms: int = 20,
                 top_authors: int = 10, keep_s: int = 6 * 3600,
                 watch_terms: Mapping[str, Iterable[str]] | None = None,
                 on_duplicate: Callable[[], None] = lambda: None) -> None:
        if size_s <= 0:
            raise ValueError(f"size_s must be positive, got {size_s}")
        self.size_s = size_s
        self.top_mentions, self.top_terms, self.top_authors = top_mentions, top_terms, top_authors
        self.keep = timedelta(seconds=keep_s)
        self._exclude = {w: frozenset(fold(t).lstrip("#@$") for t in terms)
                         for w, terms in (watch_terms or {}).items()}
        self._buckets: dict[BucketKey, _Acc] = {}
        self._dirty: set[BucketKey] = set()
        self._newest: dict[str, datetime] = {}  # per watch: one busy watch must not evict
        # Our own last snapshot of each evicted bucket. A straggler for one is seeded from
        # here, not from the view, which may not have read that snapshot back yet (and
        # would then seed an older count that the next snapshot writes over).
        self._evicted: OrderedDict[BucketKey, Bucket] = OrderedDict()
        #: Mentions recognised as counted already, by their key; each also told to
        #: ``on_duplicate`` (the worker's metric).
        self.duplicates = 0
        self._on_duplicate = on_duplicate

    def __contains__(self, key: object) -> bool:
        return key in self._buckets

    def __len__(self) -> int:
        return len(self._buckets)

    def key_of(self, em: EnrichedMention) -> BucketKey:
        return em.watch_id, bucket_start(em.mention.created_at, self.size_s)

    def add(self, em: EnrichedMention, *, position: str, offset: int) -> BucketKey | None:
        """Count ``em`` in its bucket; None if it is counted there already.

        ``position`` is ``'topic:partition'``. A partition's messages arrive in order, so
        every message of a bucket up to the last absorbed offset is in its counts: after a
        crash the re-delivered ones are skipped without a lookup. A mention written again
        at a new offset is recognised by its key.
        """
        key = self.key_of(em)
        acc = self._buckets.get(key)
        if acc is None:
            acc = self._buckets[key] = _Acc()
        if offset <= acc.offsets.get(position, -1):
            return None
        m = em.mention
        digest = key_digest(m.key)
        if digest in acc.keys:
            self.duplicates += 1
            self._on_duplicate()
            acc.offsets[position] = offset
            return None
        if not acc.sealed:
            acc.keys[digest] = None
            if len(acc.keys) > MAX_BUCKET_KEYS:
                del acc.keys[next(iter(acc.keys))]  # the oldest
        acc.count += 1
        acc.sentiment[em.sentiment.label] += 1
        acc.priority_sum += em.priority
        acc.reach += m.author.followers
        acc.engagement += m.engagement.likes + m.engagement.shares + m.engagement.replies
        acc.languages[m.language or "und"] += 1
        acc.sources[m.source] += 1
        acc.terms.update(terms_of(m.text, exclude=self._exclude.get(em.watch_id,
                                                                    frozenset())))
        acc.authors[m.author.handle] += 1
        top = TopMention(key=m.key, url=m.url, author=m.author.handle,
                         text=m.text[:_TEXT_CHARS], priority=em.priority, language=m.language,
                         sentiment=em.sentiment.label, posted_at=m.created_at)
        if all(t.key != top.key for t in acc.top):  # the same post twice from a source
            acc.top = heapq.nsmallest(self.top_mentions, [*acc.top, top], key=top_rank)
        acc.offsets[position] = offset
        self._dirty.add(key)
        if key[0] not in self._newest or key[1] > self._newest[key[0]]:
            self._newest[key[0]] = key[1]
        return key

    def snapshot(self, key: BucketKey) -> Bucket:
        """The bucket as stored: full totals, top k of terms, authors and mentions."""
        acc = self._buckets[key]
        return Bucket(
            watch_id=key[0], start=key[1], size_s=self.size_s, count=acc.count,
            sentiment={s: acc.sentiment.get(s, 0) for s in SENTIMENTS},
            priority_sum=acc.priority_sum, reach=acc.reach, engagement=acc.engagement,
            languages=dict(acc.languages), sources=dict(acc.sources),
            terms=top_counts(acc.terms, self.top_terms),
            authors=top_counts(acc.authors, self.top_authors),
            top=list(acc.top[: self.top_mentions]), offsets=dict(acc.offsets),
            keys=list(acc.keys))  # arrival order: a seeded bucket evicts the oldest too

    def evicted(self, key: BucketKey) -> Bucket | None:
        """This builder's own last snapshot of an evicted bucket (see ``evict``)."""
        return self._evicted.pop(key, None)

    def seed(self, bucket: Bucket) -> None:
        """Continue from a stored snapshot (its terms and authors are only its top k)."""
        if bucket.size_s != self.size_s:
            # Another bucket size (the setting changed): its counts belong to other intervals.
            return
        self._buckets[bucket.key] = _Acc.of(bucket)
        self._dirty.discard(bucket.key)

    def dirty(self) -> list[BucketKey]:
        """Buckets changed since they were last marked clean, oldest first."""
        return sorted(self._dirty, key=lambda k: (k[1], k[0]))

    def is_dirty(self, key: BucketKey) -> bool:
        """Changed since its snapshot was last taken to be stored."""
        return key in self._dirty

    def mark_clean(self, keys: Iterable[BucketKey] | None = None) -> None:
        """These buckets' snapshots are stored (all buckets if ``keys`` is None)."""
        if keys is None:
            self._dirty.clear()
        else:
            self._dirty.difference_update(keys)

    def mark_dirty(self, keys: Iterable[BucketKey]) -> None:
        """A snapshot could not be stored: send it again on the next flush."""
        self._dirty.update(k for k in keys if k in self._buckets)

    def evict(self) -> int:
        """Forget clean buckets older than ``keep_s`` before the newest one; return how many.

        Their last snapshot is stored: a late mention for one is counted after seeding it
        again from the stored snapshot. Full term counters are the bulk of the memory, and
        all but the latest hours only ever see stragglers. A bucket still holding its keys
        is first sealed (keys dropped, marked dirty: stored once more without them) and
        evicted on a later call.
        """
        old = [k for k in self._buckets if k not in self._dirty
               and k[1] < self._newest.get(k[0], k[1]) - self.keep]
        for k in [k for k in old if not self._buckets[k].sealed]:
            acc = self._buckets[k]
            acc.sealed = True
            if acc.keys:
                acc.keys = {}
                self._dirty.add(k)
        old = [k for k in old if k not in self._dirty]
        for k in old:
            self._evicted[k] = self.snapshot(k)
            del self._buckets[k]
        while len(self._evicted) > _EVICTED_MAX:
            self._evicted.popitem(last=False)
        return len(old)

    def retain(self, positions: set[str]) -> int:
        """Keep only buckets fed from ``positions`` ('topic:partition' this worker owns).

        After a rebalance another worker counts the rest: what is held here would go stale.
        Dirty buckets are dropped too, so flush before calling this. Returns how many went.
        """
        self._evicted.clear()  # another worker may own some of them now
        gone = [k for k, acc in self._buckets.items()
                if acc.offsets and not set(acc.offsets) <= positions]
        for k in gone:
            del self._buckets[k]
            self._dirty.discard(k)
        return len(gone)


