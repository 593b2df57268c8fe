"""The everyday-volume stream model and its scenarios: deterministic, ordered as they arrive,
shaped by day and hour, with surges, back-filled outages and labels where they should be."""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from agents.detect.everyday import DIURNAL, WEEKDAY, Everyday, Extra, Item
from agents.detect.scenarios import SCENARIOS, Scenario
from streams.connectors.simulate import Crisis, SimBrand, simulate_at

BRAND = SimBrand(name="Acme", terms=("Acme", "AcmePhone"))
MONDAY = datetime(2025, 3, 3, tzinfo=UTC)

KINDS = {"sustained_surge": {"sustained_surge"}, "hour_burst": {"hour_burst"},
         "slow_climb": {"slow_climb"},
         "new_watch_in_surge": {"surge_before_watch", "sustained_surge"},
         "source_outage": set(), "busy_days": set(), "quiet_weeks": set()}
# Small but valid: the history plus room for each scenario's crises, outages or busy days.
SMALL = {"sustained_surge": 1.0, "hour_burst": 0.6, "slow_climb": 0.6,
         "new_watch_in_surge": 1.5, "source_outage": 0.7, "busy_days": 1.0,
         "quiet_weeks": 0.5}
CRISES = ("sustained_surge", "hour_burst", "slow_climb", "new_watch_in_surge")


def small(name: str, seed: int = 1) -> Scenario:
    return SCENARIOS[name](seed=seed, weeks=SMALL[name], rate_per_min=0.2)


def stream(days: float = 2, **changes: object) -> Everyday:
    fields: dict[str, object] = {"brand": BRAND, "watch": "acme", "start": MONDAY,
                                 "end": MONDAY + timedelta(days=days), "per_hour": 60.0,
                                 "seed": 7}
    fields.update(changes)
    return Everyday(**fields)  # type: ignore[arg-type]


def negatives(items: list[Item], start: datetime, end: datetime) -> int:
    return sum(1 for m, label, _, _ in items if label == "negative" and start <= m.created_at < end)


def everyday(scenario: Scenario) -> dict[str, Everyday]:
    out = {s.watch: s for s in scenario.recipe if isinstance(s, Everyday)}
    assert len(out) == len(scenario.recipe) == len(scenario.watches)
    return out


# --- the scenarios ---------------------------------------------------------------------------

def test_every_everyday_scenario_is_registered() -> None:
    assert set(KINDS) <= set(SCENARIOS)


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
    assert SCENARIOS[name](seed=3).labels == SCENARIOS[name](seed=3).labels


@pytest.mark.parametrize("name", sorted(KINDS))
def test_mentions_come_in_arrival_order_inside_the_span(name: str) -> None:
    scenario = small(name)
    streams = everyday(scenario)
    # Where each back-filled post arrives: at the gap's end, 200 ms apart, in the gap's order.
    late: dict[str, dict[datetime, datetime]] = {w: {} for w in streams}
    for watch, s in streams.items():
        for m, _, _, arrival in s.items():
            if arrival is not None:
                late[watch][m.created_at] = arrival
    mentions = list(scenario.mentions())
    assert len(mentions) > 1000
    arrivals = []
    for em in mentions:
        arrival = late[em.watch_id].get(em.mention.created_at, em.mention.created_at)
        lag = em.classified_at - arrival
        assert timedelta(milliseconds=200) <= lag < timedelta(seconds=2)
        arrivals.append(arrival)
    assert arrivals == sorted(arrivals)
    on_time = [em.mention.created_at for em in mentions
               if em.mention.created_at not in late[em.watch_id]]
    assert on_time == sorted(on_time)
    if name != "source_outage":
        assert not any(late.values())
        assert [em.mention.created_at for em in mentions] == sorted(
            em.mention.created_at for em in mentions)
    else:
        assert all(late.values())  # every watch back-fills something
    times = [em.mention.created_at for em in mentions]
    assert scenario.start <= min(times) and max(times) < scenario.end
    assert len({em.mention.key for em in mentions}) == len(mentions)
    assert len({em.mention.id for em in mentions}) == len(mentions)
    assert {em.watch_id for em in mentions} <= set(scenario.watches)
    assert all(em.watch_ids == [em.watch_id] for em in mentions)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("name", sorted(KINDS))
def test_labels_are_of_their_kind_after_three_days_of_history(name: str, seed: int) -> None:
    scenario = SCENARIOS[name](seed=seed)  # default length: nothing is generated here
    assert {x.kind for x in scenario.labels} == KINDS[name]
    for label in scenario.labels:
        assert label.watch in scenario.watches
        assert label.start < label.end <= scenario.end
        assert label.required == (label.kind != "surge_before_watch")
        if label.kind != "surge_before_watch":
            assert label.start >= scenario.start + timedelta(days=3)
        if label.kind == "hour_burst":
            assert label.end - label.start == timedelta(hours=1)
        if label.kind == "slow_climb":
            assert label.end - label.start == timedelta(hours=12)
    if name == "new_watch_in_surge":
        for watch in scenario.watches:
            kinds = Counter(x.kind for x in scenario.labels if x.watch == watch)
            assert kinds == {"surge_before_watch": 1, "sustained_surge": 1}
    if name in CRISES:
        assert len(scenario.labels) >= 2


@pytest.mark.parametrize(("name", "k"), [("sustained_surge", (2.0, 3.0)),
                                         ("hour_burst", (4.0, 6.0)),
                                         ("new_watch_in_surge", (2.5, 2.5))])
def test_each_crisis_label_is_a_negative_extra_on_its_watch(name: str,
                                                            k: tuple[float, float]) -> None:
    scenario = SCENARIOS[name](seed=2)
    streams = everyday(scenario)
    for label in scenario.labels:
        if label.kind == "surge_before_watch":
            assert streams[label.watch].listening_from == label.start
            continue
        match = [x for x in streams[label.watch].extras
                 if (x.start, x.end) == (label.start, label.end)]
        assert len(match) == 1
        assert match[0].negative and match[0].k_start == match[0].k_end
        assert k[0] <= match[0].k_start <= k[1]


def test_slow_climb_label_is_a_ramp_then_a_hold() -> None:
    scenario = SCENARIOS["slow_climb"](seed=2)
    streams = everyday(scenario)
    for label in scenario.labels:
        ramp, hold = sorted((x for x in streams[label.watch].extras
                             if label.start <= x.start < label.end), key=lambda x: x.start)
        assert (ramp.start, ramp.end, hold.start, hold.end) == (
            label.start, label.start + timedelta(hours=8), label.start + timedelta(hours=8),
            label.end)
        assert ramp.k_start == 1.0 and 2.8 <= ramp.k_end == hold.k_start == hold.k_end <= 3.2


def test_new_watch_sees_nothing_before_it_was_created() -> None:
    scenario = small("new_watch_in_surge")
    created = {x.watch: x.start for x in scenario.labels if x.kind == "surge_before_watch"}
    first: dict[str, datetime] = {}
    for em in scenario.mentions():
        first.setdefault(em.watch_id, em.mention.created_at)
        assert em.mention.created_at >= created[em.watch_id]
    assert set(first) == set(created)
    assert all(first[w] - created[w] < timedelta(hours=1) for w in created)


def test_benign_scenarios_add_no_crisis() -> None:
    for gaps in (s.gaps for s in everyday(SCENARIOS["source_outage"](seed=1)).values()):
        assert len(gaps) == 2
        assert all(timedelta(hours=3) <= b - a <= timedelta(hours=8) for a, b, _ in gaps)
    for s in everyday(SCENARIOS["busy_days"](seed=1)).values():
        assert sum(not x.negative for x in s.extras) == 2
        assert all(x.k_start < 1.5 for x in s.extras if x.negative)
    assert all(not s.extras and not s.gaps
               for s in everyday(SCENARIOS["quiet_weeks"](seed=1)).values())


# --- the stream model ------------------------------------------------------------------------

def test_shapes_average_to_one() -> None:
    assert len(DIURNAL) == 24 and len(WEEKDAY) == 7
    assert sum(DIURNAL) / 24 == pytest.approx(1.0)
    assert sum(WEEKDAY) / 7 == pytest.approx(1.0)


def test_items_are_deterministic_and_about_the_mean_rate() -> None:
    s = stream(days=7, per_hour=20.0)
    once = [m.model_dump_json() for m, *_ in s.items()]
    assert once == [m.model_dump_json() for m, *_ in s.items()]
    assert once != [m.model_dump_json() for m, *_ in stream(days=7, per_hour=20.0,
                                                            seed=8).items()]
    assert s.rates() == s.rates() and len(s.rates()) == 7 * 24
    assert 0.85 < len(once) / (20 * 7 * 24) < 1.2
    items = list(s.items())
    assert all(w == "acme" and a is None for _, _, w, a in items)
    share = sum(label == "negative" for _, label, _, _ in items) / len(items)
    assert 0.12 < share < 0.25


def test_nights_are_near_silent_in_the_stream_time_zone() -> None:
    tz = "America/New_York"
    s = stream(days=4, tz=tz)
    hours = Counter(m.created_at.astimezone(ZoneInfo(tz)).hour for m, *_ in s.items())
    night = sum(hours[h] for h in (2, 3, 4, 5))
    midday = sum(hours[h] for h in (11, 12, 13, 14))
    assert midday > 500
    assert night < 0.1 * midday


def test_weekends_are_quieter_than_weekdays() -> None:
    tz = "Europe/Madrid"
    s = stream(days=14, per_hour=20.0, tz=tz)
    zone = ZoneInfo(tz)
    days = Counter(m.created_at.astimezone(zone).date() for m, *_ in s.items())
    partial = {s.start.astimezone(zone).date(), s.end.astimezone(zone).date()}
    weekend = [n for d, n in days.items() if d not in partial and d.weekday() >= 5]
    weekday = [n for d, n in days.items() if d not in partial and d.weekday() < 5]
    assert len(weekend) == 4 and len(weekday) >= 9
    assert statistics.mean(weekend) < 0.85 * statistics.mean(weekday)


def test_hours_are_overdispersed() -> None:
    s = stream(days=7)
    counts = Counter(int((m.created_at - s.start).total_seconds() // 3600) for m, *_ in s.items())
    ratios, noise = [], []
    for i, rate in enumerate(s.rates()):
        at = s.start + timedelta(hours=i)
        if not 9 <= at.hour < 22:
            continue
        shape = s.per_hour * DIURNAL[at.hour] * WEEKDAY[at.weekday()]
        ratios.append((counts[i] - shape) ** 2 / shape)  # about 1 for plain Poisson hours
        noise.append(rate / shape)
    assert statistics.mean(ratios) > 3
    assert statistics.mean(noise) == pytest.approx(1.0, abs=0.15)
    assert statistics.stdev(noise) > 0.2


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_negative_extra_triples_the_negatives_in_its_window(seed: int) -> None:
    a, b = MONDAY + timedelta(hours=30), MONDAY + timedelta(hours=54)
    plain = list(stream(days=3, seed=seed).items())
    surge = list(stream(days=3, seed=seed, extras=(
        Extra(start=a, end=b, k_start=3, k_end=3, topic="recall"),)).items())
    base = negatives(plain, a, b)
    assert base > 100
    assert 2.4 < negatives(surge, a, b) / base < 3.6
    # Only the window changes: the baseline's own posts are the same posts.
    assert negatives(surge, MONDAY, a) == negatives(plain, MONDAY, a)
    assert negatives(surge, b, MONDAY + timedelta(days=3)) == negatives(
        plain, b, MONDAY + timedelta(days=3))
    assert {m.id for m, *_ in plain} < {m.id for m, *_ in surge}


def test_non_negative_extra_adds_posts_but_no_negatives() -> None:
    a, b = MONDAY + timedelta(hours=30), MONDAY + timedelta(hours=54)
    plain = list(stream(days=3).items())
    busy = list(stream(days=3, extras=(
        Extra(start=a, end=b, k_start=3, k_end=3, negative=False),)).items())
    assert negatives(busy, MONDAY, MONDAY + timedelta(days=3)) == negatives(
        plain, MONDAY, MONDAY + timedelta(days=3))

    def inside(items: list[Item]) -> int:
        return sum(a <= m.created_at < b for m, *_ in items)

    assert 2.2 < inside(busy) / inside(plain) < 3.6


@pytest.mark.parametrize(("k_start", "k_end"), [(1.0, 3.0), (3.0, 1.0)])
def test_ramp_grows_from_its_first_third_to_its_last(k_start: float, k_end: float) -> None:
    a = MONDAY + timedelta(days=1, hours=10)  # 10:00-22:00: a flat stretch of the day
    third = timedelta(hours=4)
    extra = Extra(start=a, end=a + 3 * third, k_start=k_start, k_end=k_end)
    totals = {False: [0, 0], True: [0, 0]}
    for seed in (1, 2, 3):
        for with_extra in (False, True):
            items = list(stream(days=2, per_hour=100.0, seed=seed,
                                extras=(extra,) if with_extra else ()).items())
            totals[with_extra][0] += negatives(items, a, a + third)
            totals[with_extra][1] += negatives(items, a + 2 * third, a + 3 * third)
    first = totals[True][0] - totals[False][0]
    last = totals[True][1] - totals[False][1]
    low, high = (first, last) if k_end > k_start else (last, first)
    assert high > 3 * max(low, 1)
    grows = totals[True][1] > totals[True][0]
    assert grows == (k_end > k_start)


@pytest.mark.parametrize("newest_first", [True, False])
def test_outage_back_fills_its_posts_at_its_end(newest_first: bool) -> None:
    a, b = MONDAY + timedelta(hours=34), MONDAY + timedelta(hours=40)
    plain = list(stream(days=3).items())
    items = list(stream(days=3, gaps=((a, b, newest_first),)).items())
    assert sorted(m.id for m, *_ in items) == sorted(m.id for m, *_ in plain)
    inside = [(m, arrival) for m, _, _, arrival in items if a <= m.created_at < b]
    assert len(inside) > 50
    assert all(arrival is not None and arrival >= b for _, arrival in inside)
    created = [m.created_at for m, _ in inside]
    assert created == sorted(created, reverse=newest_first)
    assert all(arrival is None for m, _, _, arrival in items if not a <= m.created_at < b)
    arrivals = [arrival or m.created_at for m, _, _, arrival in items]
    assert arrivals == sorted(arrivals)


def test_listening_from_drops_earlier_posts_only() -> None:
    created = MONDAY + timedelta(hours=15, minutes=30)
    plain = list(stream(days=2).items())
    items = list(stream(days=2, listening_from=created).items())
    assert any(m.created_at < created for m, *_ in plain)
    assert items and all(m.created_at >= created for m, *_ in items)
    assert [m.model_dump_json() for m, *_ in items] == [
        m.model_dump_json() for m, *_ in plain if m.created_at >= created]


# --- simulate_at -----------------------------------------------------------------------------

def test_simulate_at_posts_at_the_offsets_given() -> None:
    offsets = [0.0, 5.0, 5.0, 60.0, 3600.0]
    crisis = Crisis(brand="Acme", start=timedelta(seconds=30), duration=timedelta(minutes=5),
                    multiplier=1.0, negative_share=1.0, topic="recall")
    drawn = list(simulate_at(brand=BRAND, start=MONDAY, offsets=offsets, crises=[crisis],
                             seed=4))
    assert [m.created_at for m, _ in drawn] == [MONDAY + timedelta(seconds=t) for t in offsets]
    assert [t.crisis is not None for _, t in drawn] == [False, False, False, True, False]
    assert drawn[3][1].sentiment == "negative"
    again = simulate_at(brand=BRAND, start=MONDAY, offsets=offsets, crises=[crisis], seed=4)
    assert [m for m, _ in again] == [m for m, _ in drawn]
    assert list(simulate_at(brand=BRAND, start=MONDAY, offsets=[])) == []


@pytest.mark.parametrize("offsets", [[0.0, 10.0, 5.0], [-1.0, 2.0], [3.0, 2.0]])
def test_simulate_at_refuses_unordered_or_negative_offsets(offsets: list[float]) -> None:
    with pytest.raises(ValueError, match="ascending"):
        simulate_at(brand=BRAND, start=MONDAY, offsets=offsets)


def test_simulate_at_refuses_another_brands_crisis() -> None:
    crisis = Crisis(brand="Globex", start=timedelta(0), duration=timedelta(minutes=5))
    with pytest.raises(ValueError, match="Globex"):
        simulate_at(brand=BRAND, start=MONDAY, offsets=[1.0], crises=[crisis])
