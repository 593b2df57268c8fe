"""The bundled sentiment model: real encoder, committed head, odd input never raises."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from models.errors import ArtifactError
from models.sentiment import (
    DEFAULT_HEAD_PATH,
    LABELS,
    MODEL_ID,
    MiniLMSentiment,
    Prediction,
    SentimentModel,
    load_default,
    load_head,
)


@pytest.fixture(scope="module")
def model() -> Iterator[MiniLMSentiment]:
    # Loading the transformer takes seconds; every test in this module shares one instance.
    yield load_default(threads=2)


def check(p: Prediction) -> None:
    assert p.label in LABELS
    assert set(p.scores) == set(LABELS)
    assert all(0.0 <= s <= 1.0 for s in p.scores.values())
    assert sum(p.scores.values()) == pytest.approx(1.0, abs=1e-6)
    assert p.label == max(p.scores, key=lambda k: p.scores[k])
    assert p.model_id == MODEL_ID
    assert p.model_version


def test_loads_the_committed_artifact(model: MiniLMSentiment) -> None:
    assert DEFAULT_HEAD_PATH.is_file()
    assert isinstance(model, SentimentModel)
    assert model.model_id == "escucha/minilm-sentiment"
    assert model.model_version == load_head(DEFAULT_HEAD_PATH).version
    assert model.head.weights.shape == (3, 384)


@pytest.mark.parametrize(
    "text",
    [
        "This is the worst service ever. I hate it, totally broken and useless.",
        "I'm so disappointed, this app keeps crashing and deleting my data.",
        "Odio este producto, es horrible y no funciona. El peor servicio de mi vida.",
        "Estoy harto, la aplicación no funciona y nadie responde.",
    ],
)
def test_clearly_negative_is_negative(model: MiniLMSentiment, text: str) -> None:
    [p] = model.predict([text])
    check(p)
    assert p.label == "negative", p.scores


@pytest.mark.parametrize(
    "text",
    [
        "I absolutely love this! Best purchase ever, thank you so much!",
        "Thanks for the quick help, you guys are awesome!",
        "¡Me encanta! El mejor producto que he comprado, muchas gracias.",
        "Excelente servicio, muy feliz con la compra. ¡Gracias!",
    ],
)
def test_clearly_positive_is_positive(model: MiniLMSentiment, text: str) -> None:
    [p] = model.predict([text])
    check(p)
    assert p.label == "positive", p.scores


EDGE_TEXTS = {
    "empty": "",
    "whitespace": " \n\t ",
    "emoji only": "😀🔥😂",
    "50 kB one word": "x" * 50_000,
    "50 kB of words": "word " * 10_000,
    "lone surrogate": "\ud800abc",
    "lone low surrogate": "\udfffend",
    "surrogate pair as code units": "\ud83d\ude00 nice",
    "control characters": "\x00\x01\x7f",
    "amharic": "ሰላም ነው",
    "cuneiform": "𒀀𒀁𒀂",
    "private use": "\U000f0000\ue000",
    "right to left": "مرحبا بالعالم",
}


@pytest.mark.parametrize("text", EDGE_TEXTS.values(), ids=EDGE_TEXTS.keys())
def test_odd_input_gives_a_prediction(model: MiniLMSentiment, text: str) -> None:
    [p] = model.predict([text])
    check(p)


def test_odd_inputs_together_in_one_batch(model: MiniLMSentiment) -> None:
    preds = model.predict(list(EDGE_TEXTS.values()))
    assert len(preds) == len(EDGE_TEXTS)
    for p in preds:
        check(p)


def test_empty_batch(model: MiniLMSentiment) -> None:
    assert model.predict([]) == []


def test_batch_of_64_keeps_order(model: MiniLMSentiment) -> None:
    # Varied lengths, so the length-sorted batching inside the encoder really reorders them.
    base = [
        "I love it",
        "Terrible, broken again and support ignores me. Worst company!!",
        "The meeting is at 3pm",
        "Me encanta, gracias",
        "",
        "ok",
        "Qué desastre de servicio, llevo tres días sin luz y nadie contesta",
        "😀",
    ]
    texts = [f"{base[i % len(base)]} {'#' * (i % 5)}".strip() for i in range(64)]
    batched = model.predict(texts)
    assert len(batched) == 64
    # The same texts in reverse, reversed back, must line up one for one ...
    backwards = model.predict(texts[::-1])[::-1]
    # ... and a sample of them alone (padding differs, so scores agree only to rounding).
    singles = {i: model.predict([texts[i]])[0] for i in range(0, 64, 8)}
    for i, b in enumerate(batched):
        for other in [backwards[i], *([singles[i]] if i in singles else [])]:
            assert b.label == other.label
            for label in LABELS:
                assert b.scores[label] == pytest.approx(other.scores[label], abs=1e-4)


def test_prediction_is_frozen(model: MiniLMSentiment) -> None:
    [p] = model.predict(["fine"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.label = "positive"  # type: ignore[misc]


def test_missing_head_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="train_sentiment_head"):
        load_head(tmp_path / "nope.npz")


def test_inconsistent_head_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.npz"
    np.savez(
        path,
        W=np.zeros((3, 384), np.float32),
        b=np.zeros(2, np.float32),
        labels=np.array(LABELS),
        seed=np.int64(0),
        data=np.str_("x"),
        version=np.str_("v"),
    )
    with pytest.raises(ArtifactError, match="inconsistent"):
        load_head(path)


def test_head_needing_pickle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pickled.npz"
    np.savez(
        path,
        W=np.zeros((3, 384), np.float32),
        b=np.zeros(3, np.float32),
        labels=np.array(list(LABELS), dtype=object),
        seed=np.int64(0),
        data=np.str_("x"),
        version=np.str_("v"),
    )
    with pytest.raises(ArtifactError):
        load_head(path)
