"""Crisis detection, free of Kafka: per-watch state in, explained Signals out, in event time.

The state is a plain JSON-able dict (it lives in a Faust table and its changelog, and the
backtest replays history through this same code). Nothing here reads the wall clock: time
is the posts' own time, clamped to their classification time against skewed source clocks.

Baseline: a per-minute rate that follows trends (an EWMA of recent minutes, winsorised so a
crisis does not teach itself to be normal), times an hour-of-week factor once a week of
history exists. Tests: Poisson tails for counts, a binomial tail for the negative share, all
behind minimum counts and distinct-author guards. A detector fires once per episode and
again only if the severity rises.

Counts are of distinct mentions: the state remembers the key (``source:id``, as
:func:`~streams.core.records.key_digest`) of every mention it counted while that mention's
minute can still take mentions (the lateness window), so one that classify processed twice
(a crash, a rebalance, a hole read again: a new enriched-topic offset each time) is
recognised and counted once. Older ones are dropped as too late anyway.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from agents.classify.matching import fold
from agents.detect.stories import prune, summarise, tally
from agents.detect.storybook import StoryBook
from agents.detect.surge import SURGE, SurgeDetector
from agents.detect.tails import binomial_tail, negbin_tail, poisson_tail
from streams.config.settings import DetectSettings
from streams.core.records import (
    EnrichedMention,
    Phrase,
    SampleMention,
    Severity,
    Signal,
    key_digest,
    stable_id,
)
from streams.core.terms import terms_of
from streams.i18n.summaries import render_summary

__all__ = ["DETECTORS", "MAX_IDS", "DetectionEngine", "binomial_tail", "negbin_tail",
           "poisson_tail"]

DETECTORS = ("volume_spike", "negative_spike", "sentiment_shift", "influencer",
             "risk_term_surge", "emerging_term", SURGE)
_RANK = {"info": 0, "warning": 1, "critical": 2}
_KEEP_MIN = 60           # minutes of counts kept (≥ every window + lateness)
_DETAIL_MIN = 30         # minutes of terms/authors/samples kept, for explanations
_MAX_TERMS, _MAX_AUTHORS, _MAX_SAMPLES, _MAX_SEEN = 25, 40, 3, 3000
_PER_AUTHOR = 2          # posts one author adds to a spike window: more is one voice repeating
#: Identities of counted mentions kept (the newest): each costs ~26 bytes of the saved state,
#: which one broker record must hold (1 MB). Unbounded, a watch at ~60 mentions/s for the
#: 10-minute lateness window passed the limit and the producer crashed the worker (`escucha
#: bench e2e`, 2026-12-07). A mention comes back at a new offset when classify wrote it again
#: after a crash or a rebalance: within a batch retry or a rebalance, seconds to a minute or
#: two later; 12,000 cover 2.5 minutes at a worker's full pace (~80/s). Beyond them such a
#: copy would be counted twice; nothing else depends on them.
MAX_IDS = 12_000
_WEEK_MIN = 7 * 24 * 60


def _alpha(halflife_min: float) -> float:
    return float(1 - 0.5 ** (1 / halflife_min))


class DetectionEngine:
    """All detectors of one watch (one instance can serve many watches' states)."""

    def __init__(self, cfg: DetectSettings, *, watch_terms: frozenset[str] = frozenset(),
                 on_duplicate: Callable[[], None] = lambda: None,
                 stories: StoryBook | None = None) -> None:
        self.cfg = cfg
        self.watch_terms = frozenset(fold(t).lstrip("#@$") for t in watch_terms)
        self._a_level = _alpha(cfg.level_halflife_min)
        self._a_share = _alpha(cfg.share_halflife_min)
        # Windows longer than the defaults need their minutes kept longer too.
        span = max(cfg.spike_window_min, cfg.shift_window_min, cfg.term_window_min)
        self._keep_counts = max(_KEEP_MIN, span + cfg.lateness_min,
                                cfg.spike_window_min + cfg.spike_recent_min)
        self._keep_terms = max(_DETAIL_MIN, cfg.term_window_min)
        #: Mentions this engine recognised as already counted (re-reads); each also told to
        #: ``on_duplicate`` (the worker's metric).
        self.duplicates = 0
        self._on_duplicate = on_duplicate
        self._surge = SurgeDetector(cfg) if cfg.surge else None
        #: The near-duplicate indexes, one per watch, in memory (agents/detect/stories.py);
        #: the worker shares one book with its mention store (agents/detect/storybook.py).
        self._stories = stories or StoryBook()

    # -- time -----------------------------------------------------------------------------
    def _event_seconds(self, em: EnrichedMention) -> float:
        posted = em.mention.created_at.timestamp()
        # A source whose clock runs ahead would otherwise drag the watch's "now" forward.
        return min(posted, em.classified_at.timestamp() + self.cfg.skew_tolerance_s)

    def _minute(self, seconds: float) -> int:
        return int(seconds // self.cfg.bucket_s)

    def _when(self, minute: int) -> datetime:
        return datetime.fromtimestamp(minute * self.cfg.bucket_s, UTC)

    # -- baseline -------------------------------------------------------------------------
    def _slot(self, minute: int) -> str:
        t = self._when(minute)
        return str(t.weekday() * 24 + t.hour)

    def _seasonal(self, st: dict[str, Any], minute: int) -> float:
        mean = st.get("how_mean", 0.0)  # set once a day's worth of hour slots is learned
        slot = st.get("how", {}).get(self._slot(minute))
        if not self.cfg.seasonal or not mean or slot is None or slot[1] < 1:
            return 1.0
        return float(min(5.0, max(0.2, slot[0] / mean)))

    def _close(self, st: dict[str, Any], minute: int) -> None:
        """Fold a finished minute into the baselines."""
        vol, neg, _pos, risk, _authors = st["m"].get(str(minute), [0, 0, 0, 0, 0])
        lvl = st["lvl"]
        st["n"] = n = st.get("n", 0) + 1
        # Bias-corrected start: early on the average of the minutes seen so far, not an
        # EWMA dragged towards its zero start (which makes every first hour look like a spike).
        a_level, a_share = max(self._a_level, 1 / n), max(self._a_share, 1 / n)
        for i, value in enumerate((vol, neg)):
            cap = lvl[i] + 4 * math.sqrt(lvl[i]) + 3 if n > 30 else value
            lvl[i] += a_level * (min(value, cap) - lvl[i])  # a crisis must not become normal
        sh = st["sh"]
        cap = lvl[0] + 4 * math.sqrt(lvl[0]) + 3 if n > 30 else vol
        for i, value in enumerate((vol, neg, risk)):
            sh[i] += a_share * (min(value, cap) - sh[i])
        acc = st.setdefault("hacc", [self._slot(minute), 0, 0])
        if acc[0] != self._slot(minute):
            self._close_hour(st, acc)
            acc[:] = [self._slot(minute), 0, 0]
        acc[1] += vol
        acc[2] += 1
        for term, n in st["tm"].get(str(minute), {}).items():
            seen = st["seen"].setdefault(term, [0, minute])
            seen[0] += n
            seen[1] = minute
        if len(st["seen"]) > _MAX_SEEN:
            oldest = sorted(st["seen"].items(), key=lambda kv: kv[1][1])
            for term, _ in oldest[: len(st["seen"]) - _MAX_SEEN]:
                del st["seen"][term]

    def _close_hour(self, st: dict[str, Any], acc: list[Any]) -> None:
        if acc[2] < 30:
            return  # a partial hour says little about its slot
        slot = st.setdefault("how", {}).setdefault(str(acc[0]), [0.0, 0])
        rate = acc[1] / acc[2]
        slot[0] = rate if slot[1] == 0 else slot[0] + 0.5 * (rate - slot[0])
        slot[1] += 1
        learned = [v[0] for v in st["how"].values() if v[1] >= 1]
        st["how_mean"] = sum(learned) / len(learned) if len(learned) >= 24 else 0.0

    def _advance(self, st: dict[str, Any], minute: int) -> None:
        """Move the watch's clock to ``minute``: the watermark is ``lateness_min`` behind it."""
        now = st["t"]
        # Minutes join the baseline only once no late mention can still land in them.
        target = minute - self.cfg.lateness_min - 1
        closed = st.get("closed", now - self.cfg.lateness_min - 1)
        # A silence the baseline cannot explain (no mention where it expects so many that
        # none is as unlikely as a spike) is missing data, a source outage or a paused
        # connector, not a rate of zero: learnt as zeros, it decayed the level so far that
        # ordinary traffic coming back looked like a spike. Only its plausible part is
        # learnt; the baselines then wait where they were.
        lvl = st["lvl"][0]
        plausible = -math.log(self.cfg.max_p_value) / lvl if lvl > 0 else _WEEK_MIN
        # Nor are the minutes before the watch's first mention: it was not listening then, and
        # learnt as zeros they made a new watch's baseline 0 ("244x the expected 0.0") as
        # soon as warmup_min counted them.
        for m in range(max(closed + 1, st["first"]),
                       min(target, now + int(min(plausible, _WEEK_MIN))) + 1):
            self._close(st, m)
        st["closed"] = max(closed, target)
        if self._surge is not None:
            self._surge.close(st, (target + 1) * self.cfg.bucket_s)
        # Mentions so far are all at or before ``now``: after term_window_min more minutes
        # every one of them has left the term window.
        for m in range(now, min(minute, now + self.cfg.term_window_min)):
            leaving = st["tm"].get(str(m + 1 - self.cfg.term_window_min), {})
            for term, n in leaving.items():  # out of the term window now
                left = st["wt"].get(term, 0) - n
                if left > 0:
                    st["wt"][term] = left
                else:
                    st["wt"].pop(term, None)
        st["t"] = minute
        # Identities are needed only while their minute can still take mentions: a copy
        # arriving later is dropped by the lateness rule before it is looked up.
        ids = st.setdefault("ids", {})
        for k in [k for k, m in ids.items() if m < minute - self.cfg.lateness_min]:
            del ids[k]
        horizon = minute - self._keep_counts
        for k in [k for k in st["m"] if int(k) < horizon]:
            del st["m"][k]
        for key in ("a", "na", "tm", "s"):
            keep = self._keep_terms if key == "tm" else _DETAIL_MIN  # tm: until out of "wt"
            for k in [k for k in st.get(key, {}) if int(k) < minute - keep]:
                del st[key][k]
        prune(st, minute - _DETAIL_MIN)

    def _expected(self, st: dict[str, Any], minute: int) -> list[float]:
        f = self._seasonal(st, minute)
        out = [st["lvl"][0] * f, st["lvl"][1] * f]
        if self._surge is not None:
            # The hourly model knows the day's shape from the first days on; the per-minute
            # level lags every morning rise by hours, and at everyday volumes a lagging
            # baseline made each busy morning a "spike". The higher of the two is expected.
            per_min = self.cfg.bucket_s / 3600
            hourly = self._surge.expected_at(st, minute * self.cfg.bucket_s)
            out = [max(out[0], hourly[0] * per_min), max(out[1], hourly[1] * per_min)]
        return out

    # -- ingest ---------------------------------------------------------------------------
    def _new_state(self, minute: int) -> dict[str, Any]:
        return {"t": minute, "first": minute, "m": {}, "a": {}, "na": {}, "tm": {},
                "s": {}, "lvl": [0.0, 0.0], "sh": [0.0, 0.0, 0.0], "seen": {}, "fired": {},
                "wt": {}, "ids": {}, "now": minute * self.cfg.bucket_s}

    def _add(self, st: dict[str, Any], minute: int, em: EnrichedMention,
             seconds: float) -> set[str]:
        k = str(minute)
        counts = st["m"].setdefault(k, [0, 0, 0, 0, 0])
        negative = em.sentiment.label == "negative"
        counts[0] += 1
        counts[1] += negative
        counts[2] += em.sentiment.label == "positive"
        counts[3] += any(r.startswith("risk:") for r in em.reasons)
        m = em.mention
        if self._surge is not None:
            self._surge.add(st, seconds, negative=negative, author=m.author.handle)
        for key in ("a", "na") if negative else ("a",):  # na: authors of negative mentions
            authors = st.setdefault(key, {}).setdefault(k, {})
            if m.author.handle in authors or len(authors) < _MAX_AUTHORS:
                authors[m.author.handle] = authors.get(m.author.handle, 0) + 1
        story = self._stories.story(em.watch_id, text=m.text, key=m.key, at=seconds)
        # A story named after another mention: this one copies an earlier post.
        tally(st, k, story, text=m.text, author=m.author.handle, negative=negative,
              seconds=seconds, repeated=story != stable_id("story", m.key))
        terms = st["tm"].setdefault(k, {})
        mine = terms_of(m.text, exclude=self.watch_terms)
        in_window = minute > st["t"] - self.cfg.term_window_min
        for tok in mine:
            if tok in terms or len(terms) < _MAX_TERMS:
                terms[tok] = terms.get(tok, 0) + 1
                if in_window:  # rolling counts of the term window, kept in step below
                    st["wt"][tok] = st["wt"].get(tok, 0) + 1
        if negative:
            samples = st["s"].setdefault(k, [])
            samples.append({"key": m.key, "url": m.url, "author": m.author.handle,
                            "text": m.text[:280], "priority": em.priority,
                            "language": m.language, "sentiment": "negative"})
            samples.sort(key=lambda s: (-s["priority"], s["key"]))
            del samples[_MAX_SAMPLES:]
        return mine

    def observe(self, state: dict[str, Any], em: EnrichedMention) -> list[Signal]:
        """Fold one mention into ``state`` (mutated) and return the signals it triggers."""
        seconds = self._event_seconds(em)
        minute = self._minute(seconds)
        if not state:
            state.update(self._new_state(minute))
        st = state
        ids = st.setdefault("ids", {})  # states saved before identities were kept lack it
        digest = key_digest(em.mention.key)
        if digest in ids:
            self.duplicates += 1
            self._on_duplicate()
            return []  # counted already (a re-read): twice would look exactly like a spike
        signals = self._influencer(st, em, seconds)  # a single post matters even when late
        if minute < st["t"] - self.cfg.lateness_min:
            return signals  # too late for its window; counted nowhere
        ids[digest] = minute
        if len(ids) > MAX_IDS:
            del ids[next(iter(ids))]  # the oldest: insertion order survives the JSON state
        if minute > st["t"]:
            self._advance(st, minute)
        st["first"] = min(st["first"], minute)
        st["now"] = max(st["now"], seconds)
        mine = self._add(st, minute, em, seconds)
        if st.get("n", 0) < max(1, self.cfg.warmup_min):
            return signals  # the baseline has not learned enough minutes yet
        ctx = _Window(self, st, em, mine)
        for detector in (ctx.volume_spike, ctx.negative_spike, ctx.sentiment_shift,
                         ctx.risk_term_surge, ctx.emerging_term):
            found = detector()
            if found is not None:
                signals.append(found)
        if self._surge is not None and em.sentiment.label == "negative":
            found = ctx.surge(self._surge)
            if found is not None:
                signals.append(found)
        return signals

    # -- single posts ---------------------------------------------------------------------
    def _influencer(self, st: dict[str, Any], em: EnrichedMention, seconds: float) -> list[Signal]:
        cfg, m = self.cfg, em.mention
        if em.sentiment.label != "negative" or em.sentiment.scores.get("negative", 0) < 0.5:
            return []
        age_min = max(1.0, (em.classified_at - m.created_at).total_seconds() / 60)
        interactions = m.engagement.likes + 2 * m.engagement.shares + m.engagement.replies
        velocity = interactions / age_min
        reach = m.author.followers
        viral = interactions >= 500 and velocity >= cfg.influencer_interactions_per_min
        if not (reach >= cfg.influencer_followers or viral
                or (m.author.verified and reach >= cfg.influencer_verified_followers)):
            return []
        severity: Severity = "critical" if reach >= 10 * cfg.influencer_followers else "warning"
        minute = self._minute(seconds)
        if not _fire(st or {"fired": {}}, f"influencer:{m.author.handle}", severity, minute,
                     self.cfg.influencer_cooldown_min):
            return []
        # The sentence as data, said in each channel's language (streams/i18n/summaries.py);
        # the stored English text is its English rendering.
        said = Phrase(key="influencer_verified" if m.author.verified else "influencer",
                      params={"handle": m.author.handle, "reach": reach,
                              "velocity": velocity, "text": m.text[:200]})
        sample = SampleMention(key=m.key, url=m.url, author=m.author.handle, text=m.text[:280],
                               priority=em.priority, language=m.language,
                               sentiment=em.sentiment.label)
        return [Signal(
            id=stable_id(em.watch_id, "influencer", m.key, severity), watch_id=em.watch_id,
            detector="influencer", severity=severity,
            window_start=datetime.fromtimestamp(seconds, UTC),  # clamped: never after its end
            window_end=self._when(minute + 1), observed=float(reach),
            expected=float(cfg.influencer_followers), score=round(velocity, 2),
            summary=render_summary([said]), summary_parts=[said], top_terms=[], samples=[sample],
            model=em.model, trigger_posted_at=m.created_at)]


def _fire(st: dict[str, Any], key: str, severity: Severity, minute: int, cooldown: int) -> bool:
    """True if this is a new episode, or the same one turned worse."""
    fired = st.setdefault("fired", {})
    rec = fired.get(key)
    if rec is not None and minute <= rec[0] and _RANK[severity] <= rec[1]:
        rec[0] = minute + cooldown  # still going: the episode lasts
        return False
    fired[key] = [minute + cooldown, _RANK[severity]]
    return True


class _Window:
    """The sliding windows ending now, for one evaluation."""

    def __init__(self, engine: DetectionEngine, st: dict[str, Any], em: EnrichedMention,
                 terms: set[str]) -> None:
        self.e, self.cfg, self.st, self.em, self.terms = engine, engine.cfg, st, em, terms
        self.now_min = st["t"]
        self.frac = min(1.0, max(1 / 60, (st["now"] - self.now_min * self.cfg.bucket_s)
                                 / self.cfg.bucket_s))
        # The rows of the widest window, newest first, read once per evaluation.
        span = max(self.cfg.spike_window_min, self.cfg.shift_window_min,
                   self.cfg.term_window_min)
        m = st["m"]
        self._rows = [m.get(str(self.now_min - i)) for i in range(span)]
        # Expected counts from the baseline as it stands: it lags lateness_min behind and is
        # winsorised, so the crisis being judged has not taught it much yet.
        # The expectation changes only by the hour (the level is fixed within an evaluation,
        # the seasonal slots are hours): computed once per hour, not per minute (a third of
        # the backtest's time went into the per-minute version, measured with py-spy).
        per_hour: dict[int, list[float]] = {}
        hour_of = 3600 // engine.cfg.bucket_s or 1
        self._xrows = []
        for i in range(span):
            minute = self.now_min - i
            x = per_hour.get(minute // hour_of)
            if x is None:
                x = per_hour[minute // hour_of] = engine._expected(st, minute)
            self._xrows.append(x)

    def _sum(self, minutes: int, col: int) -> int:
        return sum(r[col] for r in self._rows[:minutes] if r is not None)

    def _exp(self, minutes: int, col: int) -> float:
        total = 0.0
        for i, x in enumerate(self._xrows[:minutes]):
            total += x[col] * (self.frac if i == 0 else 1.0)
        return total

    def _authors(self, minutes: int, key: str = "a") -> Counter[str]:
        out: Counter[str] = Counter()
        for i in range(min(minutes, _DETAIL_MIN)):
            out.update(self.st.get(key, {}).get(str(self.now_min - i), {}))
        return out

    def _terms(self, minutes: int) -> Counter[str]:
        out: Counter[str] = Counter()
        for i in range(min(minutes, _DETAIL_MIN)):
            out.update(self.st["tm"].get(str(self.now_min - i), {}))
        return out

    def _samples(self, minutes: int) -> list[SampleMention]:
        found = [s for i in range(min(minutes, _DETAIL_MIN))
                 for s in self.st["s"].get(str(self.now_min - i), [])]
        found.sort(key=lambda s: (-s["priority"], s["key"]))
        return [SampleMention(**s) for s in found[:5]]

    def _signal(self, detector: str, minutes: int, severity: Severity, observed: float,
                expected: float, score: float, said: Phrase,
                lead: str | None = None, p: float | None = None) -> Signal | None:
        start_min = self.now_min - minutes + 1
        if not _fire(self.st, detector, severity, self.now_min, self.cfg.cooldown_min):
            return None
        em = self.em
        # The term that fired leads, even when everyday words are more frequent.
        common = [t for t, _ in self._terms(minutes).most_common(7) if t != lead]
        terms = [lead, *common][:6] if lead else common[:6]
        top = self._authors(minutes).most_common(3)
        start, end = self.e._when(start_min), self.e._when(self.now_min + 1)
        # Stories of the mentions the detector judged: the negative ones where it counts those.
        told = summarise(self.st, range(max(start_min, self.now_min - _DETAIL_MIN + 1),
                                        self.now_min + 1),
                         negative_only=detector in ("negative_spike", "sentiment_shift"))
        # The summary clause by clause, as data: each channel says it in its language
        # (streams/i18n/summaries.py), and the stored English text is its English rendering.
        parts = [said, *told.parts()]
        parts.append(Phrase(key="window", params={"start": start.isoformat(),
                                                  "end": end.isoformat()}))
        if terms:
            parts.append(Phrase(key="top_terms", params={"terms": list(terms)}))
        if top:
            parts.append(Phrase(key="top_authors", params={"handles": [a for a, _ in top],
                                                           "counts": [n for _, n in top]}))
        return Signal(
            id=stable_id(em.watch_id, detector, start_min, severity), watch_id=em.watch_id,
            detector=detector, severity=severity, window_start=start, window_end=end,
            observed=observed, expected=round(expected, 3), score=round(score, 3),
            summary=render_summary(parts), summary_parts=parts, top_terms=terms,
            samples=self._samples(minutes), model=em.model,
            trigger_posted_at=em.mention.created_at, scale_min=minutes,
            p_value=None if p is None else float(f"{p:.3g}"),
            stories=told.stories if told.largest is not None else None,
            largest_story=told.largest, campaign=told.campaign)

    def _count_spike(self, detector: str, col: int, least: int) -> Signal | None:
        w = self.cfg.spike_window_min
        observed = self._sum(w, col)
        if observed < least:
            return None
        expected = self._exp(w, col)
        floor = max(expected, 0.5)
        if observed < self.cfg.ratio * floor:
            return None
        # Nor against less than the pace of the hour before: a morning rise, a new watch's
        # first day, are "3x the baseline" without being spikes (Meltwater compares the last
        # hour with the previous twelve for the same reason).
        floor = max(floor, self._recent(col) * w)
        if observed < self.cfg.ratio * floor:
            return None
        # Cheapest tests first: this runs for every mention. The authors are those of the
        # counted mentions, and each counts at most _PER_AUTHOR times: with background
        # traffic a window always has several authors, so one account posting fifty
        # negative mentions passed a plain distinct-author test.
        authors = self._authors(w, "na" if col == 1 else "a")
        counted = observed - sum(n - _PER_AUTHOR for n in authors.values() if n > _PER_AUTHOR)
        if (counted < least or counted < self.cfg.ratio * floor
                or len(authors) < self.cfg.min_authors):
            return None
        # Negative binomial, not Poisson: five minutes of a real stream are clumpy (a reply
        # chain, a busy hour), and Poisson called every busy morning at 1-3 a minute a spike.
        dispersion = self.cfg.spike_dispersion
        if self.e._surge is not None and not self.e._surge.expected_at(self.st, self.st["now"])[0]:
            # No day shape learnt yet: the per-minute level lags each morning rise by hours,
            # so ordinary mornings of a new watch read as spikes. Twice as clumpy till then.
            dispersion *= 2
        p = negbin_tail(counted, floor, dispersion)
        if p > self.cfg.max_p_value:
            return None
        ratio = counted / floor
        severity: Severity = ("critical" if ratio >= 2 * self.cfg.ratio
                              and p <= self.cfg.max_p_value * 1e-3 else "warning")
        return self._signal(detector, w, severity, observed, expected, ratio,
                            Phrase(key=detector, params={
                                "observed": observed, "minutes": w, "ratio": ratio,
                                "expected": expected, "p": p, "authors": len(authors)}), p=p)

    def _recent(self, col: int) -> float:
        """Per minute over the ``spike_recent_min`` minutes before the spike window, or 0
        while the watch has not been listening for half of them."""
        recent = self.cfg.spike_recent_min
        end = self.now_min - self.cfg.spike_window_min
        first = max(end - recent + 1, self.st["first"])
        if recent == 0 or end - first + 1 < recent / 2:
            return 0.0
        m = self.st["m"]
        total: int = sum(row[col] for k in range(first, end + 1) if (row := m.get(str(k))))
        return float(total / (end - first + 1))

    def volume_spike(self) -> Signal | None:
        return self._count_spike("volume_spike", 0, self.cfg.min_volume)

    def negative_spike(self) -> Signal | None:
        return self._count_spike("negative_spike", 1, self.cfg.min_negative)

    def sentiment_shift(self) -> Signal | None:
        w, sh = self.cfg.shift_window_min, self.st["sh"]
        n, k = self._sum(w, 0), self._sum(w, 1)
        if n < self.cfg.shift_min_volume or sh[0] <= 0:
            return None
        usual = min(0.8, max(0.02, sh[1] / sh[0]))
        share = k / n
        if share < usual + self.cfg.shift_min_delta:
            return None
        p = binomial_tail(k, n, usual)
        if p > self.cfg.max_p_value:
            return None
        severity: Severity = "critical" if share >= 0.7 and n >= 2 * self.cfg.shift_min_volume \
            else "warning"
        volume_ratio = n / max(self._exp(w, 0), 0.5)
        return self._signal("sentiment_shift", w, severity, share, usual, share - usual,
                            Phrase(key="sentiment_shift", params={
                                "share": share, "negative": k, "total": n, "minutes": w,
                                "usual": usual, "p": p, "volume": volume_ratio}), p=p)

    def risk_term_surge(self) -> Signal | None:
        w, sh = self.cfg.term_window_min, self.st["sh"]
        observed = self._sum(w, 3)
        if observed < self.cfg.risk_min:
            return None
        risk_share = max(0.002, sh[2] / sh[0]) if sh[0] > 0 else 0.002
        expected = max(self._exp(w, 0), self._sum(w, 0) / self.cfg.ratio) * risk_share
        floor = max(expected, 0.5)
        p = poisson_tail(observed, floor)
        if observed < self.cfg.ratio * floor or p > self.cfg.max_p_value:
            return None
        severity: Severity = "critical" if observed >= 4 * self.cfg.ratio * floor else "warning"
        return self._signal("risk_term_surge", w, severity, observed, expected,
                            observed / floor,
                            Phrase(key="risk_term_surge", params={
                                "observed": observed, "minutes": w, "expected": expected,
                                "p": p}), p=p)

    def emerging_term(self) -> Signal | None:
        w = self.cfg.term_window_min
        if self.now_min - self.st["first"] < self.cfg.emerging_warmup_min:
            return None  # no vocabulary yet: every word would be "new"
        start_min = self.now_min - w + 1
        seen = self.st["seen"]
        # Only this mention's terms can have just crossed the threshold.
        for term in sorted(self.terms):
            count = self.st["wt"].get(term, 0)
            if count < self.cfg.emerging_min:
                continue
            before = seen.get(term, [0, 0])
            # New to the watch: (almost) never used before this window.
            if before[0] - self._closed_in_window(term, start_min) >= 2:
                continue
            return self._signal("emerging_term", w, "warning", count, 0.0, float(count),
                                Phrase(key="emerging_term", params={
                                    "term": term, "count": count, "minutes": w}), lead=term)
        return None

    def surge(self, surge: SurgeDetector) -> Signal | None:
        def explain() -> tuple[list[SampleMention], list[str]]:
            terms = [t for t, _ in self._terms(_DETAIL_MIN).most_common(6)]
            return self._samples(_DETAIL_MIN), terms

        return surge.evaluate(self.st, now_s=self.st["now"], watch_id=self.em.watch_id,
                              window_end=self.e._when(self.now_min + 1), explain=explain,
                              trigger=self.em.mention.created_at, model=self.em.model)

    def _closed_in_window(self, term: str, start_min: int) -> int:
        return sum(self.st["tm"].get(str(m), {}).get(term, 0)
                   for m in range(start_min, self.now_min))

