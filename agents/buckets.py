"""Per-watch aggregates in fixed event-time buckets, free of Kafka.

A bucket is one watch over ``[start, start + size_s)`` of *event* time (the posts' own
``created_at``, floored to the bucket size in UTC). :class:`BucketBuilder` keeps full counters
for the buckets it owns and turns them into :class:`Bucket` snapshots (the record stored on
``escucha.aggregates``), where terms, authors and top mentions are cut to their top k.
:func:`summarize`, :func:`series` and :func:`share_of_voice` read those snapshots back for
the console and for reports of any period still retained.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agents.matching import fold
from agents.terms import terms_of
from streams.records import EnrichedMention, SampleMention

__all__ = [
    "BUCKET_VERSION",
    "Bucket",
    "BucketBuilder",
    "BucketKey",
    "Point",
    "SENTIMENTS",
    "Summary",
    "TopMention",
    "bucket_id",
    "bucket_start",
    "series",
    "share_of_voice",
    "summarize",
]

BUCKET_VERSION = 1
_EVICTED_MAX = 20_000  # snapshots kept for stragglers (top-k only: a few kB each)
SENTIMENTS: tuple[Literal["negative", "neutral", "positive"], ...] = (
    "negative", "neutral", "positive")
_TEXT_CHARS = 280  # what a console row or a report line shows of a mention

#: (watch id, bucket start): what a builder's buckets are keyed by.
BucketKey = tuple[str, datetime]


def _zeros(keys: Iterable[str]) -> dict[str, int]:
    return dict.fromkeys(keys, 0)


def bucket_start(t: datetime, size_s: int) -> datetime:
    """``t`` floored to a multiple of ``size_s`` seconds since the epoch, in UTC."""
    if size_s <= 0:
        raise ValueError(f"size_s must be positive, got {size_s}")
    t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    seconds = math.floor(t.timestamp())
    return datetime.fromtimestamp(seconds - seconds % size_s, UTC)


def bucket_id(watch_id: str, start: datetime) -> str:
    """The view key of a bucket: ``'<watch>|<start ISO 8601>'``."""
    return f"{watch_id}|{start.astimezone(UTC).isoformat()}"


class TopMention(SampleMention):
    """A sample mention with what a table of top mentions shows beside it."""

    sentiment: Literal["negative", "neutral", "positive"]
    posted_at: datetime


class Bucket(BaseModel):
    """One watch's counts over one event-time interval: the record on escucha.aggregates.

    ``terms``, ``authors`` and ``top`` are the top k of the bucket (settings.aggregates), so
    merging buckets gives a top k of top ks: exact for anything that ranks in one bucket,
    an approximation for what is spread thinly across many.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")
    v: int = Field(default=BUCKET_VERSION, ge=1, le=BUCKET_VERSION, description="Schema version.")
    watch_id: str
    start: datetime = Field(description="Start of the interval, UTC, a multiple of size_s.")
    size_s: int = Field(gt=0)
    count: int = Field(default=0, ge=0)
    sentiment: dict[str, int] = Field(default_factory=lambda: _zeros(SENTIMENTS))
    priority_sum: int = Field(default=0, ge=0, description="Sum of priorities (for the mean).")
    reach: int = Field(default=0, ge=0, description="Sum of the authors' followers.")
    engagement: int = Field(default=0, ge=0, description="Sum of likes + shares + replies.")
    languages: dict[str, int] = Field(default_factory=dict, description="'und' when unknown.")
    sources: dict[str, int] = Field(default_factory=dict)
    terms: dict[str, int] = Field(default_factory=dict)
    authors: dict[str, int] = Field(default_factory=dict)
    top: list[TopMention] = Field(default_factory=list,
                                  description="Highest priority first, ties by key.")
    offsets: dict[str, int] = Field(default_factory=dict,
                                    description="'topic:partition' → last offset absorbed.")

    @field_validator("start")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # Keys compare datetimes: one timezone everywhere, naive taken as UTC.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @property
    def id(self) -> str:
        return bucket_id(self.watch_id, self.start)

    @property
    def key(self) -> BucketKey:
        return self.watch_id, self.start


def _rank(m: TopMention) -> tuple[int, str]:
    return -m.priority, m.key


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

    @classmethod
    def of(cls, b: Bucket) -> _Acc:
        return cls(count=b.count, sentiment=Counter(b.sentiment), priority_sum=b.priority_sum,
                   reach=b.reach, engagement=b.engagement, languages=Counter(b.languages),
                   sources=Counter(b.sources), terms=Counter(b.terms),
                   authors=Counter(b.authors), top=sorted(b.top, key=_rank),
                   offsets=dict(b.offsets))


def _top(counts: Counter[str], k: int) -> dict[str, int]:
    # Ties by name, so a snapshot does not depend on insertion order.
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k])


class BucketBuilder:
    """Folds enriched mentions into the buckets of the watches this worker owns."""

    def __init__(self, *, size_s: int, top_mentions: int = 5, top_terms: int = 20,
                 top_authors: int = 10, keep_s: int = 6 * 3600,
                 watch_terms: Mapping[str, Iterable[str]] | None = None) -> None:
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

    def __contains__(self, key: object) -> bool:
        return key in self._buckets

    def __len__(self) -> int:
        return len(self._buckets)

    def key_of(self, em: EnrichedMention) -> BucketKey:
        return em.watch_id, bucket_start(em.mention.created_at, self.size_s)

    def add(self, em: EnrichedMention, *, position: str, offset: int) -> BucketKey | None:
        """Count ``em`` in its bucket; None if ``offset`` of ``position`` is already in it.

        ``position`` is ``'topic:partition'``. A partition's messages arrive in order, so
        every message of a bucket up to the last absorbed offset is in its counts: after a
        crash the re-delivered ones are skipped instead of counted twice.
        """
        key = self.key_of(em)
        acc = self._buckets.get(key)
        if acc is None:
            acc = self._buckets[key] = _Acc()
        if offset <= acc.offsets.get(position, -1):
            return None
        m = em.mention
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
            acc.top = heapq.nsmallest(self.top_mentions, [*acc.top, top], key=_rank)
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
            terms=_top(acc.terms, self.top_terms), authors=_top(acc.authors, self.top_authors),
            top=list(acc.top[: self.top_mentions]), offsets=dict(acc.offsets))

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
        all but the latest hours only ever see stragglers.
        """
        old = [k for k in self._buckets if k not in self._dirty
               and k[1] < self._newest.get(k[0], k[1]) - self.keep]
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


class Point(BaseModel):
    """One step of a chart."""

    model_config = ConfigDict(frozen=True)
    start: datetime
    count: int
    negative: int


class Summary(BaseModel):
    """Buckets merged over ``[since, until)``.

    ``terms``, ``authors`` and ``top`` are a top k of the buckets' own top ks: exact for
    anything that ranked in the buckets it appeared in, a lower bound for the long tail.
    """

    model_config = ConfigDict(frozen=True)
    since: datetime
    until: datetime
    buckets: int = Field(description="Buckets merged.")
    count: int
    sentiment: dict[str, int]
    sentiment_share: dict[str, float] = Field(description="Fractions 0..1; all 0 when empty.")
    mean_priority: float
    reach: int
    engagement: int
    languages: dict[str, int]
    sources: dict[str, int]
    terms: dict[str, int]
    authors: dict[str, int]
    top: list[TopMention]


def _in(bucket: Bucket, since: datetime, until: datetime) -> bool:
    return since <= bucket.start < until


def summarize(buckets: Iterable[Bucket], *, since: datetime, until: datetime,
              top_terms: int = 20, top_authors: int = 10, top_mentions: int = 5) -> Summary:
    """Merge the buckets whose start is in ``[since, until)``.

    Terms, authors and top mentions are a top k of each bucket's top k (see :class:`Bucket`):
    cheap to store for any period, exact for what leads, approximate for the long tail.
    """
    n = count = priority = reach = engagement = 0
    sentiment: Counter[str] = Counter(dict.fromkeys(SENTIMENTS, 0))
    languages: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    terms: Counter[str] = Counter()
    authors: Counter[str] = Counter()
    top: dict[str, TopMention] = {}
    for b in buckets:
        if not _in(b, since, until):
            continue
        n += 1
        count += b.count
        priority += b.priority_sum
        reach += b.reach
        engagement += b.engagement
        sentiment.update(b.sentiment)
        languages.update(b.languages)
        sources.update(b.sources)
        terms.update(b.terms)
        authors.update(b.authors)
        for t in b.top:
            top.setdefault(t.key, t)
    return Summary(
        since=since, until=until, buckets=n, count=count,
        sentiment={s: sentiment[s] for s in SENTIMENTS},
        sentiment_share={s: sentiment[s] / count if count else 0.0 for s in SENTIMENTS},
        mean_priority=priority / count if count else 0.0, reach=reach, engagement=engagement,
        languages=_top(languages, len(languages)), sources=_top(sources, len(sources)),
        terms=_top(terms, top_terms), authors=_top(authors, top_authors),
        top=sorted(top.values(), key=_rank)[:top_mentions])


def series(buckets: Iterable[Bucket], *, since: datetime, until: datetime,
           step_s: int) -> list[Point]:
    """Mentions and negative mentions per ``step_s`` over ``[since, until)``, zero-filled.

    A bucket counts in the step its start falls in: use a step that is a multiple of the
    bucket size, or a finer step only shows where each bucket began.
    """
    if step_s <= 0:
        raise ValueError(f"step_s must be positive, got {step_s}")
    span = (until - since).total_seconds()
    steps = max(0, math.ceil(span / step_s))
    counts, negative = [0] * steps, [0] * steps
    for b in buckets:
        if not _in(b, since, until):
            continue
        i = int((b.start - since).total_seconds() // step_s)
        counts[i] += b.count
        negative[i] += b.sentiment.get("negative", 0)
    return [Point(start=since + timedelta(seconds=i * step_s), count=counts[i],
                  negative=negative[i]) for i in range(steps)]


def share_of_voice(summaries: Mapping[str, Summary]) -> dict[str, float]:
    """Each watch's percent of all their mentions; sums to 100 unless all are empty (all 0)."""
    total = sum(s.count for s in summaries.values())
    return {w: (100.0 * s.count / total if total else 0.0) for w, s in summaries.items()}
