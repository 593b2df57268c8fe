"""The Hugging Face backend, on a real sequence-classification model saved to a local dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.encoder import default_model_dir
from models.errors import ModelError
from models.hf import HuggingFaceSentiment, map_labels
from models.loader import load_model
from models.sentiment import LABELS, SentimentModel


def _saved(tmp_path: Path, id2label: dict[int, str]) -> Path:
    # A real BERT classifier (MiniLM's weights, a fresh head) in the layout of any hub model.
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = tmp_path / "clf"
    model = AutoModelForSequenceClassification.from_pretrained(
        str(default_model_dir()), num_labels=len(id2label), id2label=id2label,
        label2id={v: k for k, v in id2label.items()}, local_files_only=True)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(str(default_model_dir()), local_files_only=True) \
        .save_pretrained(out)
    return out


def test_local_model_with_named_labels_predicts(tmp_path: Path) -> None:
    path = _saved(tmp_path, {0: "Negative", 1: "Neutral", 2: "Positive"})
    model = HuggingFaceSentiment(model=str(path), batch_size=4)
    assert isinstance(model, SentimentModel)
    texts = ["great", "awful service", "", "x" * 10_000, "\ud800 odd", "hola"]
    preds = model.predict(texts)
    assert len(preds) == len(texts)
    for p in preds:
        assert set(p.scores) == set(LABELS)
        assert sum(p.scores.values()) == pytest.approx(1.0, abs=1e-5)
        assert p.model_id == "local:clf"
    assert model.predict(texts[::-1])[::-1] == preds


def test_five_star_labels_map_through_config_and_add_up(tmp_path: Path) -> None:
    stars = {i: f"{i + 1} stars" for i in range(5)}
    path = _saved(tmp_path, stars)
    with pytest.raises(ModelError, match=r"set model\.label_map") as err:
        HuggingFaceSentiment(model=str(path))
    assert "1 stars" in str(err.value)
    mapping = {"1 stars": "negative", "2 stars": "negative", "3 stars": "neutral",
               "4 stars": "positive", "5 stars": "positive"}
    model = load_model(name=str(path), label_map=mapping, cache_size=0)
    [p] = model.predict(["fine"])
    assert sum(p.scores.values()) == pytest.approx(1.0, abs=1e-5)


def test_label_map_to_an_unknown_sentiment_is_refused() -> None:
    with pytest.raises(ModelError, match="use only"):
        map_labels({0: "bad"}, {"bad": "furious"})


def test_hub_id_without_downloads_says_what_to_do() -> None:
    with pytest.raises(ModelError, match="allow_download"):
        HuggingFaceSentiment(model="cardiffnlp/twitter-xlm-roberta-base-sentiment")
