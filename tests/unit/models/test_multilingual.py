"""The bundled multilingual model: committed artifacts, sensible answers in several languages,
odd input survives, every runtime agrees on clear cases, names and older configs resolve."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from models.bundled import EMOTIONS, BundledModel
from models.cache import CachedModel
from models.errors import ArtifactError, ModelError
from models.loader import load_model
from models.multilingual import E5_ARTIFACTS, MODEL_ID, MultilingualModel, close_calls
from models.sentiment import LABELS, Prediction, SentimentModel

from .test_bundled import EDGE_TEXTS


@pytest.fixture(scope="module")
def model(e5_cache: Path) -> Iterator[MultilingualModel]:
    yield MultilingualModel(cache_dir=e5_cache, threads=2)


def check(p: Prediction, model_id: str = MODEL_ID) -> None:
    assert p.label in LABELS and set(p.scores) == set(LABELS)
    assert sum(p.scores.values()) == pytest.approx(1.0, abs=1e-6)
    assert p.label == max(p.scores, key=lambda k: p.scores[k])
    assert p.model_id == model_id and p.model_version
    assert p.emotion is not None and set(p.emotion) == set(EMOTIONS)
    assert sum(p.emotion.values()) == pytest.approx(1.0, abs=1e-5)


def test_committed_artifacts_are_small_and_chosen_on_validation(model: MultilingualModel) -> None:
    assert isinstance(model, SentimentModel)
    meta = json.loads((E5_ARTIFACTS / "bundle.json").read_text())
    assert model.model_version == meta["version"]
    assert all(f.stat().st_size <= 25 * 2**20 for f in E5_ARTIFACTS.iterdir())
    by_weight = meta["validation"]["calibration"]["mean_macro_f1_by_weight"]
    assert by_weight[str(meta["mixture"]["default"])] == max(by_weight.values())
    with_ngrams = meta["mixture"]["default"] < 1.0
    assert (E5_ARTIFACTS / "ngram.npz").exists() == with_ngrams


CLEAR = [
    ("This is the worst service ever. I hate it, totally broken and useless.", "negative"),
    ("Odio este producto, es horrible y no funciona. El peor servicio de mi vida.", "negative"),
    ("Le service client ne répond jamais, c'est une honte absolue.", "negative"),
    ("Das ist der schlechteste Kundendienst, den ich je erlebt habe. Furchtbar!", "negative"),
    ("I absolutely love this! Best purchase ever, thank you so much!", "positive"),
    ("¡Me encanta! El mejor producto que he comprado, muchas gracias.", "positive"),
    ("Adoro questo telefono, è fantastico! Grazie mille!", "positive"),
    ("Amei o atendimento, muito obrigado, vocês são ótimos!", "positive"),
]


@pytest.mark.parametrize(("text", "label"), CLEAR)
def test_clear_cases_in_several_languages(model: MultilingualModel, text: str,
                                          label: str) -> None:
    [p] = model.predict([text])
    check(p)
    assert p.label == label, p.scores


@pytest.mark.parametrize("text", EDGE_TEXTS.values(), ids=EDGE_TEXTS.keys())
def test_odd_input_gives_a_prediction(model: MultilingualModel, text: str) -> None:
    [p] = model.predict([text])
    check(p)


def test_odd_inputs_together_and_order_kept(model: MultilingualModel) -> None:
    texts = list(EDGE_TEXTS.values()) + [t for t, _ in CLEAR]
    preds = model.predict(texts)
    assert [p.label for p in preds[len(EDGE_TEXTS):]] == [label for _, label in CLEAR]
    singles = model.predict(texts[::-1])[::-1]
    for a, b in zip(preds, singles, strict=True):
        assert a.scores == pytest.approx(b.scores, abs=1e-4)
    assert model.predict([]) == []


def test_angry_text_is_angry(model: MultilingualModel) -> None:
    [angry, glad] = model.predict(["I am furious, this is outrageous and I want my money back!!",
                                   "What a lovely sunny morning, so happy today"])
    assert angry.emotion and glad.emotion
    assert angry.emotion["anger"] > 0.5 > glad.emotion["anger"]


@pytest.mark.parametrize("runtime", ["torch-int8", "onnx-int8", "onnx-checked"])
def test_int8_runtimes_agree_on_clear_cases(e5_cache: Path, runtime: str) -> None:
    fast = MultilingualModel(cache_dir=e5_cache, threads=2, runtime=runtime)
    if runtime == "torch-int8":
        assert fast._scorer is not None
        assert type(fast._scorer.sentiment) is torch.nn.Linear  # the heads stay float32
        assert type(fast._scorer.layers[0].intermediate.dense) is not torch.nn.Linear
    preds = fast.predict([t for t, _ in CLEAR] + ["", "x" * 50_000])
    for p in preds:
        check(p, MODEL_ID + f"-{runtime}")
    assert [p.label for p in preds[:len(CLEAR)]] == [label for _, label in CLEAR]


def test_names_and_older_configs(e5_cache: Path) -> None:
    bundled = load_model(name="bundled", cache_dir=e5_cache, cache_size=10, runtime="torch")
    assert isinstance(bundled, CachedModel) and isinstance(bundled.model, MultilingualModel)
    old = load_model(name="bundled", cache_dir=e5_cache, cache_size=0, quantize=True)
    assert isinstance(old, MultilingualModel) and old.runtime.endswith("int8")
    minilm = load_model(name="minilm", cache_size=0)
    assert isinstance(minilm, BundledModel)


def test_unknown_runtime_is_refused(e5_cache: Path) -> None:
    with pytest.raises(ModelError, match="runtime"):
        MultilingualModel(cache_dir=e5_cache, runtime="cuda")


def test_missing_or_mismatched_artifacts_say_what_to_do(e5_cache: Path, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="escucha model train"):
        MultilingualModel(cache_dir=e5_cache, artifacts=tmp_path)
    for f in E5_ARTIFACTS.iterdir():
        shutil.copy(f, tmp_path / f.name)
    meta = json.loads((tmp_path / "bundle.json").read_text())
    meta["fine_tuned_layers"] += 1  # the weights are for fewer layers
    (tmp_path / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="do not fit"):
        MultilingualModel(cache_dir=e5_cache, artifacts=tmp_path)


def test_onnx_checked_answers_close_calls_in_float32_and_the_rest_in_int8(
        e5_cache: Path) -> None:
    import numpy as np

    texts = [t for t, _ in CLEAR] + [
        "meh", "ok I guess", "the update is out", "no sé qué pensar de Acme", "hmm, fine?",
        "Acme a changé son logo", "not sure about the new phone", "llegó el pedido", "🙂",
        "the battery is ok but the screen", "pues nada, otra vez lo mismo", "lol acme"]
    fp32 = MultilingualModel(cache_dir=e5_cache, threads=2, runtime="onnx").predict(texts)
    int8 = MultilingualModel(cache_dir=e5_cache, threads=2, runtime="onnx-int8").predict(texts)
    checked_model = MultilingualModel(cache_dir=e5_cache, threads=2, runtime="onnx-checked")
    checked = checked_model.predict(texts)

    def arrays(preds: list[Prediction]) -> tuple[np.ndarray, np.ndarray]:
        return (np.array([[p.scores[k] for k in LABELS] for p in preds]),
                np.array([[(p.emotion or {})[k] for k in EMOTIONS] for p in preds]))

    close = set(close_calls(*arrays(int8)).tolist())
    assert 0 < len(close) < len(texts)  # both kinds are here
    assert checked_model.checked == len(close)
    for i, p in enumerate(checked):
        want = fp32[i] if i in close else int8[i]
        assert p.label == want.label
        for k in LABELS:
            assert p.scores[k] == pytest.approx(want.scores[k], abs=1e-5), (i, texts[i])


def test_the_int8_export_is_smoothed_with_the_committed_peaks(e5_cache: Path) -> None:
    import onnx

    from models.onnx import export_path

    model = MultilingualModel(cache_dir=e5_cache, threads=2, runtime="onnx-int8")
    path = export_path(e5_cache, version=model.model_version, quantize=True, smoothed=True)
    muls = [n for n in onnx.load(str(path), load_external_data=False).graph.node
            if n.name.endswith("/smooth_mul")]
    assert len(muls) == 24  # the two feed-forward MatMuls of each of the 12 layers


def test_int8_without_peaks_for_these_weights_runs_unsmoothed_and_says_so(
        e5_cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for f in E5_ARTIFACTS.iterdir():
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "smooth.npz").unlink()
    with caplog.at_level("WARNING", logger="models.multilingual"):
        plain = MultilingualModel(cache_dir=e5_cache, artifacts=tmp_path, threads=2,
                                  runtime="onnx-int8")
    assert "escucha model smooth" in caplog.text
    assert plain.predict(["great phone"])[0].label == "positive"
