"""A tiny smoke run of the multilingual training: artifacts written, loadable, seed-stable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.data import UMSAB_LANGUAGES
from models.multilingual import MultilingualModel
from models.smooth import PEAKS_FILE, read_peaks
from models.train_e5 import train_e5

_SENTIMENT = [("awful, I hate it", 0), ("it is a phone", 1), ("love it, great", 2)]
_EMOTION = [("so angry", 0), ("so happy", 1), ("it will get better", 2), ("so sad", 3)]


def _write(folder: Path, split: str, rows: list[tuple[str, int]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{split}_text.txt").write_text("".join(f"{t}\n" for t, _ in rows))
    (folder / f"{split}_labels.txt").write_text("".join(f"{y}\n" for _, y in rows))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    for lang in UMSAB_LANGUAGES:
        for split in ("train", "val"):
            _write(root / "umsab" / lang, split, [(f"{t} {lang}", y) for t, y in _SENTIMENT])
    _write(root / "tweeteval" / "sentiment", "val", _SENTIMENT)
    for split in ("train", "val"):
        _write(root / "tweeteval" / "emotion", split, _EMOTION * 2)
    return root


def test_tiny_training_writes_a_loadable_bundle(data: Path, e5_cache: Path,
                                                tmp_path: Path) -> None:
    first = train_e5(data_dir=data, out=tmp_path / "a", cache_dir=e5_cache, layers=1,
                     epochs=1, seed=3, progress=lambda _: None)
    again = train_e5(data_dir=data, out=tmp_path / "b", cache_dir=e5_cache, layers=1,
                     epochs=1, seed=3, progress=lambda _: None, peaks=False)
    assert first["version"] == again["version"]  # the same seed, the same weights
    assert json.loads((tmp_path / "a" / "bundle.json").read_text()) == first
    assert set(first["validation"]["umsab_macro_f1"]["transformer"]) == set(
        UMSAB_LANGUAGES) - {"english"}  # English val is inside a training set
    chosen = first["validation"]["calibration"]  # the calibration step ran after training
    by_weight = chosen["mean_macro_f1_by_weight"]
    assert by_weight[str(first["mixture"]["default"])] == max(by_weight.values())
    mixed = first["mixture"]["default"] < 1
    assert (tmp_path / "a" / "ngram.npz").exists() == mixed
    assert set(first["sentiment_offsets"]) == {"negative", "neutral", "positive"}
    if not chosen["offsets_adopted"]:
        assert set(first["sentiment_offsets"].values()) == {0.0}
    model = MultilingualModel(cache_dir=e5_cache, artifacts=tmp_path / "a")
    [p] = model.predict(["love it, great"])
    assert p.model_version == first["version"] and p.emotion
    # The last step measured the int8 runtimes' peaks, for this version only.
    peaks = read_peaks(tmp_path / "a" / PEAKS_FILE, version=first["version"])
    assert peaks is not None and len(peaks) == 24  # 2 feed-forward MatMuls x 12 layers
    assert not (tmp_path / "b" / PEAKS_FILE).exists()


def test_both_bundles_train_on_the_same_sets_in_the_same_order(data: Path) -> None:
    from models.train import training_sets

    texts, labels, emo_texts, emo_labels, n_tweeteval = training_sets(data)
    assert len(texts) == len(labels) == len(UMSAB_LANGUAGES) * len(_SENTIMENT) + len(_SENTIMENT)
    assert texts[0] == f"{_SENTIMENT[0][0]} {UMSAB_LANGUAGES[0]}"  # UMSAB first, by language
    assert texts[-n_tweeteval:] == [t for t, _ in _SENTIMENT]  # then TweetEval sentiment val
    assert labels.tolist()[-3:] == [y for _, y in _SENTIMENT]
    assert len(emo_texts) == len(emo_labels) == 2 * len(_EMOTION)
