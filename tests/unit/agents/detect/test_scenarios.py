"""Scenario library: deterministic, ordered, labelled where the crises are, shaped as named."""

from __future__ import annotations

import bisect
import itertools
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agents.detect.scenarios import (
    DEFAULT_START,
    MODEL,
    SCENARIOS,
    CrisisLabel,
    Scenario,
    ScenarioError,
    read_labels,
    write_jsonl,
    write_labels,
)
from streams.core.records import EnrichedMention, parse

KINDS = {"sudden_spike": {"spike"}, "slow_burn": {"slow_burn"},
         "sentiment_flip": {"sentiment_flip"}, "influencer": {"influencer"},
         "weekly_seasonality": set(), "noisy_low_volume": set(), "baseline_week": set()}
# Small but valid: long enough for the history and one crisis, few mentions a minute.
SMALL = {"sudden_spike": 0.5, "slow_burn": 0.5, "sentiment_flip": 0.5, "influencer": 0.5,
         "weekly_seasonality": 1.0, "noisy_low_volume": 0.5, "baseline_week": 0.05}


def small(name: str, seed: int = 1, rate: float | None = 0.5) -> Scenario:
    if name == "noisy_low_volume":
        rate = None  # its own rates are already tiny
    return SCENARIOS[name](seed=seed, weeks=SMALL[name], rate_per_min=rate)


class Index:
    """Per-watch post times, for counting mentions in a span without rescanning."""

    def __init__(self, mentions: list[EnrichedMention]) -> None:
        self.times: dict[str, list[datetime]] = {}
        self.negative: dict[str, list[int]] = {}
        for em in mentions:
            self.times.setdefault(em.watch_id, []).append(em.mention.created_at)
            running = self.negative.setdefault(em.watch_id, [0])
            running.append(running[-1] + (em.sentiment.label == "negative"))

    def counts(self, watch: str, start: datetime, end: datetime) -> tuple[int, int]:
        """(mentions, negative mentions) of ``watch`` posted in [start, end)."""
        times = self.times[watch]
        lo, hi = bisect.bisect_left(times, start), bisect.bisect_left(times, end)
        return hi - lo, self.negative[watch][hi] - self.negative[watch][lo]


EVERYDAY = {"sustained_surge", "hour_burst", "slow_climb", "new_watch_in_surge", "source_outage",
            "busy_days", "quiet_weeks"}  # tests/unit/agents/detect/test_everyday.py


def test_scenario_names_match_the_library() -> None:
    assert set(SCENARIOS) == set(KINDS) | EVERYDAY


@pytest.mark.parametrize("name", sorted(KINDS))
def test_same_seed_same_mentions_other_seed_other_mentions(name: str) -> None:
    def first(seed: int) -> list[str]:
        return [em.model_dump_json()
                for em in itertools.islice(small(name, seed).mentions(), 300)]

    once = first(3)
    assert len(once) == 300
    assert once == first(3)
    assert once != first(4)
    assert small(name, 3).labels == small(name, 3).labels


@pytest.mark.parametrize("name", sorted(KINDS))
def test_mentions_are_enriched_in_event_time_order_inside_the_span(name: str) -> None:
    scenario = small(name)
    mentions = list(scenario.mentions())
    assert mentions
    times = [em.mention.created_at for em in mentions]
    assert times == sorted(times)
    assert scenario.start <= times[0] and times[-1] < scenario.end
    assert len({em.mention.key for em in mentions}) == len(mentions)
    assert {em.watch_id for em in mentions} <= set(scenario.watches)
    for em in itertools.islice(mentions, 500):
        assert em.watch_ids == [em.watch_id]
        assert em.model == MODEL
        assert em.sentiment.scores[em.sentiment.label] == 0.9
        assert sum(em.sentiment.scores.values()) == pytest.approx(1.0)
        lag = em.classified_at - em.mention.created_at
        assert timedelta(0) < lag < timedelta(seconds=3)
        assert 0 <= em.priority <= 100


@pytest.mark.parametrize("name", sorted(KINDS))
def test_labels_are_inside_the_span_after_two_days_of_history(name: str) -> None:
    scenario = SCENARIOS[name](seed=5)  # default length: nothing is generated here
    assert {x.kind for x in scenario.labels} == KINDS[name]
    for label in scenario.labels:
        assert label.watch in scenario.watches
        assert scenario.start + timedelta(days=2) <= label.start < label.end <= scenario.end
    assert scenario.start == DEFAULT_START
    assert set(scenario.terms) == set(scenario.watches)


def test_crisis_scenarios_have_several_crises_a_week() -> None:
    for name in ("sudden_spike", "slow_burn", "sentiment_flip", "influencer"):
        labels = SCENARIOS[name](seed=0).labels
        assert len(labels) >= 3, name
        assert len({x.start.hour for x in labels}) >= 2, name  # not all at one hour
        ordered = sorted(labels, key=lambda x: x.start)
        assert all(a.end < b.start for a, b in itertools.pairwise(ordered)), name


def test_lengths_and_rates() -> None:
    assert SCENARIOS["weekly_seasonality"](seed=0).end - DEFAULT_START == timedelta(weeks=3)
    week = SCENARIOS["baseline_week"](seed=0)
    assert week.end - week.start == timedelta(weeks=1)
    assert len(week.watches) == 10 and not week.labels
    hour = list(SCENARIOS["baseline_week"](seed=0, weeks=1 / 84).mentions())  # 2 hours
    per_min = {w: n / 120 for w, n in Counter(em.watch_id for em in hour).items()}
    assert len(per_min) == 10
    assert min(per_min.values()) > 1.5 and max(per_min.values()) < 23
    negative = sum(em.sentiment.label == "negative" for em in hour) / len(hour)
    assert 0.13 < negative < 0.21


def test_start_is_honoured_and_naive_means_utc() -> None:
    scenario = SCENARIOS["sudden_spike"](seed=0, start=datetime(2024, 1, 1, 6))
    assert scenario.start == datetime(2024, 1, 1, 6, tzinfo=UTC)


@pytest.mark.parametrize("weeks", [0.1, 0.0, -1.0, float("nan")])
def test_too_short_or_bad_lengths_are_refused(weeks: float) -> None:
    with pytest.raises(ScenarioError, match="sudden_spike"):
        SCENARIOS["sudden_spike"](seed=0, weeks=weeks)


def test_spike_is_five_times_the_volume_and_mostly_negative() -> None:
    scenario = SCENARIOS["sudden_spike"](seed=2, weeks=0.5, rate_per_min=2)
    index = Index(list(scenario.mentions()))
    for label in scenario.labels:
        assert timedelta(minutes=20) <= label.end - label.start <= timedelta(minutes=40)
        length = label.end - label.start
        during, negative = index.counts(label.watch, label.start, label.end)
        before, _ = index.counts(label.watch, label.start - 6 * length, label.start)
        assert 3.5 < during / (before / 6) < 7
        assert negative / during > 0.6


def test_slow_burn_ramps_up_then_down() -> None:
    scenario = SCENARIOS["slow_burn"](seed=2, weeks=0.35, rate_per_min=3)
    index = Index(list(scenario.mentions()))
    assert scenario.labels
    for label in scenario.labels:
        assert label.end - label.start == timedelta(hours=4)
        half = timedelta(minutes=30)
        neg = [index.counts(label.watch, label.start + k * half,
                      label.start + (k + 1) * half)[1] for k in range(-2, 10)]
        before, first, peak, last = sum(neg[:2]) / 2, neg[2], max(neg[4:8]), neg[9]
        assert peak > 2.5 * before
        assert first < peak and last < peak


def test_sentiment_flip_keeps_volume_flat_and_turns_negative() -> None:
    scenario = SCENARIOS["sentiment_flip"](seed=2, weeks=0.35, rate_per_min=4)
    index = Index(list(scenario.mentions()))
    assert scenario.labels
    for label in scenario.labels:
        assert label.end - label.start == timedelta(hours=1)
        during, negative = index.counts(label.watch, label.start, label.end)
        before, negative_before = index.counts(label.watch,
                                         label.start - timedelta(hours=3), label.start)
        assert 0.75 < during / (before / 3) < 1.33
        assert 0.5 < negative / during < 0.7
        assert negative_before / before < 0.25


def test_influencer_posts_come_from_big_verified_accounts_at_the_label() -> None:
    scenario = SCENARIOS["influencer"](seed=2, weeks=0.5, rate_per_min=0.5)
    mentions = list(scenario.mentions())
    assert scenario.labels
    for label in scenario.labels:
        assert label.end - label.start == timedelta(minutes=30)
        posts = [em for em in mentions
                 if em.watch_id == label.watch and em.mention.created_at == label.start]
        assert len(posts) == 1
        post = posts[0]
        assert post.mention.author.followers >= 500_000 and post.mention.author.verified
        assert post.sentiment.label == "negative"
        assert post.mention.engagement.likes >= 1_000
        assert post.priority >= 70


def test_weekly_peak_is_on_monday_mornings_with_the_usual_mix() -> None:
    scenario = SCENARIOS["weekly_seasonality"](seed=1, rate_per_min=0.5)
    assert scenario.tz == "Europe/Madrid" and not scenario.labels
    zone = ZoneInfo(scenario.tz)
    volume: Counter[tuple[int, int]] = Counter()
    negative: Counter[bool] = Counter()
    total: Counter[bool] = Counter()
    for em in scenario.mentions():
        local = em.mention.created_at.astimezone(zone)
        volume[local.weekday(), local.hour] += 1
        peak = local.weekday() == 0 and 9 <= local.hour < 12
        total[peak] += 1
        negative[peak] += em.sentiment.label == "negative"
    usual = sorted(volume.values())[len(volume) // 2]
    busy = {slot for slot, n in volume.items() if n > 1.6 * usual}
    assert busy == {(0, 9), (0, 10), (0, 11)}
    peak_ratio = sum(volume[0, h] for h in (9, 10, 11)) / (3 * usual)
    assert 1.9 < peak_ratio < 2.7
    assert 0.12 < negative[True] / total[True] < 0.23  # a normal mix, not a crisis


def test_noisy_low_volume_is_sparse_with_clumps() -> None:
    scenario = SCENARIOS["noisy_low_volume"](seed=1)
    mentions = list(scenario.mentions())
    minutes = (scenario.end - scenario.start).total_seconds() / 60
    per_watch = Counter(em.watch_id for em in mentions)
    for watch in scenario.watches:
        assert 0.08 < per_watch[watch] / minutes < 0.45
    per_minute = Counter((em.watch_id, int(em.mention.created_at.timestamp()) // 60)
                         for em in mentions)
    assert max(per_minute.values()) >= 2
    assert sum(em.sentiment.label == "negative" for em in mentions) / len(mentions) < 0.25


def test_jsonl_and_labels_round_trip(tmp_path: Path) -> None:
    scenario = small("influencer")
    n = write_jsonl(scenario, tmp_path / "s.jsonl")
    lines = (tmp_path / "s.jsonl").read_text(encoding="utf-8").splitlines()
    assert n == len(lines) > 0
    assert [parse(EnrichedMention, line) for line in lines[:50]] == list(
        itertools.islice(scenario.mentions(), 50))
    write_labels(scenario, tmp_path / "labels.json")
    assert read_labels(tmp_path / "labels.json") == scenario.labels
    excused = SCENARIOS["new_watch_in_surge"](seed=0)  # nothing is generated here
    write_labels(excused, tmp_path / "excused.json")
    back = read_labels(tmp_path / "excused.json")
    assert back == excused.labels and {x.required for x in back} == {True, False}


def test_labels_without_offset_are_utc(tmp_path: Path) -> None:
    path = tmp_path / "l.json"
    path.write_text(json.dumps([{"watch": "acme", "start": "2025-03-07T10:00:00",
                                 "end": "2025-03-07T10:30:00Z", "kind": "spike"}]))
    assert read_labels(path) == [CrisisLabel("acme", datetime(2025, 3, 7, 10, tzinfo=UTC),
                                             datetime(2025, 3, 7, 10, 30, tzinfo=UTC), "spike")]


@pytest.mark.parametrize(("content", "match"), [
    (None, "no such labels file"),
    ("[{", "not valid JSON"),
    ('{"watch": "acme"}', "expected a JSON list"),
    ('["acme"]', "label 0: expected an object"),
    ('[{"watch": "acme", "start": "2025-03-07T10:00:00Z", "kind": "spike"}]',
     "label 0: missing end"),
    ('[{"watch": "acme", "start": "yesterday", "end": "2025-03-07T10:00:00Z", "kind": "x"}]',
     "label 0: start 'yesterday' is not an ISO 8601 time"),
    ('[{"watch": "", "start": "2025-03-07T10:00:00Z", "end": "2025-03-07T10:00:00Z", '
     '"kind": "x"}]', "label 0: watch must be a non-empty string"),
    ('[{"watch": "a", "start": "2025-03-07T10:00:00Z", "end": "2025-03-07T10:30:00Z", '
     '"kind": "x"}, {"watch": "a", "start": "2025-03-07T10:00:00Z", '
     '"end": "2025-03-07T09:00:00Z", "kind": "x"}]', "label 1: end .* is before start"),
    ('[{"watch": "a", "start": "2025-03-07T10:00:00Z", "end": "2025-03-07T10:30:00Z", '
     '"kind": "x", "required": "no"}]', "label 0: required must be true or false"),
])
def test_bad_label_files_say_what_and_where(tmp_path: Path, content: str | None,
                                            match: str) -> None:
    path = tmp_path / "labels.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ScenarioError, match=match) as info:
        read_labels(path)
    assert str(path) in str(info.value)
