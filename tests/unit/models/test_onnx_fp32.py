"""ONNX float32 is torch float32 under another runtime; batches by token length keep order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.multilingual import (
    FORWARD_BATCH,
    MultilingualModel,
    in_length_batches,
    length_batches,
)
from streams.bench.texts import TextSource

from .test_bundled import EDGE_TEXTS
from .test_multilingual import CLEAR


def _texts() -> list[str]:
    # Tweet-like texts in six languages, the clear cases and the odd ones: a few hundred.
    return (TextSource(seed=3).unique(200) + [t for t, _ in CLEAR]
            + list(EDGE_TEXTS.values()))


def test_onnx_fp32_answers_as_torch_fp32(e5_cache: Path) -> None:
    texts = _texts()
    torch_fp32 = MultilingualModel(cache_dir=e5_cache, runtime="torch", threads=2)
    onnx_fp32 = MultilingualModel(cache_dir=e5_cache, runtime="onnx", threads=2)
    want, got = torch_fp32.predict(texts), onnx_fp32.predict(texts)
    same = sum(w.label == g.label for w, g in zip(want, got, strict=True))
    assert same / len(texts) >= 0.995, f"{len(texts) - same} labels differ"
    for w, g in zip(want, got, strict=True):
        assert w.scores == pytest.approx(g.scores, abs=1e-3)
        assert w.emotion == pytest.approx(g.emotion, abs=1e-3)
    assert onnx_fp32.model_id.endswith("-onnx")


def test_batches_are_cut_by_length_and_answers_come_back_in_input_order() -> None:
    lengths = [9, 2, 7, 2, 30, 1, 7, 12, 3]
    batches = length_batches(lengths, 4)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert [[lengths[i] for i in b] for b in batches] == [[1, 2, 2, 3], [7, 7, 9, 12], [30]]
    seen: list[list[int]] = []

    def forward(idx: list[int]) -> tuple[np.ndarray, np.ndarray]:
        seen.append(idx)
        # Each row names its own input: position and length, so a misplaced row shows.
        return (np.array([[i, lengths[i], 0] for i in idx], dtype=np.float32),
                np.array([[lengths[i]] * 4 for i in idx], dtype=np.float32))

    first, second = in_length_batches(lengths, 4, forward, (3, 4))
    assert seen == batches
    assert first[:, 0].tolist() == list(range(len(lengths)))
    assert first[:, 1].tolist() == lengths and second[:, 3].tolist() == lengths
    empty = in_length_batches([], 4, forward, (3, 4))
    assert empty[0].shape == (0, 3) and empty[1].shape == (0, 4)


class _Counting:
    """The ONNX session, recording each forward pass's batch shape."""

    def __init__(self, session: object) -> None:
        self.session, self.shapes = session, []  # type: list[tuple[int, int]]

    def run(self, names: object, feeds: dict[str, np.ndarray]) -> object:
        self.shapes.append(feeds["input_ids"].shape)
        return self.session.run(names, feeds)  # type: ignore[attr-defined]


def test_a_call_of_32_runs_in_length_sorted_chunks_with_the_same_answers(
        e5_cache: Path) -> None:
    """A full batch from the classify agent (32) is cut into FORWARD_BATCH-sized passes,
    each padded to its own longest text, and answers as one pass of 32 does."""
    texts = _texts()[:32]
    model = MultilingualModel(cache_dir=e5_cache, runtime="onnx", threads=2, batch_size=32)
    counting = _Counting(model._session)
    model._session = counting
    chunked = model.predict(texts)
    assert FORWARD_BATCH == 8
    assert [rows for rows, _ in counting.shapes] == [8, 8, 8, 8]
    widths = [width for _, width in counting.shapes]
    assert widths == sorted(widths) and widths[0] < widths[-1]  # shortest texts first
    counting.shapes.clear()
    model.forward_batch = 32
    whole = model.predict(texts)
    assert [rows for rows, _ in counting.shapes] == [32]
    for c, w in zip(chunked, whole, strict=True):
        assert c.label == w.label
        assert c.scores == pytest.approx(w.scores, abs=1e-4)
        assert c.emotion == pytest.approx(w.emotion, abs=1e-4)
    # A smaller call than a chunk is one pass; model.batch_size still bounds a pass.
    counting.shapes.clear()
    model.forward_batch = FORWARD_BATCH
    model.predict(texts[:5])
    model.batch_size = 4
    model.predict(texts[:8])
    assert [rows for rows, _ in counting.shapes] == [5, 4, 4]
