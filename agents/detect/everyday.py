"""A stream model at everyday volumes, for the scenario library: when people post.

Real brand streams are not a steady Poisson rain. Per hour, the expected count here is
``mean x diurnal(local hour) x weekday(local day) x day noise x hour noise``: a night trough
near zero, a morning rise, a midday and an evening peak; weekends lower; each day and each
hour off by a gamma-distributed factor (overdispersion); plus clumps (a thread, a reply chain:
several posts in a few minutes; half the threads angry, with ordinary complaints). The
simulator's own author pool (80 per language) makes the same people post again and again.
What they say comes from :func:`~streams.connectors.simulate.simulate_at`.

On top of a baseline, :class:`Extra` adds posts for a while: extra negatives at ``k - 1``
times the baseline's negative rate (a surge, a burst, a slow climb when ``k`` ramps), or
extra non-negative posts (a launch, a holiday). :class:`Everyday` also models a source
outage: posts made inside a gap reach the pipeline only when it ends, all at once, newest or
oldest first, as a connector back-fills them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from streams.connectors.simulate import Crisis, SimBrand, SimSentiment, simulate_at
from streams.core.records import Mention

__all__ = ["DIURNAL", "WEEKDAY", "Everyday", "Extra", "Item"]

#: Relative posting rate by local hour, mean 1: near zero at night, peaks at 12-14 and 20-22.
_RAW_DIURNAL = (0.12, 0.06, 0.03, 0.02, 0.02, 0.05, 0.2, 0.55, 0.95, 1.25, 1.4, 1.5,
                1.6, 1.55, 1.45, 1.4, 1.4, 1.45, 1.5, 1.6, 1.65, 1.5, 1.05, 0.45)
DIURNAL = tuple(x * 24 / sum(_RAW_DIURNAL) for x in _RAW_DIURNAL)
#: Relative rate by local weekday (Monday first), mean 1: weekends dip.
_RAW_WEEKDAY = (1.1, 1.1, 1.08, 1.06, 1.02, 0.72, 0.62)
WEEKDAY = tuple(x * 7 / sum(_RAW_WEEKDAY) for x in _RAW_WEEKDAY)
_NEGATIVE = 0.17        # the simulator's baseline negative share
_DAY_SHAPE = 25.0       # gamma shape of the day factor: +-20% day to day
_HOUR_SHAPE = 10.0      # gamma shape of the hour factor: +-32% hour to hour
_CLUMP_PER_HOUR = 0.06  # chance of a clump in an hour at the mean rate
_H = 3600.0
_INFLUENCER = 50_000    # the influencer detector's least reach (verified authors)

#: (mention, true sentiment, watch, when it reaches the pipeline or None for "as posted")
Item = tuple[Mention, SimSentiment, str, datetime | None]


@dataclass(frozen=True, kw_only=True)
class Extra:
    """Posts added to a baseline from ``start`` to ``end``: rate multiplier ``k`` ramping
    linearly from ``k_start`` to ``k_end``."""

    start: datetime
    end: datetime
    k_start: float
    k_end: float
    negative: bool = True
    """True: extra negatives at (k - 1) x the baseline's negative rate, on one topic.
    False: extra neutral and positive posts at (k - 1) x the baseline's whole rate."""
    topic: str = "outage"


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 60:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, prod = math.exp(-lam), 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k


@dataclass(frozen=True, kw_only=True)
class Everyday:
    """One watch's posts at everyday volumes; :meth:`items` draws them, deterministically."""

    brand: SimBrand
    watch: str
    start: datetime
    end: datetime
    per_hour: float
    """Mean posts an hour over a week (negatives about one in six)."""
    seed: int
    tz: str = "UTC"
    extras: tuple[Extra, ...] = ()
    gaps: tuple[tuple[datetime, datetime, bool], ...] = ()
    """Source outages: (from, to, newest_first); their posts arrive at ``to``."""
    listening_from: datetime | None = None
    """The watch was created then: earlier posts are never seen."""

    def rates(self) -> list[float]:
        """Expected posts in each hour from :attr:`start` (noise included)."""
        rng = random.Random(f"{self.seed}/rates")
        zone = ZoneInfo(self.tz)
        hours = math.ceil((self.end - self.start).total_seconds() / _H)
        out, day_noise, last_day = [], 1.0, None
        for i in range(hours):
            local = (self.start + timedelta(hours=i)).astimezone(zone)
            if local.date() != last_day:
                day_noise, last_day = rng.gammavariate(_DAY_SHAPE, 1 / _DAY_SHAPE), local.date()
            hour_noise = rng.gammavariate(_HOUR_SHAPE, 1 / _HOUR_SHAPE)
            out.append(self.per_hour * DIURNAL[local.hour] * WEEKDAY[local.weekday()]
                       * day_noise * hour_noise)
        return out

    def items(self) -> Iterator[Item]:
        """Every post the pipeline sees, in arrival order."""
        rng = random.Random(f"{self.seed}/posts")
        rates = self.rates()
        span = (self.end - self.start).total_seconds()
        base: list[float] = []
        clumps: list[float] = []
        angry: list[float] = []
        for i, lam in enumerate(rates):
            base += [i * _H + rng.uniform(0, _H) for _ in range(_poisson(rng, lam))]
            if rng.random() < _CLUMP_PER_HOUR * min(2.0, lam / max(self.per_hour, 1e-9)):
                at = i * _H + rng.uniform(0, _H - 900)
                size = rng.randint(3, 8)
                if rng.random() < 0.5:
                    clumps += [at + rng.uniform(0, 900) for _ in range(size)]
                else:
                    # An angry thread: ordinary complaints, no crisis topic or hashtag
                    # (those are events): drawn four times over, negatives kept, 1 in 6 others
                    angry += [at + rng.uniform(0, 900) for _ in range(4 * size)]
        parts: list[Iterator[Item]] = [
            self._draw(sorted(t for t in base if t < span), [], 1, keep_negative=True,
                       benign=True),
            self._draw(sorted(t for t in clumps if t < span), [], 2, keep_negative=True,
                       benign=True),
            self._thin(self._draw(sorted(t for t in angry if t < span), [], 99,
                                  keep_negative=True, benign=True),
                       random.Random(f"{self.seed}/angry"))]
        for n, extra in enumerate(self.extras):
            parts.append(self._extra(extra, rates, rng, 3 + n))
        posts = [item for part in parts for item in part]
        posts = [p for p in posts if self.listening_from is None
                 or p[0].created_at >= self.listening_from]
        return iter(sorted(self._arrivals(posts), key=_arrival))

    @staticmethod
    def _thin(items: Iterator[Item], rng: random.Random) -> Iterator[Item]:
        for item in items:
            if item[1] == "negative" or rng.random() < 1 / 6:
                yield item

    def _extra(self, extra: Extra, rates: list[float], rng: random.Random,
               salt: int) -> Iterator[Item]:
        first = (extra.start - self.start).total_seconds()
        last = (extra.end - self.start).total_seconds()
        times: list[float] = []
        for i, lam in enumerate(rates):
            lo, hi = max(i * _H, first), min((i + 1) * _H, last)
            if hi <= lo:
                continue
            mid = ((lo + hi) / 2 - first) / max(last - first, 1.0)
            k = extra.k_start + (extra.k_end - extra.k_start) * mid
            share = _NEGATIVE if extra.negative else 1.0
            n = _poisson(rng, (k - 1) * lam * share * (hi - lo) / _H)
            times += [rng.uniform(lo, hi) for _ in range(n)]
        crises = [Crisis(brand=self.brand.name, start=timedelta(seconds=max(0.0, first)),
                         duration=timedelta(seconds=max(1.0, last - first)), multiplier=1.0,
                         negative_share=1.0, topic=extra.topic)] if extra.negative else []
        return self._draw(sorted(times), crises, salt, keep_negative=extra.negative)

    def _draw(self, offsets: list[float], crises: list[Crisis], salt: int, *,
              keep_negative: bool, benign: bool = False) -> Iterator[Item]:
        drawn = simulate_at(brand=self.brand, start=self.start, offsets=offsets, crises=crises,
                            seed=self.seed * 31 + salt)
        for mention, truth in drawn:
            if not keep_negative and truth.sentiment == "negative":
                continue  # a launch's extra posts: the praise and questions, not complaints
            if benign and truth.sentiment == "negative" \
                    and mention.author.followers >= _INFLUENCER:
                continue  # an unlabelled influencer event would be a true alert, not noise
            yield mention, truth.sentiment, self.watch, None

    def _arrivals(self, posts: list[Item]) -> list[Item]:
        out: list[Item] = []
        for gap_from, gap_to, newest_first in self.gaps:
            inside = sorted((p for p in posts if gap_from <= p[0].created_at < gap_to),
                            key=lambda p: p[0].created_at, reverse=newest_first)
            for n, p in enumerate(inside):
                out.append((p[0], p[1], p[2], gap_to + timedelta(milliseconds=200 * n)))
        late = {id(p[0]) for p in out}
        out += [p for p in posts if id(p[0]) not in late]
        return out


def _arrival(item: Item) -> datetime:
    return item[3] or item[0].created_at


def local_hour(at: datetime, tz: str) -> int:
    """The hour of day of ``at`` in ``tz``."""
    return at.astimezone(ZoneInfo(tz)).hour if tz != "UTC" else at.astimezone(UTC).hour
