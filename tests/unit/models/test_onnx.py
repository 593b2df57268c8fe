"""The ONNX int8 export of a scorer: same outputs as torch to int8 rounding, any batch shape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from models.e5 import convert, load_e5
from models.errors import ModelError
from models.multilingual import Scorer
from models.onnx import export_int8, onnx_session

from .e5_tiny import write_tiny_e5


def _scorer(tmp_path: Path) -> tuple[Path, Scorer]:
    source = write_tiny_e5(tmp_path / "tiny.bin", hidden=64, ff=128, layers=2, heads=2)
    _, bert = load_e5(tmp_path / "cache", source=source)
    torch.manual_seed(0)
    return source, Scorer(bert.embeddings, bert.encoder.layer, torch.nn.Linear(64, 3),
                          torch.nn.Linear(64, 4)).eval()


def test_int8_export_agrees_with_torch_on_any_shape(tmp_path: Path) -> None:
    import onnxruntime as ort

    _, scorer = _scorer(tmp_path)
    path = export_int8(scorer, tmp_path / "out" / "scorer.int8.onnx")
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no leftovers
    graph = onnx.load(str(path)).graph
    kinds = {n.op_type for n in graph.node}
    # int8 where it pays (the encoder's weight matrices), float32 for the embedding table and
    # the heads: quantising those cost validation points (models/onnx.py).
    assert "MatMulInteger" in kinds
    kept = {t.name.split("_")[0]: t.data_type for t in graph.initializer
            if t.name.startswith(("embeddings.word", "sentiment.weight", "emotion.weight"))}
    assert kept == {"embeddings.word": onnx.TensorProto.FLOAT,
                    "sentiment.weight": onnx.TensorProto.FLOAT,
                    "emotion.weight": onnx.TensorProto.FLOAT}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for batch, length in [(1, 3), (5, 11), (3, 16)]:  # not the export's example shape
        ids = rng.integers(4, 13, (batch, length)).astype(np.int64)
        mask = np.ones_like(ids)
        mask[0, length // 2:] = 0  # padding must not count
        want_s, want_e = (t.detach().numpy() for t in scorer(torch.from_numpy(ids),
                                                              torch.from_numpy(mask)))
        got_s, got_e = session.run(None, {"input_ids": ids, "attention_mask": mask})
        assert got_s.shape == (batch, 3) and got_e.shape == (batch, 4)
        np.testing.assert_allclose(got_s, want_s, atol=0.05)
        np.testing.assert_allclose(got_e, want_e, atol=0.05)


def test_session_exports_once_then_reuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source, scorer = _scorer(tmp_path)
    monkeypatch.setattr("models.onnx.convert",
                        lambda cache: convert(cache, source=source))
    built: list[int] = []

    def build() -> Scorer:
        built.append(1)
        return scorer

    onnx_session(tmp_path / "cache", version="3.0+abc", threads=1, build=build)
    onnx_session(tmp_path / "cache", version="3.0+abc", threads=1, build=build)
    assert built == [1]
    onnx_session(tmp_path / "cache", version="3.0+def", threads=1, build=build)
    assert built == [1, 1]  # a retrained bundle exports again


def test_a_corrupt_export_says_how_to_recover(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    source, scorer = _scorer(tmp_path)
    monkeypatch.setattr("models.onnx.convert", lambda cache: convert(cache, source=source))
    target = (convert(tmp_path / "cache", source=source)
              / "scorer-3.0-abc-encoder-matmul-perchannel.int8.onnx")
    target.write_bytes(b"not onnx")
    with pytest.raises(ModelError, match="delete it"):
        onnx_session(tmp_path / "cache", version="3.0+abc", threads=1, build=lambda: scorer)


def test_sessions_use_every_core_all_optimisations_one_run_at_a_time() -> None:
    import os

    import onnxruntime as ort

    from models.onnx import session_options

    options = session_options(None)
    assert options.intra_op_num_threads == len(os.sched_getaffinity(0))
    assert session_options(3).intra_op_num_threads == 3
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_the_float32_export_is_the_same_graph_without_quantisation(tmp_path: Path) -> None:
    import onnxruntime as ort

    from models.onnx import export

    _, scorer = _scorer(tmp_path)
    path = export(scorer, tmp_path / "out" / "scorer.fp32.onnx", quantize=False)
    assert "MatMulInteger" not in {n.op_type for n in onnx.load(str(path)).graph.node}
    # The weights beside the graph (mapped, not copied, by ONNX Runtime), nothing else left.
    graph = onnx.load(str(path), load_external_data=False).graph
    assert all(t.data_location == onnx.TensorProto.EXTERNAL for t in graph.initializer
               if len(t.dims) == 2 and t.dims[0] * t.dims[1] >= 1024)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, f"{path.name}.data"]
    assert (path.parent / f"{path.name}.data").stat().st_mode & 0o044 == 0o044  # others read
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ids = np.array([[5, 6, 7, 8, 1], [9, 10, 1, 1, 1]], dtype=np.int64)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=np.int64)
    want_s, want_e = (t.detach().numpy() for t in scorer(torch.from_numpy(ids),
                                                          torch.from_numpy(mask)))
    got_s, got_e = session.run(None, {"input_ids": ids, "attention_mask": mask})
    np.testing.assert_allclose(got_s, want_s, atol=1e-4)
    np.testing.assert_allclose(got_e, want_e, atol=1e-4)
