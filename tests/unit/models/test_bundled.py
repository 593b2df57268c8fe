"""The bundled offline model: committed artifacts, sensible answers, odd input survives."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.bundled import ARTIFACTS, EMOTIONS, MODEL_ID, BundledModel
from models.errors import ArtifactError
from models.sentiment import LABELS, Prediction, SentimentModel


@pytest.fixture(scope="module")
def model() -> Iterator[BundledModel]:
    # Loading the transformer takes seconds; every test in this module shares one instance.
    yield BundledModel(threads=2)


def check(p: Prediction) -> None:
    assert p.label in LABELS
    assert set(p.scores) == set(LABELS)
    assert all(0.0 <= s <= 1.0 for s in p.scores.values())
    assert sum(p.scores.values()) == pytest.approx(1.0, abs=1e-6)
    assert p.label == max(p.scores, key=lambda k: p.scores[k])
    assert p.model_id == MODEL_ID
    assert p.model_version
    assert p.emotion is not None and set(p.emotion) == set(EMOTIONS)
    assert sum(p.emotion.values()) == pytest.approx(1.0, abs=1e-5)


def test_loads_the_committed_artifacts_within_25_mb(model: BundledModel) -> None:
    assert isinstance(model, SentimentModel)
    meta = json.loads((ARTIFACTS / "bundle.json").read_text())
    assert model.model_version == meta["version"]
    assert 0 <= meta["mixture"]["default"] <= 1
    size = sum(f.stat().st_size for f in ARTIFACTS.iterdir() if f.is_file())
    assert size <= 25 * 2**20, size


@pytest.mark.parametrize(
    "text",
    [
        "This is the worst service ever. I hate it, totally broken and useless.",
        "I'm so disappointed, this app keeps crashing and deleting my data.",
        "Odio este producto, es horrible y no funciona. El peor servicio de mi vida.",
        "Estoy harto, la aplicación no funciona y nadie responde.",
    ],
)
def test_clearly_negative_is_negative(model: BundledModel, text: str) -> None:
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
def test_clearly_positive_is_positive(model: BundledModel, text: str) -> None:
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
def test_odd_input_gives_a_prediction(model: BundledModel, text: str) -> None:
    [p] = model.predict([text])
    check(p)


def test_odd_inputs_together_in_one_batch(model: BundledModel) -> None:
    preds = model.predict(list(EDGE_TEXTS.values()))
    assert len(preds) == len(EDGE_TEXTS)
    for p in preds:
        check(p)


def test_empty_batch(model: BundledModel) -> None:
    assert model.predict([]) == []


def test_batch_of_64_keeps_order(model: BundledModel) -> None:
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


def test_prediction_is_frozen(model: BundledModel) -> None:
    [p] = model.predict(["fine"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.label = "x"  # type: ignore[misc]


@pytest.mark.parametrize(("text", "language"), [
    ("The battery exploded while charging, this is really dangerous", "en"),
    ("La batería explotó mientras cargaba, es muy peligroso", "es"),
    ("Le service client ne répond jamais, c'est une honte", "fr"),
    ("Der Kundendienst antwortet nie, das ist eine Frechheit", "de"),
])
def test_language_is_detected(model: BundledModel, text: str, language: str) -> None:
    [p] = model.predict([text])
    assert p.language == language


def test_angry_text_is_angry(model: BundledModel) -> None:
    [angry, glad] = model.predict(["I am furious, this is outrageous and I want my money back!!",
                                   "What a lovely sunny morning, so happy today"])
    assert angry.emotion and glad.emotion
    assert angry.emotion["anger"] > 0.5 > glad.emotion["anger"]


def test_quantised_variant_agrees_on_clear_cases() -> None:
    int8 = BundledModel(threads=2, quantize=True)
    assert int8.model_id.endswith("-int8")
    texts = ["I hate this, worst service ever", "I love it, thank you so much!",
             "Odio este producto, no funciona", "Me encanta, gracias"]
    assert [p.label for p in int8.predict(texts)] == ["negative", "positive", "negative",
                                                      "positive"]


def test_missing_artifacts_say_how_to_make_them(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="escucha model train"):
        BundledModel(artifacts=tmp_path)


def test_artifact_for_another_encoder_is_refused(tmp_path: Path) -> None:
    for f in ARTIFACTS.iterdir():
        if f.is_file():  # e5/ beside them holds the multilingual model's
            shutil.copy(f, tmp_path / f.name)
    meta = json.loads((tmp_path / "bundle.json").read_text())
    meta["fine_tuned_layers"] = 3  # the weights are for 2 layers
    (tmp_path / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="do not fit"):
        BundledModel(artifacts=tmp_path)
