"""Per-watch buckets: flooring, offset dedup, snapshots, merging, charts, eviction, resuming.

Mentions are built by hand so every expected number can be read off the test.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest

from agents.aggregate import builder as builder_module
from agents.aggregate.builder import BucketBuilder
from streams.config.settings import ConfigError, load_settings
from streams.core.buckets import Bucket, bucket_id, bucket_start, series, share_of_voice, summarize
from streams.core.records import (
    Author,
    Engagement,
    EnrichedMention,
    Mention,
    ModelInfo,
    Sentiment,
    key_digest,
)
from streams.core.terms import terms_of
from streams.runtime.views import AggregateView

T0 = datetime(2024, 4, 29, 12, 0, tzinfo=UTC)
POS = "escucha.mentions.enriched:0"
MODEL = ModelInfo(id="test", version="1")
_ids = itertools.count()


def em(at: datetime, label: str = "neutral", *, watch: str = "acme", text: str = "acme order",
       handle: str = "ana", followers: int = 0, priority: int = 10, language: str | None = "en",
       source: str = "sim", likes: int = 0, shares: int = 0, replies: int = 0,
       ident: str | None = None) -> EnrichedMention:
    mention = Mention(
        source=source, id=ident or str(next(_ids)), author=Author(handle=handle,
                                                                  followers=followers),
        text=text, language=language, created_at=at,
        engagement=Engagement(likes=likes, shares=shares, replies=replies))
    return EnrichedMention(
        mention=mention, watch_id=watch, watch_ids=[watch],
        sentiment=Sentiment(label=label, scores={label: 1.0}),  # type: ignore[arg-type]
        priority=priority, model=MODEL, classified_at=at + timedelta(seconds=2))


def feed(builder: BucketBuilder, mentions: list[EnrichedMention], *, first: int = 0) -> None:
    for offset, m in enumerate(mentions, start=first):
        builder.add(m, position=POS, offset=offset)


# -- flooring -------------------------------------------------------------------------------

def test_bucket_start_floors_to_the_size_in_utc() -> None:
    assert bucket_start(T0 + timedelta(minutes=7, seconds=30), 300) == T0 + timedelta(minutes=5)
    assert bucket_start(T0 + timedelta(minutes=5), 300) == T0 + timedelta(minutes=5)
    assert bucket_start(T0 + timedelta(minutes=4, seconds=59.999), 300) == T0
    assert bucket_start(T0 + timedelta(minutes=59), 3600) == T0
    # Naive is UTC; another offset is converted first.
    assert bucket_start(datetime(2024, 4, 29, 12, 3), 60) == T0 + timedelta(minutes=3)
    cest = timezone(timedelta(hours=2))
    start = bucket_start(datetime(2024, 4, 29, 14, 7, tzinfo=cest), 300)
    assert start == T0 + timedelta(minutes=5) and start.tzinfo == UTC
    with pytest.raises(ValueError):
        bucket_start(T0, 0)


def test_terms_skip_stop_words_digits_and_the_watch_own_terms() -> None:
    text = "Acme really ruined my ORDER again #AcmeFail 2024 refund"
    assert terms_of(text, exclude=frozenset({"acme"})) == {"ruined", "order", "#acmefail",
                                                          "refund"}


# -- adding and deduplicating ------------------------------------------------------------

def test_add_counts_once_per_offset_and_skips_redelivery() -> None:
    b = BucketBuilder(size_s=300)
    ms = [em(T0 + timedelta(seconds=i)) for i in range(3)]
    keys = [b.add(m, position=POS, offset=i) for i, m in enumerate(ms)]
    assert keys == [("acme", T0)] * 3
    # Re-delivered after a crash: offsets already absorbed are skipped...
    assert b.add(ms[1], position=POS, offset=1) is None
    assert b.add(ms[2], position=POS, offset=2) is None
    # ...but the same offset of another partition is another message.
    assert b.add(em(T0), position="escucha.mentions.enriched:1", offset=1) == ("acme", T0)
    snap = b.snapshot(("acme", T0))
    assert snap.count == 4
    assert snap.offsets == {POS: 2, "escucha.mentions.enriched:1": 1}


def test_snapshot_numbers() -> None:
    b = BucketBuilder(size_s=300, top_mentions=2, top_terms=2, top_authors=1,
                      watch_terms={"acme": ["Acme"]})
    feed(b, [
        em(T0, "negative", text="acme refund refund please", handle="ana", followers=100,
           priority=80, likes=1, shares=2, replies=3, ident="a"),
        em(T0 + timedelta(seconds=10), "negative", text="acme refund late", handle="ana",
           followers=50, priority=80, language=None, ident="b"),
        em(T0 + timedelta(seconds=20), "positive", text="acme love delivery", handle="bo",
           followers=5, priority=30, source="rss", likes=10, ident="c"),
        em(T0 + timedelta(seconds=299), "neutral", text="acme delivery late", handle="cy",
           priority=90, ident="d"),
        # The next bucket.
        em(T0 + timedelta(seconds=300), "negative", handle="dee", priority=99, ident="e"),
    ])
    snap = b.snapshot(("acme", T0))
    assert snap.count == 4 and snap.size_s == 300 and snap.start == T0
    assert snap.sentiment == {"negative": 2, "neutral": 1, "positive": 1}
    assert snap.priority_sum == 80 + 80 + 30 + 90
    assert snap.reach == 155
    assert snap.engagement == 1 + 2 + 3 + 10
    assert snap.languages == {"en": 3, "und": 1}
    assert snap.sources == {"sim": 3, "rss": 1}
    # Terms once per mention; the watch's own term is not one; top 2, ties by name.
    assert snap.terms == {"delivery": 2, "late": 2}
    assert snap.authors == {"ana": 2}
    # Highest priority first, ties by key, at most top_mentions.
    assert [(t.key, t.priority, t.sentiment) for t in snap.top] == [
        ("sim:d", 90, "neutral"), ("sim:a", 80, "negative")]
    assert snap.top[0].posted_at == T0 + timedelta(seconds=299)
    assert b.snapshot(("acme", T0 + timedelta(minutes=5))).count == 1
    # JSON round trip: what goes on the topic comes back equal.
    assert Bucket.model_validate_json(snap.model_dump_json()) == snap
    assert snap.id == bucket_id("acme", T0) == "acme|2024-04-29T12:00:00+00:00"


def test_dirty_and_clean() -> None:
    b = BucketBuilder(size_s=60)
    feed(b, [em(T0), em(T0 + timedelta(minutes=1)), em(T0 + timedelta(minutes=1), watch="glx")])
    assert b.dirty() == [("acme", T0), ("acme", T0 + timedelta(minutes=1)),
                         ("glx", T0 + timedelta(minutes=1))]
    b.mark_clean([("acme", T0)])
    assert ("acme", T0) not in b.dirty() and len(b.dirty()) == 2
    b.mark_clean()
    assert b.dirty() == []
    b.mark_dirty([("acme", T0), ("nobody", T0)])  # unknown keys are ignored
    assert b.dirty() == [("acme", T0)]


# -- memory ------------------------------------------------------------------------------

def test_eviction_forgets_old_clean_buckets_only() -> None:
    b = BucketBuilder(size_s=300, keep_s=3600)
    feed(b, [em(T0), em(T0 + timedelta(minutes=30)), em(T0 + timedelta(hours=2))])
    assert b.evict() == 0  # all dirty: not stored yet
    b.mark_clean([("acme", T0)])
    # First sealed: its keys dropped, stored once more without them, then evicted.
    assert b.evict() == 0 and b.dirty()[0] == ("acme", T0)
    assert b.snapshot(("acme", T0)).keys == [] and b.snapshot(("acme", T0)).count == 1
    b.mark_clean([("acme", T0)])
    assert b.evict() == 1
    assert ("acme", T0) not in b and ("acme", T0 + timedelta(minutes=30)) in b
    b.mark_clean()
    assert b.evict() == 0  # 30 min is more than an hour before 2 h: sealed first
    b.mark_clean()
    assert b.evict() == 1
    assert len(b) == 1


def _reclassified(m: EnrichedMention) -> EnrichedMention:
    """The same mention as classify writes it again after a crash: a new copy, same key."""
    return m.model_copy(update={"classified_at": m.classified_at + timedelta(seconds=30)})


def test_a_mention_written_again_at_a_new_offset_is_counted_once() -> None:
    b = BucketBuilder(size_s=300)
    ms = [em(T0 + timedelta(seconds=i), "negative", ident=f"k{i}") for i in range(4)]
    feed(b, ms)
    assert b.add(_reclassified(ms[1]), position=POS, offset=10) is None
    assert b.add(_reclassified(ms[3]), position="escucha.mentions.enriched:2", offset=0) is None
    snap = b.snapshot(("acme", T0))
    assert snap.count == 4 and snap.sentiment["negative"] == 4
    assert b.duplicates == 2
    assert len(snap.keys) == 4
    # A new mention still counts.
    assert b.add(em(T0 + timedelta(seconds=9), ident="k9"), position=POS, offset=11)
    assert b.snapshot(("acme", T0)).count == 5


def test_a_restart_recognises_mentions_from_the_stored_keys() -> None:
    first = BucketBuilder(size_s=300)
    ms = [em(T0 + timedelta(seconds=i), ident=f"r{i}") for i in range(5)]
    feed(first, ms)
    stored = Bucket.model_validate_json(first.snapshot(("acme", T0)).model_dump_json())
    second = BucketBuilder(size_s=300)
    second.seed(stored)
    # Re-classified by the new worker at offsets past anything stored: keys catch them.
    for i, m in enumerate(ms):
        assert second.add(_reclassified(m), position=POS, offset=100 + i) is None
    assert second.snapshot(("acme", T0)).count == 5
    assert second.duplicates == 5


def test_a_bucket_keeps_the_newest_keys_only_and_its_counts_stay_exact(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(builder_module, "MAX_BUCKET_KEYS", 50)
    b = BucketBuilder(size_s=300)
    ms = [em(T0 + timedelta(seconds=i / 2), ident=f"b{i}") for i in range(120)]
    feed(b, ms)
    snap = b.snapshot(("acme", T0))
    assert snap.count == 120 and snap.keys == [key_digest(m.mention.key) for m in ms[-50:]]
    # A stored, then seeded bucket goes on evicting its oldest keys first.
    second = BucketBuilder(size_s=300)
    second.seed(Bucket.model_validate_json(snap.model_dump_json()))
    assert second.add(_reclassified(ms[-1]), position=POS, offset=500) is None  # recognised
    second.add(em(T0 + timedelta(seconds=99), ident="b-new"), position=POS, offset=501)
    assert second.snapshot(("acme", T0)).keys[0] == key_digest(ms[-49].mention.key)
    # Past the bound: the documented trade, an old mention read again counts twice.
    assert second.add(_reclassified(ms[0]), position=POS, offset=502) is not None


def test_the_key_bound_keeps_a_snapshot_well_under_a_record() -> None:
    b = BucketBuilder(size_s=300)
    feed(b, [em(T0 + timedelta(seconds=i / 200), ident=f"full{i}", text=f"acme order {i}")
             for i in range(builder_module.MAX_BUCKET_KEYS + 10)])
    assert len(b.snapshot(("acme", T0)).model_dump_json()) < 800_000


def test_a_version_1_snapshot_without_keys_still_seeds() -> None:
    old = Bucket.model_validate({"v": 1, "watch_id": "acme", "start": T0.isoformat(),
                                 "size_s": 300, "count": 3})
    b = BucketBuilder(size_s=300)
    b.seed(old)
    assert b.add(em(T0, ident="new"), position=POS, offset=0)
    assert b.snapshot(("acme", T0)).count == 4


def test_retain_drops_buckets_of_partitions_owned_elsewhere() -> None:
    b = BucketBuilder(size_s=300)
    b.add(em(T0), position=POS, offset=0)
    b.add(em(T0, watch="glx"), position="escucha.mentions.enriched:3", offset=0)
    assert b.retain({POS}) == 1
    assert ("acme", T0) in b and ("glx", T0) not in b
    assert b.dirty() == [("acme", T0)]


def test_seed_and_continue_after_a_restart() -> None:
    first = BucketBuilder(size_s=300)
    ms = [em(T0 + timedelta(seconds=i), "negative" if i % 2 else "neutral", priority=i)
          for i in range(6)]
    feed(first, ms[:4])
    stored = Bucket.model_validate_json(first.snapshot(("acme", T0)).model_dump_json())

    # A new worker: re-delivered offsets 2..3 are skipped, 4..5 continue the counts.
    second = BucketBuilder(size_s=300)
    second.seed(stored)
    assert second.dirty() == []
    assert [second.add(m, position=POS, offset=i) for i, m in enumerate(ms) if i >= 2] == [
        None, None, ("acme", T0), ("acme", T0)]
    snap = second.snapshot(("acme", T0))
    assert snap.count == 6
    assert snap.sentiment == {"negative": 3, "neutral": 3, "positive": 0}
    assert snap.priority_sum == sum(range(6))
    assert [t.priority for t in snap.top] == [5, 4, 3, 2, 1]
    # A snapshot of another bucket size is not mixed in.
    other = BucketBuilder(size_s=60)
    other.seed(stored)
    assert len(other) == 0


# -- reading back ------------------------------------------------------------------------

def _buckets() -> list[Bucket]:
    b = BucketBuilder(size_s=300, top_mentions=2, top_terms=3, top_authors=2)
    feed(b, [
        em(T0, "negative", text="outage outage", handle="ana", followers=10, priority=50,
           ident="1"),
        em(T0 + timedelta(minutes=1), "positive", text="great service", handle="bo",
           priority=20, ident="2"),
        em(T0 + timedelta(minutes=5), "negative", text="outage again refund", handle="ana",
           followers=10, priority=70, language="es", ident="3"),
        em(T0 + timedelta(minutes=5), "negative", text="refund now", handle="cy", priority=50,
           ident="0"),
        em(T0 + timedelta(minutes=20), "neutral", text="service window", handle="di",
           priority=95, ident="4"),
    ])
    return [b.snapshot(k) for k in b.dirty()]


def test_summarize_merges_the_buckets_in_range() -> None:
    s = summarize(_buckets(), since=T0, until=T0 + timedelta(minutes=10), top_terms=2,
                  top_authors=1, top_mentions=2)
    assert s.buckets == 2 and s.count == 4
    assert s.sentiment == {"negative": 3, "neutral": 0, "positive": 1}
    assert s.sentiment_share == {"negative": 0.75, "neutral": 0.0, "positive": 0.25}
    assert s.mean_priority == (50 + 20 + 70 + 50) / 4
    assert s.reach == 20
    assert s.languages == {"en": 3, "es": 1}
    assert s.terms == {"outage": 2, "refund": 2}
    assert s.authors == {"ana": 2}
    # Top of the tops: priority first, ties by key (sim:0 before sim:1).
    assert [(t.key, t.priority) for t in s.top] == [("sim:3", 70), ("sim:0", 50)]
    # until is exclusive, since inclusive.
    later = summarize(_buckets(), since=T0 + timedelta(minutes=5),
                      until=T0 + timedelta(minutes=20))
    assert later.count == 2 and later.buckets == 1


def test_summarize_of_nothing_is_zero() -> None:
    s = summarize([], since=T0, until=T0 + timedelta(hours=1))
    assert s.count == 0 and s.mean_priority == 0.0 and s.top == []
    assert s.sentiment_share == {"negative": 0.0, "neutral": 0.0, "positive": 0.0}


def test_series_is_zero_filled() -> None:
    points = series(_buckets(), since=T0, until=T0 + timedelta(minutes=30), step_s=600)
    assert [(p.start, p.count, p.negative) for p in points] == [
        (T0, 4, 3),
        (T0 + timedelta(minutes=10), 0, 0),
        (T0 + timedelta(minutes=20), 1, 0),
    ]
    fine = series(_buckets(), since=T0, until=T0 + timedelta(minutes=25), step_s=300)
    assert [p.count for p in fine] == [2, 2, 0, 0, 1]
    with pytest.raises(ValueError):
        series([], since=T0, until=T0, step_s=0)


def test_share_of_voice() -> None:
    b = BucketBuilder(size_s=300)
    feed(b, [em(T0, watch="acme")])
    feed(b, [em(T0, watch="glx") for _ in range(3)], first=10)
    feed(b, [em(T0, watch="ini")], first=20)
    window = {"since": T0, "until": T0 + timedelta(hours=1)}
    sums = {w: summarize([b.snapshot((w, T0))], **window) for w in ("acme", "glx", "ini")}
    sov = share_of_voice(sums)
    assert sov == {"acme": 20.0, "glx": 60.0, "ini": 20.0}
    assert sum(sov.values()) == pytest.approx(100.0)
    empty = summarize([], **window)
    assert share_of_voice({"acme": empty, "glx": empty}) == {"acme": 0.0, "glx": 0.0}


def test_aggregate_view_reads_latest_snapshots_and_ignores_bad_bytes() -> None:
    view = AggregateView(bootstrap="127.0.0.1:9", topic="escucha.aggregates")
    assert view._decode(b"not json") is None
    assert view._decode(b'{"v": 99, "watch_id": "acme"}') is None
    for snap in _buckets():
        decoded = view._decode(snap.model_dump_json().encode())
        assert decoded is not None
        view.items[decoded[0]] = decoded[1]
    hour = T0 + timedelta(hours=1)
    assert [b.start for b in view.buckets("acme", T0, hour)] == [
        T0, T0 + timedelta(minutes=5), T0 + timedelta(minutes=20)]
    assert view.buckets("ac", T0, hour) == []  # an id prefix of another is not it
    assert view.summary("acme", T0, hour).count == 5
    assert [p.count for p in view.series("acme", T0, hour, step_s=1200)] == [4, 1, 0]


# -- settings ------------------------------------------------------------------------------

_WATCHES = [{"id": "acme", "name": "Acme", "terms": ["acme"], "competitors": ["globex"]},
            {"id": "globex", "name": "Globex", "terms": ["globex"]}]


def test_settings_aggregates_and_competitors() -> None:
    s = load_settings(None, watches=_WATCHES, aggregates={"bucket_s": 900})
    assert s.aggregates.bucket_s == 900 and s.aggregates.top_terms == 20
    assert s.watches[0].competitors == ["globex"]
    with pytest.raises(ConfigError) as info:
        load_settings(None, watches=_WATCHES, aggregates={"bucket_s": 420})
    assert "aggregates.bucket_s" in str(info.value) and "3600" in str(info.value)
    with pytest.raises(ConfigError):
        load_settings(None, watches=_WATCHES, aggregates={"bucket_s": 30})


def test_settings_refuse_unknown_competitors() -> None:
    bad = [{**_WATCHES[0], "competitors": ["globex", "initech"]}, _WATCHES[1]]
    with pytest.raises(ConfigError) as info:
        load_settings(None, watches=bad)
    assert "'initech'" in str(info.value) and "watches.0.competitors.1" in str(info.value)
    selfish = [{**_WATCHES[0], "competitors": ["acme"]}, _WATCHES[1]]
    with pytest.raises(ConfigError) as info:
        load_settings(None, watches=selfish)
    assert "own competitor" in str(info.value)


def test_a_straggler_for_an_evicted_bucket_continues_its_own_count() -> None:
    # The worker's view may not have read its own last snapshot back yet: the builder keeps
    # that snapshot itself, so the straggler adds to 2, not to a stale stored 1.
    b = BucketBuilder(size_s=300, keep_s=3600)
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    first = b.add(em(t0), position="t:0", offset=1)
    assert first is not None
    b.mark_clean()
    b.add(em(t0 + timedelta(hours=3)), position="t:0", offset=2)
    b.add(em(t0 + timedelta(minutes=1), watch="globex"), position="t:1", offset=1)
    b.mark_clean()
    assert b.evict() == 0  # sealed first: stored once more without its keys
    b.mark_clean()
    assert b.evict() == 1 and first not in b  # per watch: globex's new bucket keeps its own
    assert (first[0], first[1]) not in b
    kept = b.evicted(first)
    assert kept is not None and kept.count == 1
    b.seed(kept)
    b.add(em(t0 + timedelta(minutes=2)), position="t:1", offset=5)
    assert b.snapshot(first).count == 2
    assert b.evicted(first) is None


def test_each_duplicate_is_told_to_the_metric_hook() -> None:
    told: list[int] = []
    b = BucketBuilder(size_s=300, on_duplicate=lambda: told.append(1))
    m = em(T0, ident="d1")
    b.add(m, position=POS, offset=0)
    b.add(m, position=POS, offset=1)
    assert len(told) == b.duplicates == 1
