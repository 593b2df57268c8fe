"""Scenarios at everyday volumes: a handful of negatives an hour, day and night, for weeks.

Drawn from :mod:`agents.detect.everyday` (a diurnal cycle with a night trough near zero,
weekend dips, overdispersed hours, clumps, repeat authors). The crises are the shapes comms
teams meet most: a surge that lasts hours, a one-hour burst, a slow climb; the benign ones
are the traps: a new watch created in the middle of a surge, a source outage that back-fills
posts with old timestamps, busy but happy days, and plain quiet weeks for the false-alarm rate.
Every crisis starts after ``_HISTORY`` so the expectation has a few days to learn from.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from agents.detect.everyday import Everyday, Extra
from agents.detect.scenarios import CrisisLabel, ScenarioError, register_scenario
from streams.connectors.simulate import TOPICS, SimBrand

__all__: list[str] = []

_HISTORY = timedelta(days=3)
_Watches = list[tuple[SimBrand, float]]
_Built = tuple[list[CrisisLabel], list[Everyday]]


def _slug(brand: SimBrand) -> str:
    return brand.name.lower()


def _baselines(rng: random.Random, begin: datetime, end: datetime, watches: _Watches,
               tz: str) -> dict[str, Everyday]:
    # The registry's rates are per minute; an everyday watch is described per hour.
    return {_slug(b): Everyday(brand=b, watch=_slug(b), start=begin, end=end,
                               per_hour=rate * 60, seed=rng.randrange(2**31), tz=tz)
            for b, rate in watches}


def _with(stream: Everyday, **changes: object) -> Everyday:
    fields = {k: getattr(stream, k) for k in stream.__dataclass_fields__}
    fields.update(changes)
    return Everyday(**fields)  # type: ignore[arg-type]


def _starts(rng: random.Random, begin: datetime, end: datetime, n: int, length: timedelta,
            tz: str, hours: tuple[int, int]) -> list[datetime]:
    """``n`` crisis starts after the history, one per equal slice, at a local hour in
    ``hours`` (crises break in the day more than at night)."""
    first, zone = begin + _HISTORY, ZoneInfo(tz)
    piece = (end - first) / n
    if piece < length + timedelta(hours=12):
        raise ScenarioError(f"too short for {n} crises of {length}: give more weeks")
    out = []
    for i in range(n):
        day = (first + i * piece + timedelta(hours=rng.uniform(0, 24))).astimezone(zone)
        at = day.replace(hour=rng.randint(*hours), minute=rng.randrange(60), second=0)
        latest = first + (i + 1) * piece - length - timedelta(hours=6)
        out.append(min(max(at, first + i * piece), latest))
    return out


def _surges(rng: random.Random, begin: datetime, end: datetime, watches: _Watches, *,
            tz: str, per_week: float, kind: str, length: tuple[float, float],
            k: tuple[float, float], hours: tuple[int, int], ramp: bool = False) -> _Built:
    streams = _baselines(rng, begin, end, watches, tz)
    extras: dict[str, list[Extra]] = {w: [] for w in streams}
    labels = []
    n = max(1, round(per_week * (end - begin) / timedelta(days=7)))
    for at in _starts(rng, begin, end, n, timedelta(hours=length[1]), tz, hours):
        brand, _ = rng.choice(watches)
        hours_long = rng.uniform(*length)
        stop = at + timedelta(hours=hours_long)
        peak = rng.uniform(*k)
        topic = rng.choice(TOPICS)
        if ramp:  # climbing for two thirds of it, then holding at the peak
            turn = at + (stop - at) * 2 / 3
            extras[_slug(brand)] += [Extra(start=at, end=turn, k_start=1.0, k_end=peak,
                                           topic=topic),
                                     Extra(start=turn, end=stop, k_start=peak, k_end=peak,
                                           topic=topic)]
        else:
            extras[_slug(brand)].append(Extra(start=at, end=stop, k_start=peak, k_end=peak,
                                              topic=topic))
        labels.append(CrisisLabel(_slug(brand), at, stop, kind))
    return labels, [_with(s, extras=tuple(extras[w])) for w, s in streams.items()]


@register_scenario("sustained_surge", weeks=2, watches=3, rates=(0.3, 1.2), tz="Europe/Madrid")
def _sustained_surge(rng: random.Random, begin: datetime, end: datetime,
                     watches: _Watches) -> _Built:
    """Negatives run 2-3x normal for 6-24 h (about 5-40 an hour); 2 a week."""
    return _surges(rng, begin, end, watches, tz="Europe/Madrid", per_week=2,
                   kind="sustained_surge", length=(6, 24), k=(2.0, 3.0), hours=(6, 14))


@register_scenario("hour_burst", weeks=2, watches=3, rates=(0.4, 0.8), tz="America/New_York")
def _hour_burst(rng: random.Random, begin: datetime, end: datetime, watches: _Watches) -> _Built:
    """Negatives jump 4-6x for one hour (about 20-40 an hour) in the day; 2.5 a week."""
    return _surges(rng, begin, end, watches, tz="America/New_York", per_week=2.5,
                   kind="hour_burst", length=(1, 1), k=(4.0, 6.0), hours=(9, 19))


@register_scenario("slow_climb", weeks=2, watches=3, rates=(0.3, 1.0), tz="Europe/London")
def _slow_climb(rng: random.Random, begin: datetime, end: datetime, watches: _Watches) -> _Built:
    """Negatives climb from normal to 3x over 8 h, then hold for 4 h; 1.5 a week."""
    return _surges(rng, begin, end, watches, tz="Europe/London", per_week=1.5,
                   kind="slow_climb", length=(12, 12), k=(2.8, 3.2), hours=(5, 10), ramp=True)


@register_scenario("new_watch_in_surge", weeks=1.5, watches=3, rates=(0.3, 1.0),
                   tz="Europe/Madrid")
def _new_watch_in_surge(rng: random.Random, begin: datetime, end: datetime,
                        watches: _Watches) -> _Built:
    """Each watch is created 6-12 h into a 24 h 2.5x surge (not to be caught: nothing to
    compare with; not to be learnt as normal either), then meets a second 2.5x surge of
    12 h four to seven days later, which must be caught."""
    streams = _baselines(rng, begin, end, watches, "Europe/Madrid")
    labels, out = [], []
    for w, s in streams.items():
        created = begin + timedelta(hours=rng.uniform(6, 12))
        first_end = begin + timedelta(hours=24)
        again = begin + timedelta(days=rng.uniform(4, 7))
        again = again.replace(hour=rng.randint(6, 12), minute=0, second=0)
        again_end = again + timedelta(hours=12)
        if again_end > end:
            raise ScenarioError("too short: needs 8 days")
        out.append(_with(s, listening_from=created, extras=(
            Extra(start=begin, end=first_end, k_start=2.5, k_end=2.5),
            Extra(start=again, end=again_end, k_start=2.5, k_end=2.5,
                  topic=rng.choice(TOPICS)))))
        labels += [CrisisLabel(w, created, first_end, "surge_before_watch", required=False),
                   CrisisLabel(w, again, again_end, "sustained_surge")]
    return labels, out


@register_scenario("source_outage", weeks=2, watches=3, rates=(0.2, 1.5), tz="Europe/Madrid")
def _source_outage(rng: random.Random, begin: datetime, end: datetime,
                   watches: _Watches) -> _Built:
    """Each watch's source goes silent twice for 3-8 h, then back-fills the missed posts with
    their old timestamps all at once, newest or oldest first: nothing to alarm about."""
    streams = _baselines(rng, begin, end, watches, "Europe/Madrid")
    out = []
    for s in streams.values():
        gaps = []
        for at in _starts(rng, begin, end, 2, timedelta(hours=8), "Europe/Madrid", (0, 23)):
            gaps.append((at, at + timedelta(hours=rng.uniform(3, 8)), rng.random() < 0.5))
        out.append(_with(s, gaps=tuple(gaps)))
    return [], out


@register_scenario("busy_days", weeks=2, watches=3, rates=(0.2, 1.2), tz="Europe/Madrid")
def _busy_days(rng: random.Random, begin: datetime, end: datetime, watches: _Watches) -> _Built:
    """A holiday (twice the chatter, cheerful, all day) and a product launch (3-4x volume for
    12 h, mostly praise and questions, complaints up a little) on every watch: no crisis."""
    streams = _baselines(rng, begin, end, watches, "Europe/Madrid")
    out = []
    for s in streams.values():
        holiday, launch = _starts(rng, begin, end, 2, timedelta(hours=24), "Europe/Madrid",
                                  (7, 9))
        out.append(_with(s, extras=(
            Extra(start=holiday, end=holiday + timedelta(hours=15), k_start=2.0, k_end=2.0,
                  negative=False),
            Extra(start=launch, end=launch + timedelta(hours=12), k_start=3.5, k_end=3.5,
                  negative=False),
            Extra(start=launch, end=launch + timedelta(hours=12), k_start=1.3, k_end=1.3))))
    return [], out


@register_scenario("quiet_weeks", weeks=4, watches=5, rates=(1 / 60, 20 / 60),
                   tz="America/New_York")
def _quiet_weeks(rng: random.Random, begin: datetime, end: datetime,
                 watches: _Watches) -> _Built:
    """Four ordinary weeks of five watches at 1-20 mentions an hour: every signal is false."""
    return [], list(_baselines(rng, begin, end, watches, "America/New_York").values())
