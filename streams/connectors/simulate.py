"""A generator of realistic mentions for demos, tests and benchmarks.

Each brand gets a Poisson stream of mentions at ``rate_per_min``; a :class:`Crisis` multiplies
that rate for a while and turns most of the brand's mentions angry and topical. Everything is
drawn from one ``random.Random(seed)`` and timed in *event time* from ``start``, never from the
wall clock, so the same arguments always give the same mentions (ids included) and a test can
assert exactly what a detector should see. Pacing to wall time is
:func:`streams.connectors.pacing.paced`'s job, not this module's.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from streams.connectors import _sim_texts as _t
from streams.connectors._sim_texts import SimSentiment
from streams.core.records import Author, Engagement, Mention

__all__ = [
    "LANGUAGES",
    "TOPICS",
    "Crisis",
    "SimBrand",
    "SimSentiment",
    "SimTruth",
    "demo_scenario",
    "simulate",
    "simulate_at",
    "simulate_labelled",
]

#: Languages the simulator has templates for.
LANGUAGES: tuple[str, ...] = tuple(_t.BASELINE)
#: Crisis topics the simulator has templates for.
TOPICS: tuple[str, ...] = tuple(_t.CRISIS_NEGATIVE)
_TOPIC_ALIASES = {"breach": "data breach", "data leak": "data breach", "leak": "data breach",
                  "scam": "fraud", "down": "outage"}

# Baseline mix: about one mention in six is negative, as on a quiet day for a consumer brand.
_BASELINE_SENTIMENTS: tuple[SimSentiment, ...] = ("positive", "neutral", "negative")
_BASELINE_CUM = (0.35, 0.83, 1.0)
# During a crisis, this share of the non-negative mentions is neutral talk *about* the crisis
# (questions, news), which is what real crises look like and what risk-term counters pick up.
_CRISIS_NEUTRAL_SHARE = 0.4
_REGULAR_AUTHORS_PER_LANGUAGE = 80
_BIG_ACCOUNT_SHARE = 0.002  # share of mentions posted by a high-reach account
_REPLY_SHARE, _EMOJI_SHARE, _CASUAL_TAG_SHARE = 0.10, 0.30, 0.08


def _topic_key(topic: str) -> str:
    key = re.sub(r"[\s_\-]+", " ", topic.strip().lower())
    return _TOPIC_ALIASES.get(key, key)


@dataclass(frozen=True, kw_only=True)
class SimBrand:
    """One thing people talk about, e.g. the subject of a watch."""

    name: str
    """Display name, e.g. ``"Acme"``; also the base of the support handle and hashtags."""
    terms: tuple[str, ...]
    """Words that appear in mentions about it, e.g. ``("Acme", "AcmePhone")``."""

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("SimBrand name must not be empty")
        if not self.terms or any(not t.strip() for t in self.terms):
            raise ValueError(f"SimBrand {self.name!r} needs at least one non-empty term")


@dataclass(frozen=True, kw_only=True)
class Crisis:
    """A stretch of event time in which one brand's mentions surge and turn negative."""

    brand: str
    """:attr:`SimBrand.name` of the brand in trouble."""
    start: timedelta
    """Offset from the simulation start (event time)."""
    duration: timedelta
    multiplier: float = 6.0
    """Volume multiplier of that brand's mentions during the crisis."""
    negative_share: float = 0.85
    topic: str = "outage"
    """Picks the text templates: one of :data:`TOPICS` (outage, recall, data breach, ...)."""

    def __post_init__(self) -> None:
        if self.start < timedelta(0) or self.duration <= timedelta(0):
            raise ValueError("Crisis needs start >= 0 and duration > 0")
        if not (math.isfinite(self.multiplier) and self.multiplier >= 0):
            raise ValueError(f"Crisis multiplier must be a finite number >= 0, "
                             f"got {self.multiplier}")
        if not 0.0 <= self.negative_share <= 1.0:
            raise ValueError(f"Crisis negative_share must be in [0, 1], got {self.negative_share}")
        if _topic_key(self.topic) not in _t.CRISIS_NEGATIVE:
            raise ValueError(f"unknown crisis topic {self.topic!r}; use one of {', '.join(TOPICS)}")

    @property
    def end(self) -> timedelta:
        return self.start + self.duration


@dataclass(frozen=True, kw_only=True)
class SimTruth:
    """What the simulator meant a mention to be: the ground truth for evaluations."""

    brand: str
    sentiment: SimSentiment
    crisis: str | None
    """The crisis topic if the mention was drawn inside a crisis of its brand, else None."""


@dataclass(frozen=True)
class _Poster:
    author: Author
    language: str


def simulate(
    *,
    brands: Sequence[SimBrand],
    start: datetime,
    duration: timedelta,
    rate_per_min: float,
    crises: Sequence[Crisis] = (),
    seed: int = 0,
    languages: Sequence[str] = ("en", "es", "fr", "de", "pt", "it"),
) -> Iterator[Mention]:
    """Mentions of ``brands`` from ``start`` for ``duration``, in ``created_at`` order.

    Each brand's mentions arrive as a Poisson process of ``rate_per_min`` per minute, times the
    multiplier of any crisis of that brand in progress (the largest, if crises overlap). The
    output is a pure function of the arguments. Arguments are checked at once (``ValueError``);
    mentions are produced lazily, so an endless benchmark can use a very long ``duration``.
    """
    return (mention for mention, _ in simulate_labelled(
        brands=brands, start=start, duration=duration, rate_per_min=rate_per_min,
        crises=crises, seed=seed, languages=languages))


def simulate_labelled(
    *,
    brands: Sequence[SimBrand],
    start: datetime,
    duration: timedelta,
    rate_per_min: float,
    crises: Sequence[Crisis] = (),
    seed: int = 0,
    languages: Sequence[str] = ("en", "es", "fr", "de", "pt", "it"),
) -> Iterator[tuple[Mention, SimTruth]]:
    """Like :func:`simulate`, with the :class:`SimTruth` of every mention beside it."""
    if not brands:
        raise ValueError("simulate needs at least one brand")
    names = [b.name for b in brands]
    if len(set(names)) != len(names):
        raise ValueError(f"brand names must be unique, got {names}")
    for crisis in crises:
        if crisis.brand not in names:
            raise ValueError(f"crisis brand {crisis.brand!r} is not one of the brands {names}")
    if not (math.isfinite(rate_per_min) and rate_per_min >= 0):
        raise ValueError(f"rate_per_min must be a finite number >= 0, got {rate_per_min}")
    if duration < timedelta(0):
        raise ValueError("duration must not be negative")
    langs = list(dict.fromkeys(languages))
    unknown = [lang for lang in langs if lang not in _t.BASELINE]
    if not langs or unknown:
        raise ValueError(f"unsupported languages {unknown or '(none given)'}; "
                         f"use some of {', '.join(LANGUAGES)}")
    start = start.replace(tzinfo=UTC) if start.tzinfo is None else start
    return _Simulation(brands=list(brands), start=start, duration=duration,
                       rate_per_min=rate_per_min, crises=list(crises), seed=seed,
                       languages=langs).run()


def simulate_at(
    *,
    brand: SimBrand,
    start: datetime,
    offsets: Sequence[float],
    crises: Sequence[Crisis] = (),
    seed: int = 0,
    languages: Sequence[str] = ("en", "es", "fr", "de", "pt", "it"),
) -> Iterator[tuple[Mention, SimTruth]]:
    """Mentions of ``brand`` posted at ``offsets`` (seconds after ``start``, ascending): the
    caller decides when people post (a day/night cycle, clumps), the simulator what they say.
    A crisis of the brand covering an offset makes that mention topical, as in
    :func:`simulate_labelled`."""
    times = list(offsets)
    if any(b < a for a, b in itertools.pairwise(times)) or (times and times[0] < 0):
        raise ValueError("simulate_at needs offsets >= 0 in ascending order")
    for crisis in crises:
        if crisis.brand != brand.name:
            raise ValueError(f"crisis brand {crisis.brand!r} is not {brand.name!r}")
    langs = list(dict.fromkeys(languages))
    start = start.replace(tzinfo=UTC) if start.tzinfo is None else start
    sim = _Simulation(brands=[brand], start=start,
                      duration=timedelta(seconds=(times[-1] if times else 0) + 1),
                      rate_per_min=0.0, crises=list(crises), seed=seed, languages=langs)
    return (sim._mention(n, brand, t) for n, t in enumerate(times))


def demo_scenario(
    *, crisis_at: timedelta = timedelta(minutes=11), duration: timedelta = timedelta(minutes=4)
) -> tuple[list[SimBrand], list[Crisis]]:
    """The demo's two brands (Acme and its competitor Globex) and an outage on Acme.

    ``crisis_at`` is an offset from the simulation start. ``escucha run`` plays some history
    first so that detection has a baseline to compare the outage against.
    """
    brands = [
        SimBrand(name="Acme", terms=("Acme", "AcmePhone", "Acme Cloud")),
        SimBrand(name="Globex", terms=("Globex", "GlobexPay")),
    ]
    crises = [Crisis(brand="Acme", start=crisis_at, duration=duration,
                     multiplier=8.0, negative_share=0.85, topic="outage")]
    return brands, crises


def _compact(name: str) -> str:
    """``"Café Olé!"`` -> ``"CafeOle"``: what a handle or hashtag can hold.

    Names with no Latin letters ("ソニー") keep their own letters, as hashtags do; a name of
    punctuation only falls back to "Brand" rather than failing a demo over a watch's name.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return (re.sub(r"[^A-Za-z0-9]", "", ascii_name)
            or re.sub(r"[\W_]", "", name) or "Brand")


class _Simulation:
    """One run: the RNG, the author pool and the arrival schedule, consumed once."""

    def __init__(self, *, brands: list[SimBrand], start: datetime, duration: timedelta,
                 rate_per_min: float, crises: list[Crisis], seed: int,
                 languages: list[str]) -> None:
        self._rng = random.Random(seed)
        self._seed = seed
        self._brands = brands
        self._start = start
        self._end_s = duration.total_seconds()
        self._rate_s = rate_per_min / 60.0
        self._crises = {b.name: [c for c in crises if c.brand == b.name] for b in brands}
        # Rate changes only at crisis edges; between them arrivals are plain exponential gaps.
        self._edges = {
            name: sorted({t for c in cs for t in (c.start.total_seconds(), c.end.total_seconds())})
            for name, cs in self._crises.items()
        }
        self._languages = languages
        weights = [_t.LANGUAGE_WEIGHTS.get(lang, 0.05) for lang in languages]
        self._lang_cum = [sum(weights[: i + 1]) for i in range(len(weights))]
        self._regular, self._big = self._author_pool()

    def run(self) -> Iterator[tuple[Mention, SimTruth]]:
        # One heap entry per brand holding its next arrival: merging lazily keeps memory flat
        # and output in event-time order however long the run. Ties break on brand index.
        heap = [(t, i) for i, b in enumerate(self._brands)
                if (t := self._next_arrival(b.name, 0.0)) < self._end_s]
        heapq.heapify(heap)
        n = 0
        while heap:
            t, i = heapq.heappop(heap)
            brand = self._brands[i]
            yield self._mention(n, brand, t)
            n += 1
            nxt = self._next_arrival(brand.name, t)
            if nxt < self._end_s:
                heapq.heappush(heap, (nxt, i))

    def _active(self, brand: str, t: float) -> Crisis | None:
        active = [c for c in self._crises[brand]
                  if c.start.total_seconds() <= t < c.end.total_seconds()]
        return max(active, key=lambda c: c.multiplier, default=None)

    def _next_arrival(self, brand: str, t: float) -> float:
        # Exact for a piecewise-constant rate: an exponential gap that crosses an edge is thrown
        # away and redrawn from the edge, which memorylessness makes correct.
        while t < self._end_s:
            crisis = self._active(brand, t)
            rate = self._rate_s * (crisis.multiplier if crisis else 1.0)
            edge = next((e for e in self._edges[brand] if e > t), self._end_s)
            if rate > 0:
                candidate = t + self._rng.expovariate(rate)
                if candidate < edge:
                    return candidate
            t = edge
        return math.inf

    def _author_pool(self) -> tuple[dict[str, list[_Poster]], dict[str, list[_Poster]]]:
        rng, taken = self._rng, set[str]()
        regular: dict[str, list[_Poster]] = {}
        big: dict[str, list[_Poster]] = {}
        for lang in self._languages:
            regular[lang] = []
            for _ in range(_REGULAR_AUTHORS_PER_LANGUAGE):
                first = rng.choice(_t.FIRST_NAMES[lang])
                last = rng.choice(_t.LAST_NAMES[lang])
                handle = _unique(_handle(rng, first, last), taken)
                # Log-normal: median ~150 followers, one in ten above 1,000.
                followers = int(rng.lognormvariate(5.0, 1.6))
                verified = followers > 20_000 and rng.random() < 0.3
                regular[lang].append(_Poster(Author(handle=handle, name=f"{first} {last}",
                                                    followers=followers, verified=verified), lang))
            big[lang] = [
                _Poster(Author(handle=_unique(handle, taken), name=name, verified=True,
                               followers=int(10 ** rng.uniform(5.0, 6.6))), lang)
                for handle, name in _t.BIG_ACCOUNTS[lang]
            ]
        return regular, big

    def _mention(self, n: int, brand: SimBrand, t: float) -> tuple[Mention, SimTruth]:
        rng = self._rng
        lang = rng.choices(self._languages, cum_weights=self._lang_cum)[0]
        pool = self._big if rng.random() < _BIG_ACCOUNT_SHARE else self._regular
        poster = rng.choice(pool[lang])
        crisis = self._active(brand.name, t)
        sentiment, template = self._pick_template(lang, crisis)
        if pool is self._big and crisis is None and sentiment == "negative":
            # Outside a crisis, high-reach media accounts report rather than rant: a negative
            # post from one is an event (the influencer scenario injects it on purpose).
            sentiment, template = "neutral", rng.choice(_t.BASELINE[lang]["neutral"])
        text = self._render(template, brand=brand, lang=lang, sentiment=sentiment,
                            crisis=crisis, poster=poster)
        mention_id = f"sim-{self._seed}-{n}"
        handle = poster.author.handle
        mention = Mention(
            source="simulate",
            id=mention_id,
            url=f"https://social.example/@{handle}/{mention_id}",
            author=poster.author,
            text=text,
            language=lang,
            created_at=self._start + timedelta(seconds=t),
            engagement=self._engagement(poster.author.followers, angry=crisis is not None
                                        and sentiment == "negative"),
        )
        topic = _topic_key(crisis.topic) if crisis else None
        return mention, SimTruth(brand=brand.name, sentiment=sentiment, crisis=topic)

    def _pick_template(self, lang: str, crisis: Crisis | None) -> tuple[SimSentiment, str]:
        rng = self._rng
        if crisis is not None:
            topic = _topic_key(crisis.topic)
            if rng.random() < crisis.negative_share:
                return "negative", rng.choice(_t.CRISIS_NEGATIVE[topic][lang])
            if rng.random() < _CRISIS_NEUTRAL_SHARE:
                return "neutral", rng.choice(_t.CRISIS_NEUTRAL[topic][lang])
            # The rest of the crowd carries on as usual, minus the usual complaints.
            sentiment: SimSentiment = "positive" if rng.random() < 0.42 else "neutral"
            return sentiment, rng.choice(_t.BASELINE[lang][sentiment])
        sentiment = rng.choices(_BASELINE_SENTIMENTS, cum_weights=_BASELINE_CUM)[0]
        return sentiment, rng.choice(_t.BASELINE[lang][sentiment])

    def _render(self, template: str, *, brand: SimBrand, lang: str, sentiment: SimSentiment,
                crisis: Crisis | None, poster: _Poster) -> str:
        rng = self._rng
        name = _compact(brand.name)
        friend = rng.choice(self._regular[lang]).author.handle
        tag = ""
        if crisis is not None:
            tag = rng.choice(_t.TOPIC_TAGS[_topic_key(crisis.topic)]).format(name=name)
        # str.replace, not str.format: brand terms are caller data and may contain braces.
        text = (template.replace("{b}", rng.choice(brand.terms))
                .replace("{at}", f"@{name}{_t.SUPPORT_SUFFIX[lang]}")
                .replace("{tag}", tag)
                .replace("{friend}", f"@{friend}")
                .replace("{n}", str(rng.randint(2, 9)))).strip()
        if rng.random() < _REPLY_SHARE and friend != poster.author.handle:
            text = f"@{friend} {text}"
        if rng.random() < _EMOJI_SHARE:
            text = f"{text} {rng.choice(_t.EMOJI[sentiment])}"
        if crisis is None and rng.random() < _CASUAL_TAG_SHARE:
            text = f"{text} {rng.choice(_t.CASUAL_TAGS[lang])}"
        return text

    def _engagement(self, followers: int, *, angry: bool) -> Engagement:
        rng = self._rng
        # Reach grows with the square root of the audience; outrage travels further.
        mean = (0.5 + 0.15 * math.sqrt(followers)) * (3.0 if angry else 1.0)
        likes = int(rng.expovariate(1.0) * mean)
        shares = int(likes * rng.uniform(0.0, 0.4 if angry else 0.2))
        replies = int(likes * rng.uniform(0.0, 0.15)) + (rng.random() < 0.2)
        return Engagement(likes=likes, shares=shares, replies=replies)


def _handle(rng: random.Random, first: str, last: str) -> str:
    first_a, last_a = _compact(first).lower(), _compact(last).lower()
    style = rng.randrange(5)
    if style == 0:
        return f"{first_a}{last_a}"
    if style == 1:
        return f"{first_a}_{last_a}"
    if style == 2:
        return f"{first_a}{rng.randint(1, 999)}"
    if style == 3:
        return f"{first_a[0]}{last_a}{rng.randint(10, 99)}"
    return f"{first_a}.{last_a[:3]}{rng.randint(1, 9)}"


def _unique(handle: str, taken: set[str]) -> str:
    candidate, k = handle, 1
    while candidate in taken:
        k += 1
        candidate = f"{handle}{k}"
    taken.add(candidate)
    return candidate
