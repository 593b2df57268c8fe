"""The bfloat16 runtime: the float32 model's answers at about twice its speed on a CPU with
native bfloat16, traced once and kept in the model cache."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import torch

from models.e5 import E5_PREFIX
from models.loader import (
    MEASURED_TEXTS_PER_S,
    NEEDS_BF16,
    WITHIN_TOLERANCE,
    bf16_native,
    choose_auto,
    resolve_runtime,
)
from models.multilingual import MODEL_ID, Bf16Scorer, MultilingualModel, build_scorer, read_bundle

from .test_multilingual import CLEAR, check
from .test_onnx_fp32 import _texts


@pytest.fixture(scope="module")
def pair(e5_cache: Path) -> tuple[MultilingualModel, MultilingualModel]:
    return (MultilingualModel(cache_dir=e5_cache, runtime="torch", threads=2),
            MultilingualModel(cache_dir=e5_cache, runtime="torch-bf16", threads=2))


def test_bf16_answers_as_float32(pair: tuple[MultilingualModel, MultilingualModel]) -> None:
    fp32, bf16 = pair
    texts = _texts()
    want, got = fp32.predict(texts), bf16.predict(texts)
    same = sum(w.label == g.label for w, g in zip(want, got, strict=True))
    assert same / len(texts) >= 0.99, f"{len(texts) - same} of {len(texts)} labels differ"
    for w, g in zip(want, got, strict=True):  # 0.008 at most on 1,024 val tweets
        assert w.scores == pytest.approx(g.scores, abs=0.05)
        assert w.emotion == pytest.approx(g.emotion, abs=0.05)
        check(g, MODEL_ID + "-torch-bf16")
    assert [p.label for p in bf16.predict([t for t, _ in CLEAR])] == [lb for _, lb in CLEAR]
    # Empty, 50 kB and emoji-only texts still get answers.
    assert len(bf16.predict(["", "x" * 50_000, "\U0001f525\U0001f525"])) == 3


def test_the_traced_scorer_is_the_eager_one_at_every_shape(e5_cache: Path) -> None:
    """Traced from one batch of two short texts; shapes are read from the tensors, so other
    batch sizes and lengths (up to the 128-token limit) give what the eager module gives."""
    from models.e5 import load_e5

    model = MultilingualModel(cache_dir=e5_cache, runtime="torch-bf16", threads=2)
    meta, tensors, _ = read_bundle(Path(__file__).parents[3] / "models/artifacts/e5")
    eager = Bf16Scorer(build_scorer(load_e5(e5_cache)[1], meta, tensors)).eval()
    assert isinstance(model._scorer, torch.jit.ScriptModule)
    tok = model._tokenizer
    for size, words in ((1, 1), (3, 7), (32, 20), (5, 200)):
        ids, mask = tok.pack(tok.content_ids([E5_PREFIX + " ".join(["palabra"] * words)
                                              + f" {i}" for i in range(size)]),
                             max_length=model.max_length)
        with torch.inference_mode():
            got, want = model._scorer(ids, mask), eager(ids, mask)
        for g, w in zip(got, want, strict=True):
            assert g.dtype == torch.float32 and g.shape == w.shape
            assert torch.allclose(g, w, atol=0.05), (size, words, (g - w).abs().max())


def test_the_traced_scorer_is_kept_and_a_torn_one_is_traced_again(
        e5_cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = tmp_path / "models"
    shutil.copytree(e5_cache, cache, ignore=shutil.ignore_patterns("*.onnx*", "*.pt"))
    first = MultilingualModel(cache_dir=cache, runtime="torch-bf16", threads=2)
    [kept] = list(cache.glob("scorer-*-bf16-torch*.pt"))
    said = first.predict(["el cargador explotó, qué vergüenza"])[0]
    # Found at the next start: the float32 encoder is not even read (its folder is gone).
    for folder in cache.glob("e5-small-*"):
        shutil.rmtree(folder)
    again = MultilingualModel(cache_dir=cache, runtime="torch-bf16", threads=2)
    assert again.predict(["el cargador explotó, qué vergüenza"])[0] == said
    # A torn file: a warning, traced again (the encoder converted again), replaced.
    kept.write_bytes(kept.read_bytes()[:1000])
    with caplog.at_level(logging.WARNING):
        third = MultilingualModel(cache_dir=cache, runtime="torch-bf16", threads=2)
    assert "unreadable" in caplog.text
    assert third.predict(["el cargador explotó, qué vergüenza"])[0] == said
    assert kept.stat().st_size > 1000


def test_auto_passes_bf16_over_on_a_cpu_without_it() -> None:
    within = dict.fromkeys(WITHIN_TOLERANCE, False) | {"torch": True, "onnx": True,
                                                        "torch-bf16": True}
    speeds = {"torch": 70.0, "onnx": 147.0, "torch-bf16": 220.0}
    assert {"torch-bf16"} == NEEDS_BF16
    assert choose_auto(speeds, within, held_back={}) == "torch-bf16"
    assert choose_auto(speeds, within, bf16=False, held_back={}) == "onnx"
    assert choose_auto(speeds, within) == "onnx"  # held back from auto for now (HELD_BACK)
    # What this machine kind gets, and what a CPU without native bfloat16 gets instead.
    fine = {r for r, ok in WITHIN_TOLERANCE.items() if ok}
    assert resolve_runtime("auto", quantize=False, bf16=False) in fine - NEEDS_BF16
    assert resolve_runtime("auto", quantize=False, bf16=True) == choose_auto(
        MEASURED_TEXTS_PER_S, WITHIN_TOLERANCE)
    assert resolve_runtime("torch-bf16", quantize=False, bf16=False) == "torch-bf16"  # named
    assert isinstance(bf16_native(), bool)


def test_bf16_batches_come_in_widths_of_16_and_padding_changes_nothing(
        pair: tuple[MultilingualModel, MultilingualModel]) -> None:
    """oneDNN keeps work per bfloat16 matrix shape: widths in steps of 16 keep the model
    process's memory level (models/multilingual.py, _BF16_WIDTH_STEP)."""
    _, bf16 = pair
    tok = bf16._tokenizer
    content = tok.content_ids([E5_PREFIX + t for t in ("hola", "buenos días")])
    ids, mask = tok.pack(content, max_length=128, multiple_of=16)
    assert ids.shape == mask.shape == (2, 16) and int(mask.sum()) == sum(len(c) + 2
                                                                       for c in content)
    assert tok.pack(content, max_length=128)[0].shape[1] == max(len(c) for c in content) + 2
    long = tok.content_ids([E5_PREFIX + "palabra " * 300])
    assert tok.pack(long, max_length=128, multiple_of=16)[0].shape == (1, 128)  # never past
    assert tok.pack(long, max_length=120, multiple_of=16)[0].shape == (1, 120)  # the limit
    widths: list[int] = []
    scorer = bf16._scorer
    bf16._scorer = lambda ids, mask: (widths.append(ids.shape[1]), scorer(ids, mask))[1]
    try:
        texts = ["hola", "qué tal " * 5, "palabra " * 40, "x " * 300]
        for text in texts:  # one batch each: a batch is as wide as its widest text
            bf16.predict([text])
    finally:
        bf16._scorer = scorer
    assert len(widths) == len(texts)
    assert all(w % 16 == 0 or w == bf16.max_length for w in widths), widths
    # Padding is masked out: each text alone and unpadded gives the same logits, to
    # bfloat16's rounding (another width sums in another order: up to ~1% of a logit here).
    # Unmasked padding moves "hola"'s logits by 0.8 (sentiment) and 2.1 (emotion) here.
    with torch.inference_mode():
        for text in texts:
            one = tok.content_ids([E5_PREFIX + text])
            plain = scorer(*tok.pack(one, max_length=bf16.max_length))
            padded = scorer(*tok.pack(one, max_length=bf16.max_length, multiple_of=16))
            for p, q in zip(plain, padded, strict=True):
                assert torch.allclose(p, q, atol=0.05, rtol=0.02), (text[:20],
                                                                     (p - q).abs().max())
                assert int(p.argmax()) == int(q.argmax())
