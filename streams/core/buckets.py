"""Bucket snapshots: the record on ``escucha.aggregates``, and reading them back.

A bucket is one watch over ``[start, start + size_s)`` of *event* time (the posts' own
``created_at``, floored to the bucket size in UTC). The aggregate stage writes them
(``agents/aggregate/builder.py``); :func:`summarize`, :func:`series` and
:func:`share_of_voice` read them back for the console and for reports of any period still
retained.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from streams.core.records import SampleMention

__all__ = [
    "BUCKET_VERSION",
    "Bucket",
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
    "top_counts",
    "top_rank",
]

#: 2: ``keys`` (the identities counted) was added; version 1 snapshots read as having none.
BUCKET_VERSION = 2
SENTIMENTS: tuple[Literal["negative", "neutral", "positive"], ...] = (
    "negative", "neutral", "positive")


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
    keys: list[str] = Field(
        default_factory=list,
        description="key_digest of every mention counted, so a re-read one is counted once; "
        "emptied once the bucket is older than the builder keeps buckets (keep_s).")

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


def top_counts(counts: Counter[str], k: int) -> dict[str, int]:
    """The k largest counts; ties by name, so a snapshot does not depend on insertion order."""
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k])


def top_rank(m: TopMention) -> tuple[int, str]:
    return -m.priority, m.key




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
        languages=top_counts(languages, len(languages)), sources=top_counts(sources, len(sources)),
        terms=top_counts(terms, top_terms), authors=top_counts(authors, top_authors),
        top=sorted(top.values(), key=top_rank)[:top_mentions])


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
