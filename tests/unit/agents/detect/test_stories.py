"""Stories: copies fold into one story, other tweets about the brand do not; a copy-paste
storm inside an ordinary spike is reported as a story and flagged as a campaign."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest

from agents.detect import stories
from agents.detect.stories import CAMPAIGN_SHARE, StoryIndex, normalise, summarise, tally
from streams.core.records import EnrichedMention, Evidence, Signal, parse
from tests.unit.agents.detect.story_corpus import (
    TEST_SEED,
    VALIDATION_SEEDS,
    labelled_set,
    score,
    storm_texts,
    varied_negatives,
)
from tests.unit.agents.detect.test_detectors import (
    START,
    Traffic,
    engine,
    feed,
    merged,
    mins,
    of,
    warm,
)

STORM = "Acme charger exploded on my nightstand, it is a fire hazard, recall it now"


def test_normalise_drops_rt_handles_links_emoji_case_and_punctuation() -> None:
    copies = ["RT @kenji_2: Acme charger EXPLODED!!! \U0001F525 https://t.co/abc @AcmeSupport",
              "@lucia acme   charger exploded www.example.com/x?y=1",
              "Acme charger exploded \u2026 \U0001F621\U0001F621"]
    assert {normalise(t) for t in copies} == {"acme charger exploded"}
    assert normalise("https://only.example/a @who \U0001F525") == ""


def _ids(index: StoryIndex, texts: list[str]) -> list[str]:
    return [index.assign(t, key=f"sim:{i}", at=float(i)) for i, t in enumerate(texts)]


@pytest.mark.parametrize("seed", VALIDATION_SEEDS)
def test_the_default_threshold_is_the_validated_one(seed: int) -> None:
    # Chosen here (see agents/detect/stories.py): the default meets both targets on every
    # validation seed, and a lower threshold merges other tweets (why it is not lower).
    items = labelled_set(seed)
    chosen = score(items, _ids(StoryIndex(), [i.text for i in items]))
    assert chosen.recall >= 0.95 and chosen.false_merges <= 0.01
    lower = score(items, _ids(StoryIndex(threshold=0.5), [i.text for i in items]))
    assert lower.false_merges > chosen.false_merges


def test_near_duplicate_recall_and_false_merges_on_the_test_seed() -> None:
    items = labelled_set(TEST_SEED)
    assert len({i.story for i in items}) == 150 and len(items) > 400
    result = score(items, _ids(StoryIndex(), [i.text for i in items]))
    assert result.recall >= 0.95, result
    assert result.false_merges <= 0.01, result


def test_a_storm_of_varied_copies_is_one_story_and_other_complaints_are_not() -> None:
    index = StoryIndex()
    storm = set(_ids(index, storm_texts(5, 300)))
    assert len(storm) == 1
    draw = varied_negatives(5)
    others = [index.assign(draw(), key=f"o:{i}", at=400.0) for i in range(100)]
    assert storm.isdisjoint(others)
    assert len(set(others)) >= 98


def test_the_index_forgets_by_age_and_by_count() -> None:
    index = StoryIndex(window_s=3600, max_stories=3)
    first = index.assign(STORM, key="a:1", at=0.0)
    assert index.assign(STORM.upper(), key="a:2", at=3000.0) == first  # seen recently
    assert index.assign(STORM, key="a:3", at=3000.0 + 3601) != first  # a day... an hour later
    draw = varied_negatives(9)
    for i in range(5):
        index.assign(draw(), key=f"b:{i}", at=7000.0)
    assert len(index) == 3  # least recently seen evicted first


def test_a_seeded_story_keeps_its_stored_id_and_its_bounds() -> None:
    index = StoryIndex(window_s=3600, max_stories=3)
    stored = "0123456789abcdef"  # whatever the index would name it: the stored id is kept
    for i, text in enumerate([STORM, STORM.upper(), f"RT @x: {STORM}"]):
        index.seed(text, story=stored, at=float(i))
    assert len(index) == 1 and len(index._stories[stored].forms) == 1  # near copies: one form
    assert index.assign(f"{STORM} \U0001f621", key="a:9", at=10.0) == stored
    other = varied_negatives(9)()
    assert index.assign(other, key="b:1", at=11.0) != stored
    index.seed("\U0001F525", story="fedcba9876543210", at=12.0)  # nothing to remember
    assert len(index) == 2
    index.seed(other, story="1111111111111111", at=3000.0 + 3601)  # age evicts seeded ones
    assert stored not in index._stories


def test_a_text_with_nothing_left_is_a_story_of_its_own() -> None:
    index = StoryIndex()
    assert index.assign("\U0001F525", key="x:1", at=0) != index.assign("\U0001F525", key="x:2",
                                                                      at=0)
    assert len(index) == 0


def test_summarise_counts_distinct_authors_and_span_and_respects_the_minimum() -> None:
    st: dict[str, object] = {}
    for i in range(stories.CAMPAIGN_MIN - 1):
        tally(st, "100", "s1", text=STORM, author=f"u{i % 5}", negative=True,
              seconds=6000.0 + 30 * i)
    told = summarise(st, [100], negative_only=True)
    assert told.largest is not None
    assert (told.largest.count, told.largest.authors, told.largest.span_min) == (
        stories.CAMPAIGN_MIN - 1, 5, 4)
    assert not told.campaign  # all of the negatives, but fewer than the minimum
    tally(st, "100", "s1", text=STORM, author="u9", negative=True, seconds=6000.0)
    assert summarise(st, [100], negative_only=True).campaign
    assert "campaign" in summarise(st, [100], negative_only=True).line()


def test_a_busy_minute_keeps_its_saved_state_small_and_its_storm_visible() -> None:
    # 2,000 distinct posts in a minute (a busy brand): only the first MAX_STORIES_PER_MIN get
    # rows, the rest are counted; a storm's copies arriving after them still get a row.
    st: dict[str, object] = {}
    for i in range(2000):
        tally(st, "100", f"single{i}", text=f"post number {i} " + "x" * 200, author=f"a{i}",
              negative=True, seconds=6000.0 + i / 40, repeated=False)
    for i in range(12):
        tally(st, "100", "storm", text=STORM, author=f"storm{i}", negative=True,
              seconds=6050.0 + i, repeated=True)
    assert len(json.dumps(st)) < 30_000  # 2,000 rows and samples were ~600 kB
    rows = st["sy"]["100"]  # type: ignore[index]
    assert len(rows) == stories.MAX_STORIES_PER_MIN + 1  # a single post made room: OTHER
    told = summarise(st, [100], negative_only=True)
    assert told.stories == 2001 and told.mentions == 2012
    assert told.largest is not None and told.largest.id == "storm"
    assert (told.largest.count, told.largest.authors) == (12, 12)


# -- a copy-paste storm inside an ordinary spike ---------------------------------------------

def spike(seed: int, storm: int) -> list[EnrichedMention]:
    """Four quiet-hour minutes of traffic, then 20 minutes of distinct complaints from 400
    accounts (30 a minute) and, from the same minute, ``storm`` copies of one text from as
    many accounts, one every 2 s."""
    gen, rng, draw = Traffic(seed), random.Random(seed), varied_negatives(seed)
    at, burst = START + mins(10), []
    while at < START + mins(30):
        burst.append(gen.one(at, "negative", text=draw(), handle=f"critic{rng.randrange(400)}"))
        at += timedelta(seconds=rng.expovariate(0.5))
    copies = [gen.one(START + mins(10) + timedelta(seconds=2 * i + rng.random()), "negative",
                      text=text, handle=f"storm{i}")
              for i, text in enumerate(storm_texts(seed, storm))]
    return merged(gen.stream(START, 40, 6), burst, copies)


def _first_negative_spike(mentions: list[EnrichedMention]) -> Signal:
    fired = of(feed(engine(), warm(), mentions), "negative_spike")
    assert fired, "the spike fires either way: detection thresholds are unchanged"
    return fired[0]


@pytest.mark.parametrize("seed", VALIDATION_SEEDS)
def test_the_campaign_share_separates_storms_from_ordinary_spikes(seed: int) -> None:
    def share(signal: Signal) -> float:
        assert signal.largest_story is not None
        return signal.largest_story.count / signal.observed

    assert share(_first_negative_spike(spike(seed, 0))) < CAMPAIGN_SHARE / 2
    assert share(_first_negative_spike(spike(seed, 100))) > CAMPAIGN_SHARE * 1.5


def test_a_300_account_storm_inside_a_spike_is_reported_as_a_campaign() -> None:
    signal = _first_negative_spike(spike(TEST_SEED, 300))
    big = signal.largest_story
    assert big is not None and signal.campaign
    assert normalise(big.text) == normalise(STORM) or STORM.lower()[:40] in big.text.lower()
    assert big.authors == big.count >= stories.CAMPAIGN_MIN  # one account per copy
    assert signal.stories is not None and 1 < signal.stories < signal.observed
    assert f"\u00d7{big.count} by {big.authors} accounts" in signal.summary
    assert "campaign" in signal.summary
    evidence = Evidence.of(signal)
    assert evidence.campaign and evidence.largest_story == big
    assert evidence.stories == signal.stories
    # Later, wider windows see the storm grow, still one story.
    later = [s for s in feed(engine(), warm(), spike(TEST_SEED, 300))
             if s.detector == "sentiment_shift" and s.largest_story]
    assert later and max(s.largest_story.count for s in later  # type: ignore[union-attr]
                         ) > 100


def test_the_same_spike_without_the_storm_is_no_campaign() -> None:
    signal = _first_negative_spike(spike(TEST_SEED, 0))
    assert not signal.campaign and "campaign" not in signal.summary
    assert signal.largest_story is not None and signal.largest_story.count <= 3


def test_signals_and_evidence_without_stories_still_parse() -> None:
    signal = _first_negative_spike(spike(TEST_SEED, 0))
    old = signal.model_dump(mode="json")
    for key in ("stories", "largest_story", "campaign"):
        del old[key]
    again = parse(Signal, old)
    assert again.stories is None and again.largest_story is None and not again.campaign
    assert Evidence.of(again).largest_story is None
