"""The hourly surge detector: negatives running above normal for hours, at everyday volumes.

Most brands get a handful of negative mentions an hour, not dozens a minute: a crisis there
is "2.4x the usual negatives, hour after hour, since 07:00", which a 5-minute window never
sees. This detector keeps one row of counts per hour, learns what each hour should hold, and
tests windows of several lengths (``surge_scales_min``: 1 h, 6 h, 24 h by default) against it.

* **Counts.** Per hour: all mentions, and negatives with each author counted at most
  ``_PER_AUTHOR`` times an hour (one angry account is one voice).
* **Expectation.** ``level x hour-of-day x day-of-week``, refitted when an hour closes, from up
  to ``surge_history_days`` of hours. Each factor is shrunk toward 1 by pseudo-counts (a slot
  seen once leans on the overall level), so it is usable after a day and sharp after a few.
  The level weighs recent days more (trends), and hours inside an episode are left out (a
  crisis must not teach itself to be normal) for up to ``_EXCLUDE_MAX_H``. An hour with no
  mention where many were expected is *missing* (a source outage), not zero.
* **Test.** A negative-binomial tail (:func:`~agents.detect.detectors.negbin_tail`): real
  streams are clumpier than Poisson. The dispersion of each scale is estimated by moments on
  the watch's own past windows and shrunk toward a prior, so a clumpy watch needs more.
  A window fires only with ``surge_min_negative`` negatives, ``surge_ratio`` times the
  expectation, and the tail under ``surge_max_p_value``.
* **Episodes.** The first window that fires opens an episode and one signal; the episode
  sends an update only when it grows (a longer scale fires, the severity rises, it passes
  3 h, 6 h, 12 h, 24 h, 48 h), all with one ``episode`` id, so escalation keeps one incident
  that says "2.1x for 3 h", then "2.4x for 9 h". It closes after ``_CLOSE_QUIET_MIN`` of
  the last hour back under ``_CLOSE_RATIO``.

State lives under ``st["hr"]`` of the watch's detection state (plain JSON, saved with it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from agents.detect.tails import negbin_tail
from streams.config.settings import DetectSettings
from streams.core.records import (
    Phrase,
    SampleMention,
    SeriesPoint,
    Severity,
    Signal,
    stable_id,
)
from streams.i18n.summaries import render_summary

__all__ = ["SURGE", "SurgeDetector"]

SURGE = "negative_surge"
_H = 3600
_PER_AUTHOR = 3           # negatives one author adds to an hour
#: Authors of an hour's negatives tracked for that cap (~20 bytes each in the saved state,
#: one broker record of at most 1 MB). Past them a new author's negatives are counted
#: without the cap: 3,000 distinct negative voices in an hour are a surge whatever one of
#: them adds.
_HOUR_AUTHORS = 3000
_DAY_PRIOR = 0.5          # hour-of-day factors: pseudo-days at factor 1 (days differ a lot)
_WEEK_PRIOR = 12.0         # day-of-week factors: pseudo-hours at factor 1
_LEVEL_HALFLIFE_H = 120.0 # the level follows a trend over days, not hours
_MISSING_EXPECTED = 5.0   # an empty hour where this many were expected is missing data
_SLOT_SEEN = 2            # ... once its hour of the day has been seen with data this often
_SILENT_DAY_H = 24        # ... or after this many empty hours in a row, whatever was learnt
_EXCLUDE_MAX_H = 48       # an episode older than this is the new normal: learn it
_PHI_PRIOR = 0.12         # dispersion prior at 1 h; longer scales divide it by sqrt(hours)
_PHI_BLOCKS = 8.0         # pseudo-blocks of the prior against the estimate
_PHI_FLOOR = 0.5          # the least dispersion, as a share of the prior
_PHI_SKIP_H = 24          # the latest hours, left out of the dispersion estimate
_NEG_SHARE_FLOOR = 0.03   # least expected negative share: a watch never negative is not immune
_CLOSE_RATIO = 1.3
_CLOSE_QUIET_MIN = 120
_ELEVATED = 1.5           # an hour this far above expectation counts towards "lasting"
_MILESTONES_MIN = (180, 360, 720, 1440, 2880)
_SERIES_MAX = 48
_ACTIVITY_RANGE = (0.6, 1.5)  # how far the rest of the stream may move the expectation
_CAP = 2.5                    # winsorising of hours far above the fit, x expectation
_RANK = {"info": 0, "warning": 1, "critical": 2}


def _adjusted(neg: float, neg_expected: float, vol: float, vol_expected: float) -> float:
    """Expected negatives given how busy the rest of the stream is.

    A busy news day or a quiet Sunday moves every kind of post together; testing negatives
    against that common tide (the other posts' observed/expected, within
    ``_ACTIVITY_RANGE``) removes most of the day-to-day noise, so a surge of negatives alone
    stands out sooner, and a launch's praise never lowers the bar below normal by much."""
    others, others_expected = vol - neg, vol_expected - neg_expected
    lo, hi = _ACTIVITY_RANGE
    activity = min(hi, max(lo, (others + 5) / (others_expected + 5)))
    return neg_expected * activity


def _hod_dow(hour: int) -> tuple[int, int]:
    """Hour of day and weekday (Monday 0) of an hour since the epoch, in UTC."""
    return hour % 24, (hour // 24 + 3) % 7  # 1970-01-01 was a Thursday


class SurgeDetector:
    """The surge part of one watch's detection (stateless: the state is passed in)."""

    def __init__(self, cfg: DetectSettings) -> None:
        self.cfg = cfg
        self.scales_h = [s // 60 for s in cfg.surge_scales_min]
        self._keep_h = cfg.surge_history_days * 24

    # -- counting -------------------------------------------------------------------------
    @staticmethod
    def _state(st: dict[str, Any], hour: int) -> dict[str, Any]:
        hr = st.get("hr")
        if hr is None:
            hr = st["hr"] = {"c": {}, "au": {}, "miss": [], "ex": [], "fit": None,
                             "first": hour, "closed": hour - 1, "ep": None}
        return hr

    def add(self, st: dict[str, Any], seconds: float, *, negative: bool, author: str) -> None:
        """Count one mention at event time ``seconds`` (already known to be in time)."""
        hour = int(seconds // _H)
        hr = self._state(st, hour)
        if hour <= hr["closed"]:
            return  # its hour is closed and learnt: the minute windows still count it
        hr["first"] = min(hr["first"], hour)
        row = hr["c"].setdefault(str(hour), [0, 0])
        row[0] += 1
        if negative:
            authors = hr["au"].setdefault(str(hour), {})
            n = authors.get(author, 0)
            if n or len(authors) < _HOUR_AUTHORS:
                authors[author] = n + 1
            if n < _PER_AUTHOR:
                row[1] += 1

    def close(self, st: dict[str, Any], watermark_s: float) -> None:
        """Close every hour that ends at or before ``watermark_s`` (no mention can still land
        in it), mark missing and episode hours, and refit the expectation once."""
        hr = st.get("hr")
        if hr is None:
            return
        upto = int(watermark_s // _H) - 1  # the last hour wholly before the watermark
        if upto <= hr["closed"]:
            return
        start = max(hr["closed"] + 1, upto - self._keep_h)
        ep = hr["ep"]
        for hour in range(start, upto + 1):
            key = str(hour)
            hr["au"].pop(key, None)
            if hour < hr["first"]:
                continue
            row = hr["c"].get(key)
            empty = row is None or row[0] == 0
            run = hr["run"] = hr.get("run", 0) + 1 if empty else 0
            if empty and run == _SILENT_DAY_H:
                # A whole day without a word from a watch that had traffic is a source that
                # stopped, whatever the model has learnt yet: the day is missing, not zeros
                # (a young watch's level would otherwise fall to nothing, and the traffic
                # coming back would be a "surge").
                hr["miss"].extend(h for h in range(hour - run + 1, hour)
                                  if h >= hr["first"] and h not in hr["miss"])
            if empty and (run >= _SILENT_DAY_H
                          or self._usual(hr, hour) >= _MISSING_EXPECTED):
                hr["miss"].append(hour)  # silence the model cannot explain: an outage
                hr["c"].pop(key, None)
            elif ep is not None and hour >= ep["start_h"] and hour - ep["start_h"] < _EXCLUDE_MAX_H:
                hr["ex"].append(hour)
        hr["closed"] = upto
        horizon = upto - self._keep_h
        for k in [k for k in hr["c"] if int(k) < horizon]:
            del hr["c"][k]
        for name in ("miss", "ex"):
            hr[name] = [h for h in hr[name] if h >= horizon]
        for k in [k for k in hr["au"] if int(k) <= upto]:
            del hr["au"][k]
        self._refit(hr)

    # -- the expectation ------------------------------------------------------------------
    def _usable(self, hr: dict[str, Any]) -> list[tuple[int, int, int]]:
        skip = set(hr["miss"]) | set(hr["ex"])
        rows = []
        for hour in range(max(hr["first"], hr["closed"] - self._keep_h + 1), hr["closed"] + 1):
            if hour in skip:
                continue
            vol, neg = hr["c"].get(str(hour), (0, 0))
            rows.append((hour, vol, neg))
        return rows

    def _refit(self, hr: dict[str, Any]) -> None:
        rows = self._usable(hr)
        if not rows:
            return
        slots = [_hod_dow(h) for h, _, _ in rows]
        weights = [0.5 ** ((hr["closed"] - h) / _LEVEL_HALFLIFE_H) for h, _, _ in rows]
        d, w = [1.0] * 24, [1.0] * 7
        lv = ln = 0.0
        for rnd in range(3):
            if rnd == 2 and lv > 0:
                # Winsorise: an hour far above the first fit (a surge before the watch was
                # created, an episode older than the exclusion) counts at most _CAP x its
                # expectation, so it can neither lift the level nor the day shape much.
                rows = [(h, min(v, int(_CAP * lv * d[a] * w[b]) + 3),
                         min(n, int(_CAP * ln * d[a] * w[b]) + 3))
                        for (h, v, n), (a, b) in zip(rows, slots, strict=True)]
            base = sum(r * d[a] * w[b] for r, (a, b) in zip(weights, slots, strict=True))
            lv = sum(r * v for r, (_, v, _) in zip(weights, rows, strict=True)) / base
            ln = sum(r * n for r, (_, _, n) in zip(weights, rows, strict=True)) / base
            if lv <= 0:
                break
            d = self._factor(rows, slots, [lv * w[b] for _, b in slots], 0, 24, _DAY_PRIOR)
            w = self._factor(rows, slots, [lv * d[a] for a, _ in slots], 1, 7, _WEEK_PRIOR)
        ln = max(ln, _NEG_SHARE_FLOOR * lv, 0.02)
        dn, dv = [0] * 24, [0.0] * 24
        for (_, vol, _), (a, _) in zip(rows, slots, strict=True):
            dn[a] += 1
            dv[a] += vol
        hr["fit"] = {"lv": lv, "ln": ln, "d": [round(x, 4) for x in d],
                     "w": [round(x, 4) for x in w], "h": len(rows),
                     "dn": dn, "dm": [round(v / n, 2) if n else 0.0 for v, n in zip(dv, dn,
                                                                                  strict=True)]}
        hr["fit"]["phi"] = [self._dispersion(hr, rows, s) for s in self.scales_h]

    @staticmethod
    def _factor(rows: Sequence[tuple[int, int, int]], slots: Sequence[tuple[int, int]],
                scale: Sequence[float], which: int, size: int, prior: float) -> list[float]:
        """One seasonal factor (hour of day or weekday): observed over expected without it,
        per slot, with ``prior`` pseudo-observations at 1; normalised to mean 1."""
        obs, n = [0.0] * size, [0] * size
        for (_, vol, _), slot, x in zip(rows, slots, scale, strict=True):
            obs[slot[which]] += vol / max(x, 1e-9)
            n[slot[which]] += 1
        f = [(obs[i] + prior) / (n[i] + prior) for i in range(size)]
        mean = sum(f) / size
        return [x / mean for x in f]

    @staticmethod
    def _usual(hr: dict[str, Any], hour: int) -> float:
        """Mean mentions this hour of the day has had, once it has been seen with data on
        ``_SLOT_SEEN`` days (else 0). The outage test uses this, not the shrunk fit: judged
        by a fit that had not learnt the nights yet, every empty night was "missing", so
        never learnt, for good."""
        fit = hr.get("fit") or {}
        hod = _hod_dow(hour)[0]
        return float(fit["dm"][hod]) if fit.get("dn", [0] * 24)[hod] >= _SLOT_SEEN else 0.0

    def _expected(self, hr: dict[str, Any], hour: int) -> tuple[float, float]:
        fit = hr.get("fit")
        if not fit:
            return 0.0, 0.0
        a, b = _hod_dow(hour)
        f = fit["d"][a] * fit["w"][b]
        return fit["lv"] * f, fit["ln"] * f

    def expected_at(self, st: dict[str, Any], seconds: float) -> tuple[float, float]:
        """Expected (volume, negatives) in the hour holding ``seconds``; zeros until the
        watch has ``surge_warmup_h`` hours of history."""
        hr = st.get("hr")
        if hr is None or hr["closed"] - hr["first"] + 1 < self.cfg.surge_warmup_h:
            return 0.0, 0.0
        return self._expected(hr, int(seconds // _H))

    def _dispersion(self, hr: dict[str, Any], rows: Sequence[tuple[int, int, int]],
                    scale_h: int) -> float:
        """Negative-binomial dispersion of negatives over ``scale_h``-hour blocks around
        their activity-adjusted expectation (see :func:`_adjusted`), by moments on the
        watch's own history, shrunk toward the prior."""
        by_hour = {h: (v, n) for h, v, n in rows}
        prior = _PHI_PRIOR / math.sqrt(scale_h)
        excess = denom = 0.0
        blocks = 0
        # Not the last day: a surge under way must not make the watch look clumpy while it is
        # being judged (it would mask itself: measured, 6 h dispersion 0.03 -> 0.075).
        end = hr["closed"] - _PHI_SKIP_H
        while end - scale_h + 1 >= hr["first"]:
            hours = [h for h in range(end - scale_h + 1, end + 1) if h in by_hour]
            if len(hours) == scale_h:
                vol = sum(by_hour[h][0] for h in hours)
                obs = sum(by_hour[h][1] for h in hours)
                xv = xn = 0.0
                for h in hours:
                    a, b = self._expected(hr, h)
                    xv, xn = xv + a, xn + b
                exp = _adjusted(obs, xn, vol, xv)
                # Uncapped: the rare clumps (an angry thread) are what the tail is for, and
                # capping them made a clumpy watch look Poisson (measured: 0.005 at 1 h).
                excess += (obs - exp) ** 2 - obs
                denom += exp * exp
                blocks += 1
            end -= scale_h
        est = max(0.0, excess / denom) if denom > 0 else prior
        shrunk = (blocks * min(est, 2.0) + _PHI_BLOCKS * prior) / (blocks + _PHI_BLOCKS)
        # Never below a floor: most hours are nearly Poisson once the tide is taken out, and
        # the moments then miss the rare angry thread that a tail test must allow for.
        return round(max(shrunk, _PHI_FLOOR * prior), 4)

    # -- windows --------------------------------------------------------------------------
    def _window(self, hr: dict[str, Any], now_s: float, scale_h: int) -> tuple[float, float,
                                                                               float, float]:
        """Observed and expected (volume, negatives) over the ``scale_h`` hours ending at
        ``now_s``: the current hour so far, the whole hours before it, and the part of the
        oldest hour still inside the window. Missing hours count on neither side."""
        hour = int(now_s // _H)
        frac = min(1.0, max(1 / 60, (now_s - hour * _H) / _H))
        miss = hr["miss"]
        ov = on = ev = en = 0.0
        for i in range(scale_h + 1):
            h = hour - i
            part = frac if i == 0 else (1.0 - frac if i == scale_h else 1.0)
            if part <= 0 or h < hr["first"] or h in miss:
                continue
            vol, neg = hr["c"].get(str(h), (0, 0))
            xv, xn = self._expected(hr, h)
            keep = 1.0 if i == 0 else part  # the current hour's counts are all inside
            ov, on = ov + keep * vol, on + keep * neg
            ev, en = ev + part * xv, en + part * xn
        return ov, on, ev, en

    def _lasting_start(self, hr: dict[str, Any], hour: int) -> int:
        """The first hour of the run of elevated hours that ends now."""
        start = hour
        for h in range(hour - 1, max(hr["first"], hour - 72) - 1, -1):
            if h in hr["miss"]:
                break
            _, neg = hr["c"].get(str(h), (0, 0))
            if (neg + 1) / (self._expected(hr, h)[1] + 1) < _ELEVATED:
                break
            start = h
        return start

    # -- judging --------------------------------------------------------------------------
    def evaluate(self, st: dict[str, Any], *, now_s: float, watch_id: str, window_end: datetime,
                 explain: Callable[[], tuple[list[SampleMention], list[str]]],
                 trigger: datetime, model: Any) -> Signal | None:
        """Judge every scale at ``now_s`` (the watch's event-time now); a signal when an
        episode opens or grows, else None. ``explain()`` gives the samples and top terms,
        asked for only when a signal goes out."""
        hr = st.get("hr")
        if hr is None or not hr.get("fit") or hr["closed"] - hr["first"] + 1 < \
                self.cfg.surge_warmup_h:
            return None
        fit, cfg = hr["fit"], self.cfg
        best: tuple[int, float, float, float, float] | None = None  # scale, obs, exp, ratio, p
        for i, scale_h in enumerate(self.scales_h):
            ov, on, ev, en = self._window(hr, now_s, scale_h)
            floor = max(en, 0.5)
            if on < cfg.surge_min_negative[i] or on < cfg.surge_ratio[i] * floor:
                continue
            p = negbin_tail(int(on), max(_adjusted(on, en, ov, ev), 0.5), fit["phi"][i])
            if p <= cfg.surge_max_p_value:
                best = (scale_h, on, en, on / floor, p)  # the longest scale that fires wins
        ep = hr["ep"]
        now_min = int(now_s // 60)
        if best is None:
            if ep is not None:
                _, on, _, en = self._window(hr, now_s, 1)
                calm = on < _CLOSE_RATIO * max(en, 0.5)
                if calm and ep.get("calm") is None:
                    ep["calm"] = now_min
                elif not calm:
                    ep["calm"] = None
                if (ep.get("calm") is not None and now_min - ep["calm"] >= _CLOSE_QUIET_MIN) \
                        or now_min - ep["last"] >= 6 * 60:
                    hr["ep"] = None
            return None
        scale_h, obs, exp, ratio, p = best
        hour = int(now_s // _H)
        if ep is None:
            start_h = self._lasting_start(hr, hour)
            ep = hr["ep"] = {"start_h": start_h, "scale": 0, "sev": -1, "mile": 0, "seq": 0,
                             "last": now_min, "calm": None}
        ep["last"], ep["calm"] = now_min, None
        lasting = max(60, int(now_s // 60) - ep["start_h"] * 60)
        strong = p <= cfg.surge_max_p_value * 1e-3
        severity: Severity = ("critical" if (ratio >= 2.5 and lasting >= 360 and strong)
                              or (ratio >= 4 and strong) else "warning")
        mile = sum(1 for m in _MILESTONES_MIN if lasting >= m)
        grew = (scale_h > ep["scale"] or _RANK[severity] > ep["sev"] or mile > ep["mile"])
        if not grew:
            return None
        first = ep["seq"] == 0
        ep.update(scale=max(ep["scale"], scale_h), sev=max(ep["sev"], _RANK[severity]),
                  mile=mile, seq=ep["seq"] + 1)
        episode = stable_id(watch_id, SURGE, ep["start_h"])
        ov, _, evol, _ = self._window(hr, now_s, scale_h)
        series = self._series(hr, ep["start_h"], hour)
        samples, terms = explain()
        parts = self._parts(obs, exp, ratio, p, scale_h, lasting, ov / max(evol, 0.5),
                            series, terms, first=first)
        return Signal(
            id=stable_id(episode, ep["seq"]), watch_id=watch_id, detector=SURGE,
            severity=severity, window_start=datetime.fromtimestamp(now_s - scale_h * _H, UTC),
            window_end=window_end, observed=round(obs, 1), expected=round(exp, 3),
            score=round(ratio, 3), summary=render_summary(parts), summary_parts=parts,
            top_terms=terms,
            samples=samples, model=model, trigger_posted_at=trigger, scale_min=scale_h * 60,
            p_value=float(f"{p:.3g}"), episode=episode, lasting_min=lasting, series=series)

    def _series(self, hr: dict[str, Any], start_h: int, hour: int) -> list[SeriesPoint]:
        """The episode hour by hour, with up to 6 hours before it for context."""
        first = max(hr["first"], start_h - 6, hour - _SERIES_MAX + 1)
        out = []
        for h in range(first, hour + 1):
            if h in hr["miss"]:
                continue
            _, neg = hr["c"].get(str(h), (0, 0))
            out.append(SeriesPoint(start=datetime.fromtimestamp(h * _H, UTC), observed=neg,
                                   expected=round(self._expected(hr, h)[1], 2)))
        return out

    @staticmethod
    def _parts(obs: float, exp: float, ratio: float, p: float, scale_h: int, lasting: int,
               volume_ratio: float, series: Sequence[SeriesPoint], terms: Sequence[str],
               *, first: bool) -> list[Phrase]:
        """The summary as data: each channel says it in its language, and the stored English
        text is its English rendering (streams/i18n/summaries.py, which also says the span in
        hours once it has lasted two, minutes before)."""
        out = [Phrase(key="surge_start" if first else "surge_ongoing", params={
            "ratio": ratio, "lasting_min": lasting, "observed": obs, "hours": scale_h,
            "expected": exp, "p": p, "volume": volume_ratio})]
        recent = [pt for pt in series if pt.expected > 0][-6:]
        if recent:
            out.append(Phrase(key="hourly", params={
                "starts": [pt.start.isoformat() for pt in recent],
                "observed": [pt.observed for pt in recent],
                "expected": [pt.expected for pt in recent]}))
        if terms:
            out.append(Phrase(key="top_terms", params={"terms": list(terms)}))
        return out
