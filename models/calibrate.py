"""Post-hoc choices for the bundled sentiment output, made on validation splits only.

Two choices, both global (one value for every language: UMSAB val holds 324 tweets per
language, too few to fit per-language values without fitting noise):

1. the mixture weight of the transformer against the n-gram half, from :data:`WEIGHTS`
   (1.0: the transformer alone), the one with the best mean val macro-F1;
2. per-class offsets added to the log of the mixed probabilities (a prior correction: the
   training mix of UMSAB and TweetEval has other class shares than a language's val set),
   fitted by coordinate search over :data:`OFFSETS` to maximise the same mean. They are
   adopted only if they also help on unseen tweets: val is split in two halves (per
   language, drawn from the seed), offsets fitted on each half must raise the mean macro-F1
   of the *other* half, both ways; otherwise the offsets stay zero.

Neutral's offset stays 0: only differences between offsets change an answer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from models.data import macro_f1
from models.errors import ArtifactError
from models.sentiment import LABELS

__all__ = ["OFFSETS", "WEIGHTS", "ValSet", "apply_offsets", "calibrate", "mean_f1", "mix",
           "read_offsets"]

WEIGHTS: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0)
OFFSETS: tuple[float, ...] = tuple(round(-1.5 + 0.1 * i, 1) for i in range(31))
_FIXED = LABELS.index("neutral")
_Probs = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ValSet:
    """One language's val tweets: transformer and n-gram probabilities, gold labels."""

    p_tf: _Probs
    p_ng: _Probs
    y: npt.NDArray[np.int64]

    def rows(self, idx: npt.NDArray[np.int64]) -> ValSet:
        return ValSet(self.p_tf[idx], self.p_ng[idx], self.y[idx])


def mix(p_tf: _Probs, p_ng: _Probs, weight: float) -> _Probs:
    out: _Probs = weight * p_tf + (1 - weight) * p_ng
    return out


def apply_offsets(probs: _Probs, offsets: npt.NDArray[np.float64]) -> _Probs:
    """``probs * exp(offsets)``, renormalised: the answer moves, the scores still sum to 1."""
    scaled = probs * np.exp(offsets - offsets.max())
    out: _Probs = scaled / scaled.sum(axis=-1, keepdims=True)
    return out


def mean_f1(sets: Sequence[ValSet], weight: float,
            offsets: npt.NDArray[np.float64] | None = None) -> float:
    """Mean macro-F1 (percent) over the languages, each scored on its own."""
    scores = []
    for s in sets:
        probs = mix(s.p_tf, s.p_ng, weight)
        if offsets is not None:
            probs = apply_offsets(probs, offsets)
        scores.append(macro_f1(s.y, probs.argmax(axis=1)))
    return float(np.mean(scores))


def _best(candidates: Sequence[float], score: Any, prefer: float) -> float:
    """The best-scoring candidate; ties go to the one nearest ``prefer`` (no change)."""
    return max(candidates, key=lambda c: (round(score(c), 6), -abs(c - prefer)))


def fit_offsets(sets: Sequence[ValSet], weight: float, *,
                passes: int = 3) -> npt.NDArray[np.float64]:
    offsets = np.zeros(len(LABELS))
    for _ in range(passes):
        before = offsets.copy()
        for k in range(len(LABELS)):
            if k == _FIXED:
                continue

            def score(value: float, k: int = k) -> float:
                trial = offsets.copy()
                trial[k] = value
                return mean_f1(sets, weight, trial)

            offsets[k] = _best(OFFSETS, score, prefer=0.0)
        if np.array_equal(before, offsets):
            break
    return offsets


def _halves(sets: Sequence[ValSet], seed: int) -> tuple[list[ValSet], list[ValSet]]:
    rng = np.random.default_rng(seed)
    a, b = [], []
    for s in sets:
        order = rng.permutation(len(s.y))
        a.append(s.rows(order[:len(order) // 2]))
        b.append(s.rows(order[len(order) // 2:]))
    return a, b


def calibrate(sets: Mapping[str, ValSet], *, seed: int) -> dict[str, Any]:
    """The weight and offsets to adopt, with the val figures that chose them."""
    langs = sorted(sets)
    data = [sets[lang] for lang in langs]
    by_weight = {w: round(mean_f1(data, w), 2) for w in WEIGHTS}
    weight = _best(WEIGHTS, lambda w: by_weight[w], prefer=0.5)
    plain = mean_f1(data, weight)
    fitted = fit_offsets(data, weight)
    a, b = _halves(data, seed)
    held_out = []
    for fit_on, score_on in ((a, b), (b, a)):
        off = fit_offsets(fit_on, weight)
        held_out.append(round(mean_f1(score_on, weight, off) - mean_f1(score_on, weight), 2))
    adopt = all(gain > 0 for gain in held_out)
    offsets = fitted if adopt else np.zeros(len(LABELS))
    return {
        "weight": weight,
        "offsets": {label: round(float(v), 2) for label, v in zip(LABELS, offsets,
                                                                   strict=True)},
        "report": {
            "languages": langs,
            "mean_macro_f1_by_weight": {str(w): v for w, v in by_weight.items()},
            "mean_macro_f1": round(plain, 2),
            "fitted_offsets": {label: round(float(v), 2)
                               for label, v in zip(LABELS, fitted, strict=True)},
            "mean_macro_f1_with_fitted_offsets": round(mean_f1(data, weight, fitted), 2),
            "held_out_gain_2fold": held_out,
            "offsets_adopted": adopt,
            "per_language": {lang: round(macro_f1(s.y, apply_offsets(
                mix(s.p_tf, s.p_ng, weight), offsets).argmax(axis=1)), 2)
                for lang, s in zip(langs, data, strict=True)},
        },
    }


def read_offsets(meta: Mapping[str, Any]) -> npt.NDArray[np.float64]:
    """bundle.json's ``sentiment_offsets`` in LABELS order; zeros for bundles without one."""
    raw = meta.get("sentiment_offsets")
    if raw is None:
        return np.zeros(len(LABELS))
    if not isinstance(raw, Mapping) or set(raw) != set(LABELS):
        raise ArtifactError(f"bundle.json: sentiment_offsets must name exactly {list(LABELS)}, "
                            f"not {raw!r}")
    values = []
    for label in LABELS:
        v = raw[label]
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ArtifactError(f"bundle.json: sentiment_offsets[{label!r}] must be a finite "
                                f"number, not {v!r}")
        values.append(float(v))
    return np.array(values)
