"""DetectionEngine: quiet on ordinary traffic, one explained signal per episode, in event time.

Mentions are built directly by a small seeded generator: Poisson arrivals at a fixed rate a
minute, ~17% negative, thousands of authors, classified 2 s after posting, priority and
reasons from the real scorer (so risk terms count). Nothing sleeps or reads the clock.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agents.detect.detectors import DetectionEngine, binomial_tail, negbin_tail, poisson_tail
from models.priority import score_priority
from streams.config.settings import DetectSettings
from streams.core.records import (
    Author,
    Engagement,
    EnrichedMention,
    Mention,
    ModelInfo,
    Sentiment,
    Signal,
    key_digest,
)

T0 = datetime(2024, 4, 29, tzinfo=UTC)  # a Monday, 00:00 UTC
WATCH = "acme"
MODEL = ModelInfo(id="cardiffnlp/twitter-xlm-roberta-base-sentiment", version="test-3")
#: Ordinary vocabulary: four letters or more, no stop word, no risk term.
WORDS = ("order", "delivery", "support", "price", "update", "store", "service", "quality",
         "review", "packaging", "shipping", "refund", "warranty", "battery", "screen",
         "design", "launch", "camera")
SCORES = {"negative": {"negative": 0.85, "neutral": 0.1, "positive": 0.05},
          "neutral": {"negative": 0.1, "neutral": 0.8, "positive": 0.1},
          "positive": {"negative": 0.05, "neutral": 0.15, "positive": 0.8}}
CFG = DetectSettings()


def mins(n: float) -> timedelta:
    return timedelta(minutes=n)


def minute_of(at: datetime) -> int:
    return int(at.timestamp() // CFG.bucket_s)


class Traffic:
    """Deterministic mentions of the watch: one ``random.Random(seed)`` drives everything."""

    def __init__(self, seed: int) -> None:
        self.seed, self.rng, self._n = seed, random.Random(seed), 0

    def one(self, at: datetime, label: str = "neutral", *, text: str | None = None,
            handle: str | None = None, followers: int | None = None, verified: bool = False,
            classified_at: datetime | None = None) -> EnrichedMention:
        rng = self.rng
        self._n += 1
        ident = f"{self.seed}-{self._n}"
        mention = Mention(
            source="sim", id=ident, url=f"https://social.example/p/{ident}",
            author=Author(handle=handle or f"user{rng.randrange(5000)}", verified=verified,
                          followers=rng.randrange(20, 5000) if followers is None else followers),
            text=text or f"{WATCH} {' '.join(rng.sample(WORDS, 3))}", language="en",
            created_at=at, engagement=Engagement(likes=rng.randrange(10)))
        priority, reasons = score_priority(mention, SCORES[label]["negative"])
        return EnrichedMention(
            mention=mention, watch_id=WATCH, watch_ids=[WATCH],
            sentiment=Sentiment(label=label, scores=SCORES[label]),  # type: ignore[arg-type]
            priority=priority, reasons=reasons, model=MODEL,
            classified_at=classified_at or at + timedelta(seconds=2))

    def stream(self, start: datetime, minutes: float, rate: float, *, negative: float = 0.17,
               label: str | None = None, authors: int = 5000,
               text: str | None = None) -> list[EnrichedMention]:
        """Poisson arrivals at ``rate`` a minute for ``minutes`` from ``start``."""
        rng, out, end = self.rng, [], start + mins(minutes)
        at = start + timedelta(seconds=rng.expovariate(rate / 60))
        while at < end:
            lab = label or ("negative" if rng.random() < negative
                            else rng.choice(("neutral", "neutral", "positive")))
            out.append(self.one(at, lab, handle=f"user{rng.randrange(authors)}", text=text))
            at += timedelta(seconds=rng.expovariate(rate / 60))
        return out


def merged(*streams: Iterable[EnrichedMention]) -> list[EnrichedMention]:
    return sorted(itertools.chain(*streams), key=lambda e: e.mention.created_at)


def engine(**overrides: Any) -> DetectionEngine:
    return DetectionEngine(DetectSettings(**overrides), watch_terms=frozenset({WATCH}))


def feed(eng: DetectionEngine, state: dict[str, Any],
         mentions: Iterable[EnrichedMention]) -> list[Signal]:
    out: list[Signal] = []
    for em in mentions:
        out.extend(eng.observe(state, em))
    return out


def of(signals: list[Signal], detector: str) -> list[Signal]:
    return [s for s in signals if s.detector == detector]


WARM_MIN = 240  # history before each event: well past the 120-minute warm-up
START = T0 + mins(WARM_MIN)  # Monday 04:00


@functools.cache
def _warm(negative: float) -> str:
    state: dict[str, Any] = {}
    assert feed(engine(), state, Traffic(1).stream(T0, WARM_MIN, 6, negative=negative)) == []
    return json.dumps(state)


def warm(negative: float = 0.17) -> dict[str, Any]:
    """A fresh copy of a watch's state after four quiet hours at 6 mentions a minute."""
    return dict(json.loads(_warm(negative)))


def negative_burst(seed: int = 3, rate: float = 30,
                   minutes: int = 20) -> tuple[list[EnrichedMention], datetime]:
    """Baseline traffic, and from 04:10 a burst of negative mentions from hundreds of
    authors (by default 30 a minute, five times the usual volume, for 20 minutes)."""
    gen, burst_at = Traffic(seed), START + mins(10)
    return merged(gen.stream(START, minutes + 20, 6),
                  gen.stream(burst_at, minutes, rate, label="negative", authors=400)), burst_at


# -- ordinary traffic ------------------------------------------------------------------------

def test_two_quiet_days_fire_nothing_and_learn_the_baseline() -> None:
    state: dict[str, Any] = {}
    mentions = Traffic(11).stream(T0, 2 * 24 * 60, 6)
    assert len(mentions) > 15_000  # the traffic really is there
    assert feed(engine(), state, mentions) == []
    level = state["lvl"][0]
    assert level == pytest.approx(6, rel=0.15)
    assert state["sh"][1] / state["sh"][0] == pytest.approx(0.17, abs=0.03)
    assert len(json.dumps(state)) < 150_000  # bounded: old minutes are dropped


def test_a_burst_during_warm_up_fires_no_count_detector() -> None:
    gen = Traffic(2)
    burst_at = T0 + mins(30)
    mentions = merged(gen.stream(T0, 90, 6),
                      gen.stream(burst_at, 15, 30, label="negative", authors=300),
                      gen.stream(burst_at, 15, 15, text=f"{WATCH} #brandnew launch review"))
    assert CFG.warmup_min >= 90
    assert feed(engine(), {}, mentions) == []


# -- negative spike --------------------------------------------------------------------------

def test_negative_spike_fires_within_two_minutes_once_per_episode_then_critical() -> None:
    mentions, burst_at = negative_burst()
    state = warm()
    signals = of(feed(engine(), state, mentions), "negative_spike")
    # Twenty minutes of burst: one warning, one critical when it got worse, nothing repeated.
    assert [s.severity for s in signals] == ["warning", "critical"]
    warning, critical = signals
    assert warning.trigger_posted_at is not None and critical.trigger_posted_at is not None
    assert burst_at <= warning.trigger_posted_at <= burst_at + mins(2)
    assert warning.trigger_posted_at <= critical.trigger_posted_at <= burst_at + mins(5)
    assert warning.id != critical.id and len(warning.id) == 16
    burst_keys = {m.mention.key for m in mentions if m.sentiment.label == "negative"}
    for s in signals:
        assert s.watch_id == WATCH and s.model == MODEL
        assert s.window_end - s.window_start == mins(CFG.spike_window_min)
        assert s.window_start <= s.trigger_posted_at <= s.window_end  # type: ignore[operator]
        assert 3 < s.expected < 8  # ~1 negative a minute usually
        assert s.observed > CFG.ratio * s.expected and s.score >= CFG.ratio
        assert s.top_terms and set(s.top_terms) <= set(WORDS)
        assert 0 < len(s.samples) <= 5
        assert all(x.url and x.url.startswith("https://") and x.key in burst_keys
                   for x in s.samples)
        assert "negative mentions in 5 min" in s.summary
        assert "authors" in s.summary and "top authors: @user" in s.summary


def test_negative_spike_fires_again_in_a_later_episode() -> None:
    gen = Traffic(4)
    first, second = START + mins(10), START + mins(100)  # well past the cooldown
    mentions = merged(gen.stream(START, 120, 6),
                      gen.stream(first, 10, 30, label="negative", authors=400),
                      gen.stream(second, 10, 30, label="negative", authors=400))
    signals = of(feed(engine(), warm(), mentions), "negative_spike")
    warnings = [s for s in signals if s.severity == "warning"]
    assert len(warnings) == 2 and warnings[0].id != warnings[1].id
    assert warnings[0].window_end <= second <= warnings[1].window_end


def test_one_account_flooding_is_not_a_spike() -> None:
    gen = Traffic(5)
    flood = [gen.one(START + mins(2) + timedelta(seconds=6 * i), "negative",
                     handle="angry_one", text=f"{WATCH} refund support order")
             for i in range(50)]  # 50 negative mentions in 5 minutes, one author
    background = gen.stream(START, 30, 6)
    # Known words only: emerging_term has no author guard (past its own warm-up it would
    # fire on a new word repeated by one account).
    assert feed(engine(), warm(), merged(background, flood)) == []
    # The same 50 from 50 accounts: a crisis.
    crowd = [em.model_copy(update={"mention": em.mention.model_copy(
        update={"author": Author(handle=f"critic{i}", followers=300)})})
        for i, em in enumerate(flood)]
    assert of(feed(engine(), warm(), merged(background, crowd)), "negative_spike")


# -- sentiment shift -------------------------------------------------------------------------

def test_sentiment_shift_at_flat_volume() -> None:
    mentions = Traffic(6).stream(START, 60, 6, negative=0.65)
    signals = feed(engine(), warm(negative=0.15), mentions)
    shifts = of(signals, "sentiment_shift")
    assert shifts and not of(signals, "volume_spike")
    first = shifts[0]
    assert first.severity == "warning"
    assert first.window_end - first.window_start == mins(CFG.shift_window_min)
    assert first.expected == pytest.approx(0.15, abs=0.05)  # the usual share
    assert first.observed >= first.expected + CFG.shift_min_delta
    assert "negative share" in first.summary and "usual volume" in first.summary
    assert [s.severity for s in shifts] in (["warning"], ["warning", "critical"])


# -- single posts ----------------------------------------------------------------------------

def test_influencer_fires_at_once_by_reach_and_once_per_author() -> None:
    gen, eng, state = Traffic(7), engine(), {}
    at = T0 + mins(5)  # a brand-new watch: deep in warm-up
    [warning] = eng.observe(state, gen.one(at, "negative", handle="bigvoice",
                                           followers=500_000, text="acme support ignored me"))
    assert (warning.detector, warning.severity) == ("influencer", "warning")
    assert warning.observed == 500_000 and warning.samples[0].author == "bigvoice"
    assert warning.samples[0].url and "500,000 followers" in warning.summary
    assert warning.window_start <= warning.window_end and warning.model == MODEL
    [critical] = eng.observe(state, gen.one(at + mins(1), "negative", handle="hugevoice",
                                            followers=2_000_000))
    assert critical.severity == "critical"
    # The same critic again within influencer_cooldown_min: already known (and the quiet
    # period now runs from this post).
    assert eng.observe(state, gen.one(at + mins(60), "negative", handle="bigvoice",
                                      followers=500_000)) == []
    # A positive post by a big account never fires.
    assert eng.observe(state, gen.one(at + mins(61), "positive", handle="hugevoice",
                                      followers=2_000_000)) == []
    # A cooldown after the last post, a new episode.
    later = at + mins(60 + CFG.influencer_cooldown_min + 1)
    [again] = eng.observe(state, gen.one(later, "negative", handle="bigvoice",
                                         followers=500_000))
    assert again.id != warning.id


# -- terms -----------------------------------------------------------------------------------

def test_risk_term_surge() -> None:
    gen = Traffic(8)
    risky = [gen.one(START + mins(1.25 * i), "negative", handle=f"worried{i}",
                     text=f"{WATCH} {('recall', 'lawsuit')[i % 2]} {WORDS[i]}")
             for i in range(12)]  # a dozen in 15 minutes
    assert all(any(r.startswith("risk:") for r in em.reasons) for em in risky)
    signals = of(feed(engine(), warm(), merged(gen.stream(START, 30, 6), risky)),
                 "risk_term_surge")
    assert len(signals) == 1
    [surge] = signals
    assert surge.window_end - surge.window_start == mins(CFG.term_window_min)
    assert surge.observed >= CFG.risk_min and surge.observed > surge.expected
    assert any("recall" in s.text or "lawsuit" in s.text for s in surge.samples)


def test_emerging_term_fires_once_for_a_new_hashtag_not_for_an_old_word() -> None:
    gen = Traffic(9)
    background = gen.stream(START, 40, 6)
    tagged = [gen.one(START + mins(1.5 * i), handle=f"fan{i}",
                      text=f"{WATCH} #acmegate {WORDS[i % len(WORDS)]}") for i in range(20)]
    mentions = merged(background, tagged)
    # By default a watch needs a day of vocabulary before a word can be new to it.
    assert not of(feed(engine(), warm(), mentions), "emerging_term")
    vocabulary_known = engine(emerging_warmup_min=WARM_MIN)
    signals = of(feed(vocabulary_known, warm(), mentions), "emerging_term")
    assert len(signals) == 1
    [new] = signals
    assert "#acmegate" in new.summary and "#acmegate" in new.top_terms
    assert new.observed >= CFG.emerging_min
    assert new.trigger_posted_at is not None
    assert new.trigger_posted_at <= START + mins(15)  # its 8th use was within 15 minutes
    # A word the watch has used all along, surging just as much: not new.
    surge = [gen.one(START + mins(1.5 * i), handle=f"fan{i}", text=f"{WATCH} warranty refund")
             for i in range(20)]
    assert not of(feed(vocabulary_known, warm(), merged(background, surge)), "emerging_term")


def test_term_window_longer_than_explanations_keeps_exact_counts() -> None:
    eng, state = engine(term_window_min=45), {}
    feed(eng, state, Traffic(10).stream(T0, 180, 3))
    in_window = [str(m) for m in range(state["t"] - 44, state["t"] + 1)]
    expected: dict[str, int] = {}
    for m in in_window:
        for term, n in state["tm"].get(m, {}).items():
            expected[term] = expected.get(term, 0) + n
    assert state["wt"] == expected  # nothing left over from minutes out of the window


# -- seasonality -----------------------------------------------------------------------------

def test_a_weekly_peak_is_learnt_not_alerted() -> None:
    """Every Monday 09-12 has 2.5x the volume, with the usual sentiment mix.

    With ``seasonal=False`` the same traffic fires a volume_spike (often a negative_spike
    too) in every Monday peak, the third week's included: the level (half-life 3 h) cannot
    follow a jump at 09:00. With seasonality, week 1 fires (nothing learnt yet) and from the
    second Monday on the hour-of-week factor expects the peak.
    """
    gen, rate, days = Traffic(12), 1.5, 15  # weeks 1 and 2, and Monday of week 3
    mentions: list[EnrichedMention] = []
    for day in range(days):
        midnight = T0 + timedelta(days=day)
        if day % 7 == 0:
            mentions += gen.stream(midnight, 9 * 60, rate)
            mentions += gen.stream(midnight + mins(9 * 60), 180, 2.5 * rate)
            mentions += gen.stream(midnight + mins(12 * 60), 12 * 60, rate)
        else:
            mentions += gen.stream(midnight, 24 * 60, rate)
    # The minute model alone, under Poisson: the hourly model and clumpiness are tested
    # with everyday streams in test_surge.py.
    eng, state = engine(seasonal=True, surge=False, spike_dispersion=0.0,
                        spike_recent_min=0), {}
    signals = feed(eng, state, mentions)
    week3 = T0 + timedelta(days=14)
    assert [s for s in signals if s.window_end > week3] == []
    first_monday = [s for s in signals if s.window_end < T0 + mins(12 * 60)]
    assert of(first_monday, "volume_spike")  # the peak is big enough to matter


def test_a_morning_rise_is_measured_against_the_hour_before() -> None:
    """A new watch's first morning: 0.2 a minute all night, then a rise to 4 a minute over
    three hours. The level learnt overnight (half-life 3 h) lags far behind; the hour before
    each window does not. Off (0), the same morning is a "spike"."""
    gen = Traffic(14)
    mentions = gen.stream(T0, 7 * 60, 0.2)
    for step in range(18):  # ten-minute steps from 0.4 to 4 a minute
        mentions += gen.stream(T0 + mins(7 * 60 + 10 * step), 10, 0.2 + 0.21 * (step + 1))
    quiet = dict(surge=False, spike_dispersion=0.0, min_authors=1)
    assert of(feed(engine(**quiet), {}, mentions), "volume_spike") == []
    assert of(feed(engine(**quiet, spike_recent_min=0), {}, mentions), "volume_spike")


def test_spike_counts_are_judged_as_clumpy_not_poisson() -> None:
    """4.5x for five minutes at 2 a minute: Poisson calls it; with the dispersion of
    real five-minute counts (0.15) it is an ordinary clump. Until the hourly model knows the
    day the dispersion is doubled; a watch with the hourly model off keeps the setting."""
    gen = Traffic(15)
    mentions = gen.stream(T0, 180, 2.0) + gen.stream(T0 + mins(180), 5, 9.0)
    base = dict(surge=False, spike_recent_min=0, min_authors=1)
    assert of(feed(engine(**base, spike_dispersion=0.0), {}, mentions), "volume_spike")
    assert of(feed(engine(**base), {}, mentions), "volume_spike") == []


# -- time: disorder, lateness, skew, silence -------------------------------------------------

def test_disorder_within_a_few_minutes_gives_the_same_episodes() -> None:
    # A burst clear of every severity threshold: 4.3x the volume, 20x the negatives.
    mentions, _ = negative_burst(seed=13, rate=20, minutes=30)
    in_order = feed(engine(), warm(), mentions)
    rng = random.Random(99)
    shuffled = sorted(mentions, key=lambda e: e.mention.created_at + timedelta(
        seconds=rng.uniform(0, 180)))  # each mention up to 3 minutes late
    first = feed(engine(), warm(), shuffled)
    # Replaying the same disorder (a restart, a backtest) gives the same ids.
    assert [s.model_dump() for s in feed(engine(), warm(), shuffled)] == \
        [s.model_dump() for s in first]
    # The same episodes, each within the disorder's span. The ids differ: an id names the
    # window in which its detector fired, and which window that is depends on arrival order.
    key = lambda s: (s.detector, s.severity)  # noqa: E731
    assert sorted(map(key, first)) == sorted(map(key, in_order))
    for a, b in zip(sorted(in_order, key=key), sorted(first, key=key), strict=True):
        assert abs(a.window_start - b.window_start) <= mins(3)


def test_mentions_later_than_allowed_are_not_counted_but_an_influencer_fires() -> None:
    gen, eng, state = Traffic(14), engine(), warm()
    now = state["t"]
    too_late = datetime.fromtimestamp((now - CFG.lateness_min - 5) * 60 + 20, UTC)
    before = list(state["m"][str(minute_of(too_late))])
    late = [gen.one(too_late + timedelta(seconds=i), "negative", handle=f"late{i}")
            for i in range(40)]
    assert feed(eng, state, late) == []
    assert state["m"][str(minute_of(too_late))] == before
    [signal] = eng.observe(state, gen.one(too_late, "negative", handle="bigvoice",
                                          followers=800_000))
    assert signal.detector == "influencer"
    # Within the allowed lateness, a mention still counts in its own minute.
    in_time = datetime.fromtimestamp((now - CFG.lateness_min + 2) * 60 + 20, UTC)
    count = state["m"].get(str(minute_of(in_time)), [0])[0]
    eng.observe(state, gen.one(in_time, "neutral"))
    assert state["m"][str(minute_of(in_time))][0] == count + 1
    assert state["t"] == now


def test_a_post_dated_in_the_future_is_clamped_to_its_classification_time() -> None:
    gen, eng, state = Traffic(15), engine(), warm()
    classified = START + mins(1)
    skewed = gen.one(classified + timedelta(hours=1), "negative", handle="fastclock",
                     followers=300_000, classified_at=classified)
    [signal] = eng.observe(state, skewed)
    clamped = classified + timedelta(seconds=CFG.skew_tolerance_s)
    assert state["t"] == minute_of(clamped)  # not an hour ahead
    assert state["m"][str(minute_of(clamped))][1] >= 1
    assert signal.window_start == clamped and signal.window_start <= signal.window_end
    # Everyone else's "now" did not jump: mentions of this minute still count.
    on_time = gen.one(classified, "neutral")
    count = state["m"].get(str(minute_of(classified)), [0])[0]
    assert eng.observe(state, on_time) == []
    assert state["m"][str(minute_of(classified))][0] == count + 1


@pytest.mark.parametrize("silent_min", [6 * 60, 24 * 60, 7 * 24 * 60, 30 * 24 * 60])
def test_traffic_resuming_after_a_long_silence_is_not_a_spike(silent_min: int) -> None:
    # A silence the baseline cannot explain is taken as missing data (a source outage):
    # the level waits where it was, so the usual rate coming back is usual, and a crisis
    # coming back is still caught at once (no second warm-up).
    gen, eng, state = Traffic(16), engine(), warm()
    level = state["lvl"][0]
    back = START + mins(silent_min)
    assert feed(eng, state, gen.stream(back, 180, 6)) == []
    assert state["lvl"][0] == pytest.approx(level, rel=0.2)
    crisis = back + mins(180)
    signals = feed(eng, state, merged(gen.stream(crisis, 10, 6),
                                      gen.stream(crisis, 10, 30, label="negative")))
    assert of(signals, "negative_spike")


# -- determinism -----------------------------------------------------------------------------

def test_same_input_same_signals_and_state_survives_json_mid_stream() -> None:
    mentions, _ = negative_burst(seed=17)
    reference = [s.model_dump() for s in feed(engine(), warm(), mentions)]
    assert reference  # the scenario fires
    assert [s.model_dump() for s in feed(engine(), warm(), mentions)] == reference
    # As the detect agent does: the state goes to a table (JSON) and back, here every 97
    # mentions, burst included; the signals are the same to the byte.
    eng, state, out = engine(), warm(), []
    for i, em in enumerate(mentions):
        if i % 97 == 0:
            state = json.loads(json.dumps(state))
        out.extend(eng.observe(state, em))
    assert [s.model_dump() for s in out] == reference


# -- tails -----------------------------------------------------------------------------------

@pytest.mark.parametrize("lam", [0.3, 1.0, 2.5, 7.0])
def test_poisson_tail_matches_direct_sum(lam: float) -> None:
    for k in range(0, 25):
        below = math.fsum(math.exp(-lam) * lam**i / math.factorial(i) for i in range(k))
        assert poisson_tail(k, lam) == pytest.approx(1 - below, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(("mean", "phi"), [(0.4, 0.5), (3.0, 0.1), (10.0, 0.3), (25.0, 1.5)])
def test_negbin_tail_matches_direct_sum(mean: float, phi: float) -> None:
    r = 1 / phi
    p = r / (r + mean)

    def pmf(j: int) -> float:
        return math.exp(math.lgamma(j + r) - math.lgamma(j + 1) - math.lgamma(r)
                        + r * math.log(p) + j * math.log1p(-p))

    for k in range(0, 60):
        below = math.fsum(pmf(j) for j in range(k))
        assert negbin_tail(k, mean, phi) == pytest.approx(1 - below, rel=1e-7, abs=1e-10)


def test_negbin_tail_is_poisson_without_dispersion_and_wider_with_it() -> None:
    for k in (1, 5, 12, 30):
        assert negbin_tail(k, 6.0, 0.0) == poisson_tail(k, 6.0)
        assert negbin_tail(k, 6.0, 1e-9) == pytest.approx(poisson_tail(k, 6.0), rel=1e-5)
    # Above the mean, a clumpy stream makes the same count less surprising, more so the
    # clumpier it is: 25 against 10 is a crisis for Poisson, not for a dispersion of 0.5.
    assert poisson_tail(25, 10.0) < negbin_tail(25, 10.0, 0.1) < negbin_tail(25, 10.0, 0.5)
    assert poisson_tail(25, 10.0) < 1e-4 < negbin_tail(25, 10.0, 0.5)


@pytest.mark.parametrize(("n", "p"), [(1, 0.5), (5, 0.17), (12, 0.3), (20, 0.65)])
def test_binomial_tail_matches_direct_sum(n: int, p: float) -> None:
    for k in range(0, n + 2):
        direct = math.fsum(math.comb(n, j) * p**j * (1 - p) ** (n - j)
                           for j in range(k, n + 1))
        assert binomial_tail(k, n, p) == pytest.approx(direct, rel=1e-9, abs=1e-12)


# -- identity: a re-read mention counts once ---------------------------------------------------

def _window_counts(state: dict[str, Any]) -> tuple[int, int]:
    """(mentions, negatives) the state holds in its per-minute counts."""
    rows = state["m"].values()
    return sum(r[0] for r in rows), sum(r[1] for r in rows)


def test_the_same_mention_fed_twice_is_counted_once() -> None:
    eng, state = engine(), warm()
    em = Traffic(41).one(START + mins(1), "negative")
    feed(eng, state, [em])
    row = list(state["m"][str(minute_of(em.mention.created_at))])
    # The same mention classified again (a crash or a rebalance re-read it): a new enriched
    # copy, a later classification time, the same key.
    copy = em.model_copy(update={"classified_at": em.classified_at + timedelta(seconds=40)})
    assert feed(eng, state, [copy]) == []
    assert state["m"][str(minute_of(em.mention.created_at))] == row
    assert row[:2] == [1, 1]  # the minute held only this one: it is counted, once
    assert eng.duplicates == 1


def test_a_reread_burst_does_not_fire_a_second_spike_or_inflate_the_count() -> None:
    mentions, _ = negative_burst()
    eng, state = engine(), warm()
    first = feed(eng, state, mentions)
    assert of(first, "negative_spike"), "the burst itself fires"
    counts = _window_counts(state)
    # The last 200 mentions read again, as after a kill -9 with that much uncommitted.
    assert feed(eng, state, mentions[-200:]) == []
    assert _window_counts(state) == counts
    # Those still inside the lateness window are recognised; older ones are too late anyway.
    recent = [em for em in mentions[-200:]
              if minute_of(em.mention.created_at) >= state["t"] - CFG.lateness_min]
    assert eng.duplicates == len(recent) > 50


def test_identities_are_kept_for_the_lateness_window_and_no_longer() -> None:
    eng, state = engine(lateness_min=3), warm()
    gen = Traffic(42)
    em = gen.one(START + mins(1))
    feed(eng, state, [em])
    digest = key_digest(em.mention.key)
    assert state["ids"][digest] == minute_of(em.mention.created_at)
    # Three minutes on, the mention's minute can still take late mentions: still known.
    feed(eng, state, [gen.one(START + mins(4))])
    assert digest in state["ids"]
    assert feed(eng, state, [em]) == [] and eng.duplicates == 1
    # One minute later it is past the lateness window: forgotten, and a copy is too late
    # to be counted anyway.
    feed(eng, state, [gen.one(START + mins(5))])
    assert digest not in state["ids"]
    counts = _window_counts(state)
    feed(eng, state, [em])
    assert _window_counts(state) == counts


def test_a_state_saved_before_identities_were_kept_still_loads() -> None:
    eng, state = engine(), warm()
    state.pop("ids", None)
    em = Traffic(43).one(START + mins(1))
    feed(eng, state, [em, em])
    assert eng.duplicates == 1


def test_minutes_before_a_watch_first_mention_are_not_learnt_as_zeros() -> None:
    # lateness 6, warm-up 4: the old code closed the 6 minutes before the first mention as
    # zeros, reached the warm-up on them and fired "244x the expected 0.0" on steady traffic.
    eng, state = engine(lateness_min=6, warmup_min=4), {}
    mentions = Traffic(44).stream(START, 20, 25)
    assert feed(eng, state, mentions) == []
    assert state["n"] == 20 - 6 - 1  # only minutes since the first mention, once closed
    assert state["lvl"][0] > 15


def test_each_duplicate_is_told_to_the_metric_hook() -> None:
    told: list[int] = []
    eng = DetectionEngine(DetectSettings(), watch_terms=frozenset({WATCH}),
                          on_duplicate=lambda: told.append(1))
    em = Traffic(45).one(START + mins(1))
    feed(eng, warm_state := warm(), [em, em, em])
    assert len(told) == eng.duplicates == 2 and warm_state["ids"]
