"""Detection logic, free of Kafka: per-watch state in, Signals out, in event time.

The state is a plain JSON-able dict so it can live in a Faust table (and its changelog)
and be replayed by a backtest with exactly the same code. Nothing here reads the wall clock.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from agents.matching import fold
from streams.records import EnrichedMention, SampleMention, Severity, Signal, stable_id
from streams.settings import DetectSettings

__all__ = ["NegativeSpikeDetector", "poisson_tail"]

_MAX_SAMPLES = 5
_MAX_TERMS = 300
_TOKEN = re.compile(r"[#@$]?\w{3,}", re.UNICODE)
_STOP = frozenset({
    "the", "and", "for", "with", "this", "that", "you", "are", "was", "not", "but", "have",
    "has", "from", "just", "its", "our", "your", "que", "los", "las", "por", "con", "una",
    "para", "del", "este", "esta", "pas", "les", "des", "est", "une", "pour", "dans", "sur",
    "und", "der", "die", "das", "ist", "nicht", "mit", "den", "ein", "eine", "per", "che",
    "non", "della", "sono", "com", "não", "uma",
})


def poisson_tail(observed: int, expected: float) -> float:
    """P(X >= observed) for X ~ Poisson(expected), stable for small tails."""
    if observed <= 0:
        return 1.0
    # Sum the lower part in log space and subtract from 1; for large observed/expected
    # sum the upper tail directly instead so tiny p-values do not round to 0 too early.
    if observed > expected:
        log_term = -expected + observed * math.log(expected) - math.lgamma(observed + 1)
        total, term, k = 0.0, math.exp(log_term), observed
        while term > 1e-300 and k < observed + 10_000:
            total += term
            k += 1
            term *= expected / k
        return min(1.0, total)
    cdf, term = 0.0, math.exp(-expected)
    for k in range(observed):
        cdf += term
        term *= expected / (k + 1)
    return max(0.0, 1.0 - cdf)


def _terms(text: str, watch_terms: frozenset[str]) -> list[str]:
    out = []
    for tok in _TOKEN.findall(text.casefold()):
        # Watch terms arrive folded (no accents); "#acme" is the watch's own name too.
        folded = fold(tok)
        if (tok in _STOP or folded in watch_terms or folded.lstrip("#@$") in watch_terms
                or tok.isdigit()):
            continue
        out.append(tok)
    return out


class NegativeSpikeDetector:
    """Fires when a window's negative mentions are far above the watch's trailing baseline.

    Baseline: the mean negative count of the ``baseline_windows`` windows before this one
    (windows with no mention count as 0), floored at 1 so quiet watches need a real burst.
    A window fires at most once, as soon as it crosses: an alert within seconds of the
    mention that tips it over, not at the end of the window. It fires once more, with its
    own id, if it later turns critical: at the crossing a burst is only ever a warning.
    """

    name = "negative_spike"

    def __init__(self, cfg: DetectSettings, *, watch_terms: frozenset[str] = frozenset()) -> None:
        self.cfg = cfg
        self.watch_terms = watch_terms

    def observe(self, state: dict[str, Any], em: EnrichedMention) -> list[Signal]:
        """Fold one mention into ``state`` (mutated) and return the signals it triggers."""
        size = self.cfg.window_s
        t = int(em.mention.created_at.timestamp())
        w = t - t % size
        latest = max(state.get("latest", w), w)
        horizon = latest - (self.cfg.baseline_windows + 2) * size
        if w < horizon:
            return []  # too late to matter: its baseline is gone; and it must not move `first`
        state["latest"] = latest
        state["first"] = min(state.get("first", w), w)
        windows: dict[str, list[int]] = state.setdefault("windows", {})
        counts = windows.setdefault(str(w), [0, 0])
        counts[0] += 1
        negative = em.sentiment.label == "negative"
        if negative:
            counts[1] += 1
            self._remember(state, w, em)
        for key in [k for k in windows if int(k) < horizon]:
            windows.pop(key)
            state.get("samples", {}).pop(key, None)
            state.get("terms", {}).pop(key, None)
        state["fired"] = [f for f in state.get("fired", []) if f >= horizon]
        state["critical"] = [f for f in state.get("critical", []) if f >= horizon]
        if not negative or w in state["critical"]:
            return []
        signal = self._evaluate(state, em, w)
        if signal is None:
            return []
        if w in state["fired"]:
            if signal.severity != "critical":
                return []
            signal = signal.model_copy(
                update={"id": stable_id(em.watch_id, self.name, w, "critical")})
        else:
            state["fired"].append(w)
        if signal.severity == "critical":
            state["critical"].append(w)
        return [signal]

    def _remember(self, state: dict[str, Any], w: int, em: EnrichedMention) -> None:
        samples: list[dict[str, Any]] = state.setdefault("samples", {}).setdefault(str(w), [])
        m = em.mention
        samples.append({"key": m.key, "url": m.url, "author": m.author.handle,
                        "text": m.text[:500], "priority": em.priority, "language": m.language})
        samples.sort(key=lambda s: (-s["priority"], s["key"]))
        del samples[_MAX_SAMPLES:]
        terms: dict[str, int] = state.setdefault("terms", {}).setdefault(str(w), {})
        for tok in _terms(m.text, self.watch_terms):
            if tok in terms or len(terms) < _MAX_TERMS:
                terms[tok] = terms.get(tok, 0) + 1

    def _evaluate(self, state: dict[str, Any], em: EnrichedMention, w: int) -> Signal | None:
        cfg, size = self.cfg, self.cfg.window_s
        if (w - state["first"]) // size < cfg.warmup_windows:
            return None  # a new watch has no idea yet what normal looks like
        windows = state["windows"]
        # Windows before the first mention, or already forgotten, are unknown, not zero: a
        # late batch judged against zeros would look like a spike.
        known = max(state["first"], state["latest"] - (cfg.baseline_windows + 2) * size)
        history = [windows.get(str(w - k * size), [0, 0])[1]
                   for k in range(1, cfg.baseline_windows + 1) if w - k * size >= known]
        if not history:
            return None
        expected = max(1.0, sum(history) / len(history))
        observed = windows[str(w)][1]
        if observed < cfg.min_negative or observed < cfg.ratio * expected:
            return None
        p_value = poisson_tail(observed, expected)
        if p_value > cfg.max_p_value:
            return None
        ratio = observed / expected
        severity: Severity = (
            "critical" if ratio >= 2 * cfg.ratio and p_value <= cfg.max_p_value * 1e-4
            else "warning"
        )
        terms = Counter(state.get("terms", {}).get(str(w), {}))
        top = [t for t, _ in terms.most_common(5)]
        start = datetime.fromtimestamp(w, UTC)
        end = datetime.fromtimestamp(w + size, UTC)
        samples = [SampleMention(**s) for s in state.get("samples", {}).get(str(w), [])]
        summary = (
            f"{observed} negative mentions in the {size // 60 or size}"
            f"{'-minute' if size >= 60 else 's'} window from {start:%H:%M} UTC, "
            f"{ratio:.1f}x the expected {expected:.1f} (p={p_value:.1e})"
            + (f"; top terms: {', '.join(top)}" if top else "")
        )
        return Signal(
            id=stable_id(em.watch_id, self.name, w), watch_id=em.watch_id, detector=self.name,
            severity=severity, window_start=start, window_end=end, observed=observed,
            expected=round(expected, 3), score=round(ratio, 3), summary=summary,
            top_terms=top, samples=samples, model=em.model,
            trigger_posted_at=em.mention.created_at,
        )
