"""NegativeSpikeDetector: quiet on normal traffic, one explained signal per burst window."""

from __future__ import annotations

import copy
import itertools
import json
import math
import random
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from agents.detectors import NegativeSpikeDetector, poisson_tail
from streams.records import (
    Author,
    EnrichedMention,
    Mention,
    ModelInfo,
    Sentiment,
    Signal,
    stable_id,
)
from streams.settings import DetectSettings

T0 = 1_714_564_800  # 2024-05-01 12:00:00 UTC, on a minute boundary
W = 60
CFG = DetectSettings(
    window_s=W, baseline_windows=10, warmup_windows=5, min_negative=8, ratio=3.0,
    max_p_value=1e-4,
)
MODEL = ModelInfo(id="test-model", version="1")
_ids = itertools.count()


def em(
    t: float,
    label: str = "negative",
    *,
    text: str = "acme broke my order again",
    priority: int = 50,
    handle: str = "someone",
    watch: str = "acme",
) -> EnrichedMention:
    n = next(_ids)
    mention = Mention(
        source="test", id=f"m{n}", url=f"https://social.example/{n}",
        author=Author(handle=handle), text=text, language="en",
        created_at=datetime.fromtimestamp(t, UTC),
    )
    return EnrichedMention(
        mention=mention, watch_id=watch, watch_ids=[watch],
        sentiment=Sentiment(label=label, scores={label: 0.9}),  # type: ignore[arg-type]
        priority=priority, model=MODEL, classified_at=datetime.fromtimestamp(t + 1, UTC),
    )


def window(index: int, negatives: int, others: int = 0, **kw: Any) -> list[EnrichedMention]:
    """``negatives`` negative and ``others`` neutral mentions spread over window ``index``."""
    start = T0 + index * W
    total = negatives + others
    # Negatives spread evenly among the neutral mentions.
    labels = ["negative" if (i + 1) * negatives // total > i * negatives // total else "neutral"
              for i in range(total)]
    return [em(start + (i + 0.5) * W / max(total, 1), lab, **kw) for i, lab in enumerate(labels)]


def poisson_traffic(seed: int, windows: int, *, neg_per_window: float, other_per_window: float,
                    start_window: int = 0) -> Iterator[EnrichedMention]:
    """A Poisson process of mentions in event time (exponential gaps), ~20% negative."""
    rng = random.Random(seed)
    rate = (neg_per_window + other_per_window) / W
    p_neg = neg_per_window / (neg_per_window + other_per_window)
    t = T0 + start_window * W + rng.expovariate(rate)
    end = T0 + (start_window + windows) * W
    while t < end:
        label = "negative" if rng.random() < p_neg else rng.choice(["neutral", "positive"])
        yield em(t, label, priority=rng.randint(0, 100))
        t += rng.expovariate(rate)


def feed(det: NegativeSpikeDetector, state: dict[str, Any],
         mentions: Iterable[EnrichedMention]) -> list[Signal]:
    out: list[Signal] = []
    for m in mentions:
        out.extend(det.observe(state, m))
    return out


def reference_tail(k: int, lam: float) -> float:
    """P(X >= k), X ~ Poisson(lam), summed term by term from its definition."""
    if k <= 0:
        return 1.0
    upper = math.fsum(
        math.exp(-lam + i * math.log(lam) - math.lgamma(i + 1)) for i in range(k, k + 2000)
    )
    return upper


def crossing(expected: float, cfg: DetectSettings = CFG, *, critical: bool = False) -> int:
    """The first negative count in a window that must fire (or turn critical)."""
    ratio = cfg.ratio * (2 if critical else 1)
    p_value = cfg.max_p_value * (1e-4 if critical else 1)
    for n in itertools.count(1):
        if (n >= cfg.min_negative and n >= ratio * expected
                and reference_tail(n, expected) <= p_value):
            return n
    raise AssertionError  # pragma: no cover


# -- steady traffic --------------------------------------------------------------------------

@pytest.mark.parametrize(("seed", "neg", "other"), [(1, 4, 16), (2, 10, 40), (3, 2, 8),
                                                     (4, 25, 50)])
def test_steady_baseline_never_fires(seed: int, neg: float, other: float) -> None:
    det = NegativeSpikeDetector(CFG)
    mentions = list(poisson_traffic(seed, 60, neg_per_window=neg, other_per_window=other))
    assert len(mentions) > 60 * (neg + other) * 0.8  # the traffic really is there
    assert feed(det, {}, mentions) == []


def test_quiet_watch_never_fires_on_a_few_negatives() -> None:
    det = NegativeSpikeDetector(CFG)
    mentions = [m for i in range(40) for m in window(i, negatives=i % 3 * 3, others=1)]
    # Even 7 negatives after nothing: below min_negative.
    mentions += window(40, negatives=CFG.min_negative - 1)
    assert feed(det, {}, mentions) == []


# -- a burst ---------------------------------------------------------------------------------

def steady_then_burst(
    burst_negatives: int = 20, burst_windows: int = 1
) -> tuple[list[EnrichedMention], int]:
    """20 windows of 4 negatives (and 10 neutral), then burst windows."""
    mentions = [m for i in range(20) for m in window(i, negatives=4, others=10)]
    for b in range(burst_windows):
        mentions += window(20 + b, negatives=burst_negatives, others=10,
                           text="acme recall: battery fire, refund now")
    return mentions, 20


def negatives_in(mentions: list[EnrichedMention], index: int) -> list[int]:
    """Positions in ``mentions`` of the negative mentions of window ``index``."""
    lo, hi = T0 + index * W, T0 + (index + 1) * W
    return [i for i, m in enumerate(mentions)
            if m.sentiment.label == "negative" and lo <= m.mention.created_at.timestamp() < hi]


def signals_at(det: NegativeSpikeDetector, mentions: list[EnrichedMention]
               ) -> list[tuple[int, Signal]]:
    state: dict[str, Any] = {}
    return [(i, s) for i, m in enumerate(mentions) for s in det.observe(state, m)]


def test_burst_fires_exactly_once_per_window_at_the_crossing_mention() -> None:
    # 5x the baseline: a warning, never critical (that needs 2 x ratio = 6x).
    det = NegativeSpikeDetector(CFG, watch_terms=frozenset({"acme"}))
    mentions, burst = steady_then_burst(burst_negatives=20)
    ((index, signal),) = signals_at(det, mentions)
    # The crossing mention is the n-th negative of the burst window, not the window's end.
    n = crossing(4.0)
    assert index == negatives_in(mentions, burst)[n - 1]
    assert signal.severity == "warning"
    assert signal.observed == n
    assert signal.expected == 4.0
    assert signal.score == pytest.approx(n / 4.0, abs=1e-3)


def test_six_fold_burst_fires_once_then_escalates_once_to_critical() -> None:
    det = NegativeSpikeDetector(CFG)
    mentions, burst = steady_then_burst(burst_negatives=24)
    mentions += window(burst, negatives=30)  # the window keeps getting worse: no more signals
    fired = signals_at(det, mentions)
    negatives = negatives_in(mentions, burst)
    assert [(i, s.severity) for i, s in fired] == [
        (negatives[crossing(4.0) - 1], "warning"),
        (negatives[crossing(4.0, critical=True) - 1], "critical"),
    ]
    warning, critical = (s for _, s in fired)
    assert warning.window_start == critical.window_start
    assert warning.id == stable_id("acme", "negative_spike", T0 + burst * W)
    assert critical.id != warning.id  # a new signal, not a re-delivery of the first
    assert critical.observed > warning.observed


def test_signal_carries_its_evidence() -> None:
    det = NegativeSpikeDetector(CFG, watch_terms=frozenset({"acme"}))
    mentions, burst = steady_then_burst()
    mentions[-5:-5] = [em(T0 + burst * W + 59, text="acme exploded VIP", priority=99,
                          handle="bigaccount")]
    (signal,) = feed(det, {}, mentions)
    start = datetime.fromtimestamp(T0 + burst * W, UTC)
    assert signal.watch_id == "acme" and signal.detector == "negative_spike"
    assert signal.id == stable_id("acme", "negative_spike", T0 + burst * W)
    assert (signal.window_start, signal.window_end) == (
        start, datetime.fromtimestamp(T0 + (burst + 1) * W, UTC))
    assert signal.model == MODEL
    # Summary: counts, ratio, window, terms in words a person reads.
    assert f"{signal.observed:.0f} negative mentions" in signal.summary
    assert "1-minute window from 12:20 UTC" in signal.summary
    assert f"{signal.score:.1f}x the expected 4.0" in signal.summary
    assert "top terms: " in signal.summary
    # Top terms come from the burst's negative mentions, without the watch's own terms.
    assert {"recall", "battery", "fire", "refund"} <= set(signal.top_terms)
    assert "acme" not in signal.top_terms
    assert len(signal.top_terms) <= 5
    # Samples: the most urgent first, bounded.
    assert 1 <= len(signal.samples) <= 5
    priorities = [s.priority for s in signal.samples]
    assert priorities == sorted(priorities, reverse=True)
    assert all(s.key.startswith("test:m") and s.url and s.author for s in signal.samples)


def test_top_terms_leave_out_the_watch_terms_in_any_form() -> None:
    det = NegativeSpikeDetector(CFG, watch_terms=frozenset({"nestle", "@nestlesupport"}))
    mentions = [m for i in range(20) for m in window(i, negatives=4)]
    mentions += window(20, negatives=20, text="Nestlé #nestle @NestleSupport recall recall")
    (signal,) = feed(det, {}, mentions)
    assert signal.top_terms == ["recall"]


def test_high_priority_sample_seen_before_the_crossing_is_kept() -> None:
    det = NegativeSpikeDetector(CFG)
    mentions, burst = steady_then_burst()
    first_burst = negatives_in(mentions, burst)[0]
    mentions.insert(first_burst, em(T0 + burst * W, text="lawsuit incoming", priority=100,
                                    handle="vip"))
    (signal,) = feed(det, {}, mentions)
    assert signal.samples[0].author == "vip"
    assert signal.samples[0].text == "lawsuit incoming"


def test_consecutive_burst_windows_fire_once_each() -> None:
    det = NegativeSpikeDetector(CFG)
    mentions, burst = steady_then_burst(burst_windows=2)
    signals = feed(det, {}, mentions)
    assert [s.window_start.timestamp() for s in signals] == [T0 + burst * W, T0 + (burst + 1) * W]
    assert len({s.id for s in signals}) == 2


def test_burst_that_is_critical_at_its_crossing_fires_once() -> None:
    cfg = CFG.model_copy(update={"min_negative": 50})
    mentions = [m for i in range(20) for m in window(i, negatives=1)]
    mentions += window(20, negatives=80)
    assert [s.severity for s in feed(NegativeSpikeDetector(cfg), {}, mentions)] == ["critical"]


def test_positive_burst_does_not_fire() -> None:
    mentions = [m for i in range(20) for m in window(i, negatives=4, others=10)]
    mentions += window(20, negatives=0, others=200)
    assert feed(NegativeSpikeDetector(CFG), {}, mentions) == []


def test_watches_are_independent_states() -> None:
    det = NegativeSpikeDetector(CFG)
    acme: dict[str, Any] = {}
    globex: dict[str, Any] = {}
    mentions, _ = steady_then_burst()
    assert len(feed(det, acme, mentions)) == 1
    quiet = [m for i in range(21) for m in window(i, negatives=4, watch="globex")]
    assert feed(det, globex, quiet) == []


# -- warm-up ---------------------------------------------------------------------------------

def test_no_signal_during_warmup() -> None:
    for late in range(CFG.warmup_windows):
        det = NegativeSpikeDetector(CFG)
        mentions = window(0, negatives=0, others=1) + window(late, negatives=50)
        assert feed(det, {}, mentions) == [], late


def test_fires_right_after_warmup() -> None:
    det = NegativeSpikeDetector(CFG)
    mentions = window(0, negatives=0, others=1) + window(CFG.warmup_windows, negatives=50)
    signal, *_ = feed(det, {}, mentions)
    assert signal.window_start.timestamp() == T0 + CFG.warmup_windows * W


def test_warmup_counts_from_the_first_mention_ever_seen() -> None:
    det = NegativeSpikeDetector(CFG)
    state: dict[str, Any] = {}
    feed(det, state, window(100, negatives=0, others=1))
    assert feed(det, state, window(100 + CFG.warmup_windows - 1, negatives=50)) == []


# -- determinism and state -------------------------------------------------------------------

def scenario(seed: int) -> list[EnrichedMention]:
    rng = random.Random(seed)
    mentions = list(poisson_traffic(seed, 30, neg_per_window=5, other_per_window=20))
    mentions += [em(T0 + 30 * W + rng.uniform(0, W), text=f"acme outage {rng.choice('abc')}",
                    priority=rng.randint(0, 100)) for _ in range(40)]
    mentions += list(poisson_traffic(seed + 1, 10, neg_per_window=5, other_per_window=20,
                                     start_window=31))
    mentions.sort(key=lambda m: m.mention.created_at)
    return mentions


def test_same_input_gives_identical_signals() -> None:
    mentions = scenario(7)
    first = feed(NegativeSpikeDetector(CFG), {}, mentions)
    second = feed(NegativeSpikeDetector(CFG), {}, mentions)
    assert first
    assert [s.model_dump() for s in first] == [s.model_dump() for s in second]


def test_state_survives_a_json_round_trip_mid_stream() -> None:
    mentions = scenario(11)
    det = NegativeSpikeDetector(CFG)
    straight = feed(det, {}, mentions)
    assert straight
    for cut in (1, len(mentions) // 3, len(mentions) - 45, len(mentions) - 1):
        state: dict[str, Any] = {}
        before = feed(det, state, mentions[:cut])
        state = json.loads(json.dumps(state))
        after = feed(det, state, mentions[cut:])
        assert [s.model_dump() for s in before + after] == [s.model_dump() for s in straight]


def test_state_stays_bounded() -> None:
    det = NegativeSpikeDetector(CFG)
    state: dict[str, Any] = {}
    feed(det, state, poisson_traffic(3, 200, neg_per_window=5, other_per_window=5))
    assert len(json.dumps(state)) < 20_000
    assert len(state["windows"]) <= CFG.baseline_windows + 3


# -- event time ------------------------------------------------------------------------------

def test_out_of_order_mention_within_horizon_is_counted() -> None:
    det = NegativeSpikeDetector(CFG)
    state: dict[str, Any] = {}
    assert feed(det, state, [m for i in range(23) for m in window(i, negatives=4)]) == []
    # A burst arrives late for window 21 while the stream is already in window 22.
    late = window(21, negatives=crossing(4.0))
    signals = feed(det, state, late)
    assert [s.window_start.timestamp() for s in signals] == [T0 + 21 * W]
    assert signals[0].observed == crossing(4.0)


def test_mention_beyond_the_horizon_is_ignored_and_changes_nothing() -> None:
    det = NegativeSpikeDetector(CFG)
    state: dict[str, Any] = {}
    feed(det, state, [m for i in range(30) for m in window(i, negatives=4)])
    snapshot = copy.deepcopy(state)
    too_late = 30 - 1 - CFG.baseline_windows - 3
    assert feed(det, state, window(too_late, negatives=80)) == []
    assert feed(det, state, window(-500, negatives=80)) == []
    assert state == snapshot


def test_ancient_mention_does_not_end_the_warmup_of_a_new_watch() -> None:
    det = NegativeSpikeDetector(CFG)
    state: dict[str, Any] = {}
    feed(det, state, window(1000, negatives=0, others=1))
    feed(det, state, window(1000 - 500, negatives=1))  # a replayed year-old post, say
    assert feed(det, state, window(1001, negatives=50)) == []


def test_late_batch_is_judged_against_its_known_baseline() -> None:
    # A connector catching up after an outage delivers a batch for a window that is
    # 9 windows old; the windows before it that were already forgotten are unknown,
    # not zero, so the ordinary volume of the batch is no spike.
    det = NegativeSpikeDetector(CFG)
    state: dict[str, Any] = {}
    assert feed(det, state, [m for i in range(30) for m in window(i, negatives=5)]) == []
    assert feed(det, state, window(20, negatives=5)) == []


# -- poisson_tail ----------------------------------------------------------------------------

@pytest.mark.parametrize("lam", [0.3, 1.0, 2.5, 4.0, 10.0, 30.0])
def test_poisson_tail_matches_the_direct_sum(lam: float) -> None:
    previous = 1.0
    for k in range(0, 80):
        got = poisson_tail(k, lam)
        want = reference_tail(k, lam)
        assert 0.0 <= got <= 1.0
        if want > 1e-12:
            assert got == pytest.approx(want, rel=1e-9, abs=1e-12), (k, lam)
        else:
            assert got == pytest.approx(want, rel=1e-6), (k, lam)
        assert got <= previous + 1e-15
        previous = got


def test_poisson_tail_edges() -> None:
    assert poisson_tail(0, 5.0) == 1.0
    assert poisson_tail(-3, 5.0) == 1.0
    assert poisson_tail(1, 1.0) == pytest.approx(1 - math.exp(-1))
    assert 0.0 <= poisson_tail(10_000, 1.0) < 1e-300
    assert poisson_tail(5, 1000.0) == pytest.approx(1.0)
