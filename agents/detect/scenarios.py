"""Labelled crisis scenarios for backtesting detection, built on the mention simulator.

A scenario is weeks of event-time history for a few watches: a realistic Poisson baseline
(2-20 mentions a minute per watch, about one in six negative) with crises laid over it, and
the labels that say where each crisis is. Mentions come out already enriched: the sentiment is
the simulator's ground truth (no transformer), so a backtest measures the detectors alone.
Everything is drawn from ``random.Random(seed)``; the same arguments give the same mentions,
ids included. Each part of a scenario (a watch's baseline, one spike, one Monday peak) is its
own :func:`~streams.connectors.simulate.simulate_labelled` run, merged in event-time order.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from models.priority import score_priority
from streams.connectors import _sim_texts as _t
from streams.connectors.simulate import TOPICS, Crisis, SimBrand, SimSentiment, simulate_labelled
from streams.core.records import Author, Engagement, EnrichedMention, Mention, ModelInfo, Sentiment

__all__ = [
    "DEFAULT_START",
    "MODEL",
    "SCENARIOS",
    "CrisisLabel",
    "Scenario",
    "ScenarioError",
    "read_labels",
    "register_scenario",
    "write_jsonl",
    "write_labels",
]

#: A Wednesday: a Monday peak never falls in the first days, which are the baseline's to learn.
DEFAULT_START = datetime(2025, 3, 5, tzinfo=UTC)
MODEL = ModelInfo(id="simulator-truth", version="1")
_HISTORY = timedelta(days=2)  # quiet history before the first crisis, to learn a baseline from
_WEEK = timedelta(days=7)
_GAP = timedelta(hours=1)     # at least this much calm after each crisis
_BASE_NEGATIVE = 0.17         # the simulator's baseline negative share (simulate._BASELINE_CUM)
_LABELS = ("negative", "neutral", "positive")
_SENTIMENTS: dict[str, Sentiment] = {
    label: Sentiment(label=label,  # type: ignore[arg-type]
                     scores={other: 0.9 if other == label else 0.05 for other in _LABELS})
    for label in _LABELS
}
_BRANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Acme", ("Acme", "AcmePhone")), ("Globex", ("Globex", "GlobexPay")),
    ("Initech", ("Initech", "Initech Cloud")), ("Umbrella", ("Umbrella", "UmbrellaCare")),
    ("Hooli", ("Hooli", "HooliChat")), ("Wonka", ("Wonka", "WonkaBar")),
    ("Tyrell", ("Tyrell", "Tyrell Nexus")), ("Cyberdyne", ("Cyberdyne", "CyberdyneOS")),
    ("Vandelay", ("Vandelay", "Vandelay Imports")), ("Soylent", ("Soylent", "SoylentShake")),
)


class ScenarioError(ValueError):
    """Bad scenario arguments or a labels file that cannot be used; the message says why."""


@dataclass(frozen=True)
class CrisisLabel:
    """Where a crisis is: ``watch`` in trouble from ``start`` to ``end`` (event time, UTC)."""

    watch: str
    start: datetime
    end: datetime
    kind: str
    """spike, slow_burn, sentiment_flip, influencer, sustained_surge, hour_burst, ..."""
    required: bool = True
    """False for a crisis no detector can be asked to catch (it began before the watch
    existed): signals inside it are neither hits nor false alarms, and recall ignores it."""


@dataclass(frozen=True, kw_only=True)
class _Stream:
    """One simulator run feeding one watch: a baseline, a spike's extra volume, a post."""

    brand: SimBrand
    watch: str
    start: datetime
    duration: timedelta
    rate_per_min: float
    seed: int
    crises: tuple[Crisis, ...] = ()
    take: int | None = None
    """Keep only the first ``take`` mentions (a clump, a single post)."""
    author: Author | None = None
    """If set: the mentions are by this author, posted at ``start``, with ``engagement``."""
    engagement: Engagement | None = None
    languages: tuple[str, ...] = ("en", "es", "fr", "de", "pt", "it")

    def items(self) -> Iterator[tuple[Mention, SimSentiment, str, datetime | None]]:
        drawn = simulate_labelled(brands=[self.brand], start=self.start, duration=self.duration,
                                  rate_per_min=self.rate_per_min, crises=self.crises,
                                  seed=self.seed, languages=self.languages)
        for mention, truth in itertools.islice(drawn, self.take):
            if self.author is not None:
                mention = mention.model_copy(update={
                    "author": self.author, "created_at": self.start,
                    "engagement": self.engagement or mention.engagement})
            yield mention, truth.sentiment, self.watch, None


class _Recipe(Protocol):
    def items(self) -> Iterator[tuple[Mention, SimSentiment, str, datetime | None]]: ...


@dataclass(frozen=True)
class Scenario:
    """A labelled stretch of history; :meth:`mentions` draws it (lazily, every time anew)."""

    name: str
    watches: list[str]
    start: datetime
    end: datetime
    labels: list[CrisisLabel]
    seed: int = 0
    description: str = ""
    tz: str = "UTC"
    """Local time zone of the audience (where seasonality is defined)."""
    terms: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Each watch's terms, e.g. for a detector's ``watch_terms``."""
    recipe: tuple[_Recipe, ...] = field(default=(), repr=False, compare=False)

    def mentions(self) -> Iterator[EnrichedMention]:
        """Every mention of every watch in the order the pipeline gets them (the post time,
        or later for posts a connector back-fills), deterministic from the seed."""
        delays = random.Random(self.seed)
        merged = heapq.merge(*(s.items() for s in self.recipe),
                             key=lambda item: item[3] or item[0].created_at)
        for n, (mention, label, watch, arrival) in enumerate(merged):
            mid = f"{self.name}-{self.seed}-{n}"
            mention = mention.model_copy(update={
                "id": mid, "url": f"https://social.example/@{mention.author.handle}/{mid}"})
            sentiment = _SENTIMENTS[label]
            priority, reasons = score_priority(mention, sentiment.scores["negative"])
            yield EnrichedMention(
                mention=mention, watch_id=watch, watch_ids=[watch], sentiment=sentiment,
                priority=priority, reasons=reasons, model=MODEL,
                # Classification lags arrival by a second or so, as in the real pipeline.
                classified_at=(arrival or mention.created_at)
                + timedelta(milliseconds=200 + delays.randrange(1800)),
            )


# --- building blocks -------------------------------------------------------------------------

def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "", name.lower()) or "watch"


_Watches = list[tuple[SimBrand, float]]
_Build = Callable[[random.Random, datetime, datetime, _Watches],
                  tuple[list[CrisisLabel], list[Any]]]


def register_scenario(name: str, *, weeks: float = 1, watches: int = 3,
                      rates: tuple[float, float] | None = (2.0, 20.0),
                      tz: str = "UTC") -> Callable[[_Build], Callable[..., Scenario]]:
    """Register ``build`` as the factory ``name(*, seed, start, weeks, rate_per_min)``.

    ``rates`` bounds the log-uniform draw of each watch's baseline rate (most watches small, a
    few busy, as in real accounts); None spreads them evenly on a log scale from 2 to 20.
    ``rate_per_min`` overrides every watch's rate (quick tests and demos).
    """
    default_weeks = weeks

    def register(build: _Build) -> Callable[..., Scenario]:
        def factory(*, seed: int = 0, start: datetime | None = None, weeks: float | None = None,
                    rate_per_min: float | None = None) -> Scenario:
            weeks = default_weeks if weeks is None else weeks
            if not (math.isfinite(weeks) and weeks > 0):
                raise ScenarioError(f"{name}: weeks must be a positive number, got {weeks}")
            if rate_per_min is not None and not (math.isfinite(rate_per_min)
                                                 and rate_per_min > 0):
                raise ScenarioError(f"{name}: rate_per_min must be a positive number, "
                                    f"got {rate_per_min}")
            begin = DEFAULT_START if start is None else start
            begin = begin.replace(tzinfo=UTC) if begin.tzinfo is None else begin.astimezone(UTC)
            end = begin + weeks * _WEEK
            # The name too, so two scenarios with one seed do not share rates and crisis hours.
            rng = random.Random(f"{name}/{seed}")
            chosen: _Watches = []
            for i, (brand, terms) in enumerate(_BRANDS[:watches]):
                rate = rate_per_min or (
                    round(2 * 10 ** (i / max(1, watches - 1)), 2) if rates is None
                    else round(math.exp(rng.uniform(*map(math.log, rates))), 2))
                chosen.append((SimBrand(name=brand, terms=terms), rate))
            try:
                labels, recipe = build(rng, begin, end, chosen)
            except ScenarioError as exc:
                raise ScenarioError(f"{name}: {exc}") from exc
            return Scenario(
                name=name, watches=[_slug(b.name) for b, _ in chosen], start=begin, end=end,
                labels=sorted(labels, key=lambda x: (x.start, x.watch)), seed=seed,
                description=(build.__doc__ or "").strip(), tz=tz,
                terms={_slug(b.name): b.terms for b, _ in chosen}, recipe=tuple(recipe))

        factory.__name__ = factory.__qualname__ = name
        factory.__doc__ = build.__doc__
        SCENARIOS[name] = factory
        return factory

    return register


def _baselines(start: datetime, end: datetime, watches: _Watches, rng: random.Random,
               crises: dict[str, list[Crisis]] | None = None) -> list[_Stream]:
    return [_Stream(brand=b, watch=_slug(b.name), start=start, duration=end - start,
                    rate_per_min=rate, seed=rng.randrange(2**31),
                    crises=tuple((crises or {}).get(b.name, ())))
            for b, rate in watches]


def _layout(rng: random.Random, start: datetime, end: datetime, per_week: float,
            length: timedelta) -> list[datetime]:
    """Crisis starts after the learning history: one per equal slice, at a random hour."""
    first = start + _HISTORY
    usable = end - first
    n = max(1, round(per_week * (end - start) / _WEEK))
    while n > 0 and usable / n < length + _GAP:
        n -= 1
    if n == 0:
        raise ScenarioError(f"too short: needs {_HISTORY} of history plus {length + _GAP} "
                            "for one crisis; give more weeks")
    piece = usable / n
    slack = (piece - length - _GAP).total_seconds()
    return [first + i * piece + timedelta(seconds=round(rng.uniform(0, slack)))
            for i in range(n)]


# --- the scenarios ---------------------------------------------------------------------------

SCENARIOS: dict[str, Callable[..., Scenario]] = {}
"""Scenario name -> ``factory(*, seed=0, start=None, weeks=None, rate_per_min=None)``."""


@register_scenario("sudden_spike")
def _sudden_spike(rng: random.Random, begin: datetime, end: datetime,
                  watches: _Watches) -> tuple[list[CrisisLabel], list[_Stream]]:
    """Volume jumps 5x for 20-40 min, the extra mentions angry; ~5 a week, at any hour."""
    recipe, labels = _baselines(begin, end, watches, rng), []
    for at in _layout(rng, begin, end, 5, timedelta(minutes=40)):
        brand, rate = rng.choice(watches)
        length = timedelta(minutes=rng.randint(20, 40))
        crisis = Crisis(brand=brand.name, start=timedelta(0), duration=length, multiplier=1.0,
                        negative_share=0.9, topic=rng.choice(TOPICS))
        recipe.append(_Stream(brand=brand, watch=_slug(brand.name), start=at, duration=length,
                              rate_per_min=4 * rate, seed=rng.randrange(2**31), crises=(crisis,)))
        labels.append(CrisisLabel(_slug(brand.name), at, at + length, "spike"))
    return labels, recipe


@register_scenario("slow_burn")
def _slow_burn(rng: random.Random, begin: datetime, end: datetime,
               watches: _Watches) -> tuple[list[CrisisLabel], list[_Stream]]:
    """Negative volume climbs from 1x to 4x over 2 hours, then back over 2 hours; 3 a week."""
    recipe, labels = _baselines(begin, end, watches, rng), []
    ramp, step = timedelta(hours=2), timedelta(minutes=10)
    for at in _layout(rng, begin, end, 3, 2 * ramp):
        brand, rate = rng.choice(watches)
        topic = rng.choice(TOPICS)
        crises = []
        for i in range(int(2 * ramp / step)):
            # Extra negatives on top of the baseline's: (k - 1) x its negative rate, where k
            # rises linearly to 4 at the peak and falls back to 1.
            up = (i + 0.5) * step / ramp
            k = 1 + 3 * (up if up <= 1 else 2 - up)
            crises.append(Crisis(brand=brand.name, start=i * step, duration=step,
                                 multiplier=k - 1, negative_share=1.0, topic=topic))
        recipe.append(_Stream(brand=brand, watch=_slug(brand.name), start=at, duration=2 * ramp,
                              rate_per_min=_BASE_NEGATIVE * rate, seed=rng.randrange(2**31),
                              crises=tuple(crises)))
        labels.append(CrisisLabel(_slug(brand.name), at, at + 2 * ramp, "slow_burn"))
    return labels, recipe


@register_scenario("sentiment_flip")
def _sentiment_flip(rng: random.Random, begin: datetime, end: datetime,
                    watches: _Watches) -> tuple[list[CrisisLabel], list[_Stream]]:
    """Flat volume while the negative share jumps from ~17% to 60% for an hour; 4 a week."""
    crises: dict[str, list[Crisis]] = {}
    labels = []
    for at in _layout(rng, begin, end, 4, timedelta(hours=1)):
        brand, _ = rng.choice(watches)
        crises.setdefault(brand.name, []).append(Crisis(
            brand=brand.name, start=at - begin, duration=timedelta(hours=1), multiplier=1.0,
            negative_share=0.6, topic=rng.choice(TOPICS)))
        labels.append(CrisisLabel(_slug(brand.name), at, at + timedelta(hours=1),
                                  "sentiment_flip"))
    return labels, _baselines(begin, end, watches, rng, crises)


@register_scenario("influencer")
def _influencer(rng: random.Random, begin: datetime, end: datetime,
                watches: _Watches) -> tuple[list[CrisisLabel], list[_Stream]]:
    """One angry post by a verified account with 500k+ followers; 5 a week."""
    recipe, labels = _baselines(begin, end, watches, rng), []
    window = timedelta(minutes=30)
    for at in _layout(rng, begin, end, 5, window):
        brand, _ = rng.choice(watches)
        lang = rng.choice(sorted(_t.BIG_ACCOUNTS))
        handle, display = rng.choice(_t.BIG_ACCOUNTS[lang])
        author = Author(handle=handle, name=display, verified=True,
                        followers=rng.randint(500_000, 4_000_000))
        likes = rng.randint(2_000, 40_000)
        engagement = Engagement(likes=likes, shares=int(likes * rng.uniform(0.2, 0.6)),
                                replies=int(likes * rng.uniform(0.05, 0.2)))
        # The text is the first mention of a one-hour all-negative crisis run.
        post = Crisis(brand=brand.name, start=timedelta(0), duration=timedelta(hours=1),
                      multiplier=1.0, negative_share=1.0, topic=rng.choice(TOPICS))
        recipe.append(_Stream(brand=brand, watch=_slug(brand.name), start=at,
                              duration=timedelta(hours=1), rate_per_min=60.0,
                              seed=rng.randrange(2**31), crises=(post,), take=1, author=author,
                              engagement=engagement, languages=(lang,)))
        labels.append(CrisisLabel(_slug(brand.name), at, at + window, "influencer"))
    return labels, recipe


@register_scenario("weekly_seasonality", weeks=3, watches=2, tz="Europe/Madrid")
def _weekly_seasonality(rng: random.Random, begin: datetime, end: datetime,
                        watches: _Watches) -> tuple[list[CrisisLabel], list[_Stream]]:
    """Every Monday 09:00-12:00 Madrid time volume is 2-2.5x with the usual mix: no crisis."""
    recipe = _baselines(begin, end, watches, rng)
    zone = ZoneInfo("Europe/Madrid")
    day = begin.astimezone(zone).date()
    while (peak := datetime.combine(day, time(9), zone).astimezone(UTC)) < end:
        peak_end = datetime.combine(day, time(12), zone).astimezone(UTC)
        if day.weekday() == 0 and peak >= begin and peak_end <= end:
            for brand, rate in watches:
                recipe.append(_Stream(brand=brand, watch=_slug(brand.name), start=peak,
                                      duration=peak_end - peak, seed=rng.randrange(2**31),
                                      rate_per_min=rng.uniform(1.0, 1.5) * rate))
        day += timedelta(days=1)
    return [], recipe


@register_scenario("noisy_low_volume", rates=(0.1, 0.3))
def _noisy_low_volume(rng: random.Random, begin: datetime, end: datetime,
                      watches: _Watches) -> tuple[list[CrisisLabel], list[_Stream]]:
    """0.1-0.3 mentions a minute, with a clump of 2-4 every few hours: no crisis."""
    recipe = _baselines(begin, end, watches, rng)
    clump = timedelta(minutes=5)
    for brand, _ in watches:
        at = begin + timedelta(hours=rng.expovariate(1 / 6))
        while at + clump <= end:
            recipe.append(_Stream(brand=brand, watch=_slug(brand.name), start=at,
                                  duration=clump, rate_per_min=10.0, seed=rng.randrange(2**31),
                                  take=rng.randint(2, 4)))
            at += timedelta(hours=rng.expovariate(1 / 6))
    return [], recipe


@register_scenario("baseline_week", watches=10, rates=None)
def _baseline_week(rng: random.Random, begin: datetime, end: datetime,
                   watches: _Watches) -> tuple[list[CrisisLabel], list[_Stream]]:
    """10 watches at 2 to 20 mentions a minute and nothing wrong: false signals and speed."""
    return [], _baselines(begin, end, watches, rng)


# --- files -----------------------------------------------------------------------------------

def write_jsonl(scenario: Scenario, path: str | Path) -> int:
    """Write the scenario's enriched mentions as JSON lines; return how many."""
    n = 0
    with Path(path).open("w", encoding="utf-8") as fh:
        for em in scenario.mentions():
            fh.write(em.model_dump_json())
            fh.write("\n")
            n += 1
    return n


def write_labels(scenario: Scenario, path: str | Path) -> None:
    """Write the labels as a JSON list of ``{watch, start, end, kind}`` (ISO 8601, UTC), with
    ``"required": false`` on the labels that are not."""
    items = [{"watch": x.watch, "start": x.start.isoformat(), "end": x.end.isoformat(),
              "kind": x.kind, **({} if x.required else {"required": False})}
             for x in scenario.labels]
    Path(path).write_text(json.dumps(items, indent=2) + "\n", encoding="utf-8")


def read_labels(path: str | Path) -> list[CrisisLabel]:
    """Read a labels file written by :func:`write_labels` (or by hand); :class:`ScenarioError`
    names the file and the entry at fault."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ScenarioError(f"{path}: no such labels file") from exc
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: "
                            f"{exc.msg})") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(data, list):
        raise ScenarioError(f"{path}: expected a JSON list of "
                            '{"watch", "start", "end", "kind"} objects')
    return [_label(path, i, item) for i, item in enumerate(data)]


def _label(path: str | Path, i: int, item: Any) -> CrisisLabel:
    where = f"{path}: label {i}"
    if not isinstance(item, dict):
        raise ScenarioError(f"{where}: expected an object with watch, start, end and kind")
    missing = [k for k in ("watch", "start", "end", "kind") if k not in item]
    if missing:
        raise ScenarioError(f"{where}: missing {', '.join(missing)}")
    for key in ("watch", "kind", "start", "end"):
        if not isinstance(item[key], str) or not item[key].strip():
            raise ScenarioError(f"{where}: {key} must be a non-empty string")
    times = []
    for key in ("start", "end"):
        try:
            at = datetime.fromisoformat(item[key])
        except ValueError as exc:
            raise ScenarioError(f"{where}: {key} {item[key]!r} is not an ISO 8601 time, "
                                "e.g. 2025-03-05T14:30:00+00:00") from exc
        times.append(at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC))
    if times[1] < times[0]:
        raise ScenarioError(f"{where}: end {item['end']} is before start {item['start']}")
    required = item.get("required", True)
    if not isinstance(required, bool):
        raise ScenarioError(f"{where}: required must be true or false, got {required!r}")
    return CrisisLabel(watch=item["watch"], start=times[0], end=times[1], kind=item["kind"],
                       required=required)
