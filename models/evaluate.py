"""``escucha model eval``: a model against the published benchmarks, on their test splits.

Figures are in percent, beside the published baselines of ``../shared/data/README.md``:
TweetEval sentiment macro-recall, UMSAB macro-F1 per language and ``all`` (the mean over the
eight languages, as the XLM-T paper reports it; ``pooled`` is over all tweets at once), and
TweetEval emotion macro-F1 when the model has an emotion head.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.data import EMOTION_LABELS, UMSAB_LANGUAGES, macro_f1, macro_recall, read_split
from models.sentiment import LABELS, Prediction, SentimentModel

__all__ = ["BASELINES", "TOLERANCE", "adoptable", "evaluate", "figures", "format_eval",
           "format_variants"]

#: Points of macro-F1 (or macro-recall) a faster variant may lose to float32 on any benchmark.
TOLERANCE = 0.5

#: Published test figures (../shared/data/README.md): FastText and the best transformer.
BASELINES: dict[str, dict[str, float]] = {
    "tweeteval_sentiment_macro_recall": {"FastText": 62.9, "RoBERTa-base": 71.3},
    "umsab:arabic": {"FastText": 46.0, "XLM-R": 64.3},
    "umsab:english": {"FastText": 50.9, "XLM-R": 68.5},
    "umsab:french": {"FastText": 54.8, "XLM-R": 70.5},
    "umsab:german": {"FastText": 59.6, "XLM-R": 72.8},
    "umsab:hindi": {"FastText": 37.1, "XLM-R": 53.4},
    "umsab:italian": {"FastText": 54.7, "XLM-R": 68.6},
    "umsab:portuguese": {"FastText": 55.1, "XLM-R": 69.8},
    "umsab:spanish": {"FastText": 50.1, "XLM-R": 66.0},
    "umsab:all": {"FastText": 51.0, "XLM-R": 66.8},
    "emotion_macro_f1": {"FastText": 65.2, "RoBERTa-retrained": 78.5},
}


def _labels(preds: Sequence[Prediction]) -> np.ndarray:
    return np.array([LABELS.index(p.label) for p in preds], dtype=np.int64)


def evaluate(model: SentimentModel, data_dir: Path, *, split: str = "test",
             progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Run ``model`` over every ``split`` (test or val); figures in percent, rounded to 0.1.

    On ``val``, TweetEval sentiment and UMSAB English are training data of the bundled models
    (UMSAB's English val tweets are part of TweetEval val): their figures are not held out.
    """
    if split not in ("test", "val"):
        raise ValueError(f"split must be 'test' or 'val', not {split!r}")
    began = time.perf_counter()
    out: dict[str, Any] = {"split": split}
    texts, y = read_split(data_dir / "tweeteval" / "sentiment", split)
    progress(f"TweetEval sentiment {split} ({len(texts)} tweets)")
    out["tweeteval_sentiment_macro_recall"] = round(
        macro_recall(y, _labels(model.predict(texts))), 1)
    per: dict[str, float] = {}
    ys, ps = [], []
    for lang in UMSAB_LANGUAGES:
        texts, y = read_split(data_dir / "umsab" / lang, split)
        progress(f"UMSAB {lang} {split} ({len(texts)} tweets)")
        pred = _labels(model.predict(texts))
        per[lang] = round(macro_f1(y, pred), 1)
        ys.append(y)
        ps.append(pred)
    per["all"] = round(float(np.mean([per[lang] for lang in UMSAB_LANGUAGES])), 1)
    per["pooled"] = round(macro_f1(np.concatenate(ys), np.concatenate(ps)), 1)
    out["umsab_macro_f1"] = per
    texts, y = read_split(data_dir / "tweeteval" / "emotion", split,
                          n_classes=len(EMOTION_LABELS))
    progress(f"TweetEval emotion {split} ({len(texts)} tweets)")
    preds = model.predict(texts)
    if all(p.emotion for p in preds):
        guess = np.array([EMOTION_LABELS.index(max(p.emotion, key=p.emotion.__getitem__))
                          for p in preds if p.emotion], dtype=np.int64)
        out["emotion_macro_f1"] = round(macro_f1(y, guess, n_classes=len(EMOTION_LABELS)), 1)
    else:
        out["emotion_macro_f1"] = None  # this model has no emotion head
    out["model"] = {"id": model.model_id, "version": model.model_version}
    out["seconds"] = round(time.perf_counter() - began, 1)
    return out


def format_eval(result: dict[str, Any]) -> list[str]:
    """A table: each figure beside the published baselines."""
    rows = [("TweetEval sentiment, macro-recall", "tweeteval_sentiment_macro_recall",
             result["tweeteval_sentiment_macro_recall"])]
    for lang in (*UMSAB_LANGUAGES, "all"):
        rows.append((f"UMSAB {lang}, macro-F1", f"umsab:{lang}",
                     result["umsab_macro_f1"][lang]))
    rows.append(("TweetEval emotion, macro-F1", "emotion_macro_f1", result["emotion_macro_f1"]))
    split = result.get("split", "test")
    lines = [f"{result['model']['id']} {result['model']['version']}",
             f"{f'benchmark ({split} split)':<36}{'escucha':>9}   published (test)"]
    for name, key, value in rows:
        shown = "n/a" if value is None else f"{value:.1f}"
        published = ", ".join(f"{k} {v}" for k, v in BASELINES[key].items())
        lines.append(f"{name:<36}{shown:>9}   {published}")
    lines.append(f"UMSAB pooled over all tweets: {result['umsab_macro_f1']['pooled']:.1f} "
                 f"({result['seconds']:.0f}s)")
    return lines


def figures(result: dict[str, Any]) -> dict[str, float]:
    """Every benchmark figure of an :func:`evaluate` result, flat: ``umsab:spanish`` …"""
    flat = {"tweeteval_sentiment_macro_recall": float(result["tweeteval_sentiment_macro_recall"])}
    for lang in (*UMSAB_LANGUAGES, "all"):
        flat[f"umsab:{lang}"] = float(result["umsab_macro_f1"][lang])
    if result.get("emotion_macro_f1") is not None:
        flat["emotion_macro_f1"] = float(result["emotion_macro_f1"])
    return flat


def adoptable(reference: dict[str, Any], variant: dict[str, Any], *,
              tolerance: float = TOLERANCE) -> tuple[bool, list[str]]:
    """Whether ``variant`` stays within ``tolerance`` points of ``reference`` everywhere;
    the benchmarks where it does not."""
    ref, got = figures(reference), figures(variant)
    worse = [f"{k} {got.get(k, float('nan')):.1f} vs {v:.1f}" for k, v in ref.items()
             if not got.get(k, float("-inf")) >= v - tolerance]
    return not worse, worse


def format_variants(results: dict[str, dict[str, Any]], reference: str) -> list[str]:
    """One column per variant, one row per benchmark; then which variants may be adopted."""
    names = list(results)
    flat = {name: figures(r) for name, r in results.items()}
    lines = [f"{'benchmark (' + results[reference].get('split', 'test') + ' split)':<36}"
             + "".join(f"{n:>12}" for n in names)]
    for key in flat[reference]:
        lines.append(f"{key:<36}" + "".join(f"{flat[n].get(key, float('nan')):>12.1f}"
                                             for n in names))
    for name in names:
        if name != reference:
            ok, worse = adoptable(results[reference], results[name])
            lines.append(f"{name}: {'within' if ok else 'NOT within'} {TOLERANCE} points of "
                         f"{reference} everywhere" + ("" if ok else ": " + "; ".join(worse)))
    return lines
