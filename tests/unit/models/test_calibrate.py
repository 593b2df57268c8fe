"""Calibration of the bundled sentiment output: chosen on val, adopted only when it carries
over to unseen tweets, reproducible from the seed, and applied by the runtime."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from models.calibrate import (
    WEIGHTS,
    ValSet,
    apply_offsets,
    calibrate,
    mean_f1,
    read_offsets,
)
from models.errors import ArtifactError
from models.multilingual import E5_ARTIFACTS, MultilingualModel
from models.sentiment import LABELS

_LANGS = ("arabic", "french", "german", "hindi", "italian", "portuguese", "spanish")


def _probs(rng: np.random.Generator, y: np.ndarray, signal: float,
           bias: np.ndarray) -> np.ndarray:
    """Softmax of ``signal`` on the gold class, noise, and a per-class ``bias``."""
    logits = rng.normal(0, 1, (len(y), 3)) + bias
    logits[np.arange(len(y)), y] += signal
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(p / p.sum(axis=1, keepdims=True))


def _sets(seed: int, *, tf_signal: float, ng_signal: float, bias: tuple[float, float, float],
          random_labels: bool = False) -> dict[str, ValSet]:
    rng = np.random.default_rng(seed)
    out = {}
    for lang in _LANGS:
        y = rng.integers(0, 3, 324)
        shown = rng.integers(0, 3, 324) if random_labels else y
        b = np.array(bias)
        out[lang] = ValSet(_probs(rng, shown, tf_signal, b), _probs(rng, shown, ng_signal, b),
                           y.astype(np.int64))
    return out


def test_a_neutral_leaning_model_gets_offsets_that_hold_on_the_other_half() -> None:
    sets = _sets(1, tf_signal=2.0, ng_signal=1.0, bias=(0.0, 1.5, 0.0))
    chosen = calibrate(sets, seed=13)
    report = chosen["report"]
    assert report["offsets_adopted"] and all(g > 0 for g in report["held_out_gain_2fold"])
    off = chosen["offsets"]
    assert off["neutral"] == 0
    # neutral is pushed down relative to the others: both others gain on it
    assert off["negative"] > off["neutral"] and off["positive"] > off["neutral"]
    data = list(sets.values())
    offsets = read_offsets({"sentiment_offsets": off})
    assert mean_f1(data, chosen["weight"], offsets) > mean_f1(data, chosen["weight"]) + 1


def test_offsets_that_do_not_carry_over_are_not_adopted() -> None:
    # Labels unrelated to the scores: whatever offsets fit one half is noise on the other.
    sets = _sets(2, tf_signal=2.0, ng_signal=1.0, bias=(0.0, 0.0, 0.0), random_labels=True)
    chosen = calibrate(sets, seed=13)
    assert not chosen["report"]["offsets_adopted"]
    assert set(chosen["offsets"].values()) == {0.0}


@pytest.mark.parametrize(("tf", "ng", "expected"), [(3.0, 0.0, 1.0), (0.5, 3.0, WEIGHTS[0])])
def test_the_weight_follows_the_half_that_knows(tf: float, ng: float, expected: float) -> None:
    chosen = calibrate(_sets(3, tf_signal=tf, ng_signal=ng, bias=(0, 0, 0)), seed=13)
    assert chosen["weight"] == expected
    by_weight = chosen["report"]["mean_macro_f1_by_weight"]
    assert by_weight[str(expected)] == max(by_weight.values())


def test_the_same_seed_gives_the_same_choice() -> None:
    sets = _sets(4, tf_signal=1.5, ng_signal=1.0, bias=(0.3, 0.8, 0.0))
    assert calibrate(sets, seed=7) == calibrate(sets, seed=7)


def test_offsets_move_the_answer_and_keep_scores_a_distribution() -> None:
    probs = np.array([[0.2, 0.5, 0.3]])
    assert np.allclose(apply_offsets(probs, np.zeros(3)), probs)
    moved = apply_offsets(probs, np.array([0.0, 0.0, 1.0]))
    assert moved.argmax() == 2 and moved.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("raw", [{"negative": 0.1, "neutral": 0.0},
                                 {"negative": "0.1", "neutral": 0.0, "positive": 0.0},
                                 {"negative": float("nan"), "neutral": 0.0, "positive": 0.0},
                                 {"negative": True, "neutral": 0.0, "positive": 0.0},
                                 [0.1, 0.0, 0.0]])
def test_bad_offsets_in_a_bundle_are_refused_by_name(raw: object) -> None:
    with pytest.raises(ArtifactError, match="sentiment_offsets"):
        read_offsets({"sentiment_offsets": raw})


def test_bundles_without_offsets_still_load() -> None:
    assert read_offsets({}).tolist() == [0.0, 0.0, 0.0]


def _copy(tmp_path: Path, **changes: object) -> Path:
    for f in E5_ARTIFACTS.iterdir():
        shutil.copy(f, tmp_path / f.name)
    meta = json.loads((tmp_path / "bundle.json").read_text())
    meta.update(changes)
    (tmp_path / "bundle.json").write_text(json.dumps(meta))
    return tmp_path


_TEXTS = ["Odio este producto, es horrible y no funciona.", "El tren sale a las ocho.",
          "¡Me encanta! El mejor producto, muchas gracias."]


def test_the_runtime_applies_the_bundles_offsets(e5_cache: Path, tmp_path: Path) -> None:
    offsets = {"negative": 0.0, "neutral": 0.0, "positive": 0.7}
    model = MultilingualModel(cache_dir=e5_cache, artifacts=_copy(
        tmp_path, sentiment_offsets=offsets))
    plain = MultilingualModel(cache_dir=e5_cache, artifacts=E5_ARTIFACTS)
    w = plain.mixture["default"]
    base = read_offsets(plain.meta)
    for got, ref in zip(model.predict(_TEXTS), plain.predict(_TEXTS), strict=True):
        # undo the committed offsets, apply the test's: what the runtime must report
        raw = apply_offsets(np.array([ref.scores[k] for k in LABELS]), -base)
        want = apply_offsets(raw, np.array([offsets[k] for k in LABELS]))
        assert [got.scores[k] for k in LABELS] == pytest.approx(want.tolist(), abs=1e-6)
        assert got.label == LABELS[int(want.argmax())]
    assert 0 < w < 1


@pytest.mark.parametrize("weight", [0.0, 0.3])
def test_the_runtime_applies_the_bundles_weight(e5_cache: Path, tmp_path: Path,
                                                weight: float) -> None:
    zero = {k: 0.0 for k in LABELS}
    model = MultilingualModel(cache_dir=e5_cache, artifacts=_copy(
        tmp_path, mixture={"default": weight}, sentiment_offsets=zero))
    assert model.ngram is not None
    sent, _ = model.logits(_TEXTS)
    p_tf = np.exp(sent - sent.max(axis=1, keepdims=True))
    p_tf /= p_tf.sum(axis=1, keepdims=True)
    want = weight * p_tf + (1 - weight) * model.ngram.probabilities(_TEXTS)
    got = np.array([[p.scores[k] for k in LABELS] for p in model.predict(_TEXTS)])
    assert got == pytest.approx(want, abs=1e-5)


def test_calibrating_without_the_ngram_half_says_what_to_do(tmp_path: Path) -> None:
    from models.train_e5 import calibrate_bundle

    artifacts = _copy(tmp_path, mixture={"default": 1.0})
    (artifacts / "ngram.npz").unlink()
    before = (artifacts / "bundle.json").read_text()
    with pytest.raises(ArtifactError, match=r"n-gram half.*escucha model train"):
        calibrate_bundle(artifacts=artifacts, data_dir=tmp_path / "none",
                         cache_dir=tmp_path / "none")
    assert (artifacts / "bundle.json").read_text() == before  # nothing rewritten
