"""Smoothing before int8 (models/smooth.py): the same function in float, a smaller int8 error
where one input channel dwarfs the others, peaks kept per artifact version, and clear errors
when they do not fit; onnx-checked's close calls (models/multilingual.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic

from models.errors import ArtifactError
from models.multilingual import CHECK_MARGIN, EMOTION_CHECK_MARGIN, close_calls
from models.onnx import export, export_int8, session_options
from models.smooth import (
    ALPHA,
    activation_peaks,
    read_peaks,
    smooth,
    smoothed_nodes,
    write_peaks,
)

from .test_onnx import _scorer

NAME = "/layers.0/output/dense/MatMul"


def _matmul(weight: np.ndarray, name: str = NAME) -> onnx.ModelProto:
    """x (batch, in) @ weight: one MatMul named as the export names a feed-forward one."""
    node = helper.make_node("MatMul", ["x", "w"], ["y"], name=name)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 32])],
        [numpy_helper.from_array(weight.astype(np.float32), "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model: onnx.ModelProto | str, x: np.ndarray) -> np.ndarray:
    source = model if isinstance(model, str) else model.SerializeToString()
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    out: np.ndarray = session.run(None, {"x": x})[0]
    return out


def _int8(model: onnx.ModelProto, path: Path) -> str:
    onnx.save_model(model, str(path.with_suffix(".fp32.onnx")))
    quantize_dynamic(str(path.with_suffix(".fp32.onnx")), str(path),
                     weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"])
    return str(path)


def test_an_outlier_channel_costs_int8_much_less_once_smoothed(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    weight = rng.normal(0, 0.05, (64, 32))
    x = rng.normal(0, 1, (200, 64)).astype(np.float32)
    x[:, 7] *= 60  # one channel tens of times larger, as in the encoder's feed-forward inputs
    plain = _matmul(weight)
    want = _run(plain, x)
    smoothed = _matmul(weight)
    assert smooth(smoothed, {NAME: np.abs(x).max(axis=0)}) == 1
    np.testing.assert_allclose(_run(smoothed, x), want, rtol=1e-4, atol=1e-4)  # float: same
    error_plain = np.abs(_run(_int8(plain, tmp_path / "plain.onnx"), x) - want).mean()
    error_smoothed = np.abs(_run(_int8(smoothed, tmp_path / "smooth.onnx"), x) - want).mean()
    assert error_smoothed < error_plain / 3, (error_smoothed, error_plain)


def test_each_weight_row_takes_peak_to_the_alpha_over_its_own_peak() -> None:
    weight = np.full((64, 32), 0.5)
    weight[3] = 2.0
    peaks = np.ones(64, dtype=np.float32)
    peaks[3], peaks[5], peaks[9] = 16.0, 0.0, 1e9  # a dead channel and a wild one: bounded
    model = _matmul(weight)
    smooth(model, {NAME: peaks})
    scaled = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "w"))
    s = scaled[:, 0] / weight[:, 0]
    assert ALPHA == 0.8
    np.testing.assert_allclose(s[0], 1 / 0.5 ** 0.2, rtol=1e-5)
    np.testing.assert_allclose(s[3], 16 ** 0.8 / 2 ** 0.2, rtol=1e-5)
    assert s[5] == pytest.approx(1e-3) and s[9] == pytest.approx(1e3)
    inverse = next(t for t in model.graph.initializer if t.name.endswith("/smooth"))
    np.testing.assert_allclose(numpy_helper.to_array(inverse) * s, 1, rtol=1e-5)
    assert [n.op_type for n in model.graph.node] == ["Mul", "MatMul"]  # Mul first: in order


def test_only_the_feed_forward_matmuls_are_smoothed() -> None:
    names = ["/layers.0/attention/self/query/MatMul", "/layers.0/attention/output/dense/MatMul",
             "/layers.0/intermediate/dense/MatMul", "/layers.0/output/dense/MatMul",
             "/sentiment/MatMul"]
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], [f"o{i}"], name=n)
                               for i, n in enumerate(names)], "g", [], [])
    assert [n.name for n in smoothed_nodes(graph)] == names[2:4]


def test_smoothing_the_real_export_changes_nothing_in_float(tmp_path: Path) -> None:
    _, scorer = _scorer(tmp_path)
    fp32 = export(scorer, tmp_path / "out" / "scorer.onnx", quantize=False)
    rng = np.random.default_rng(1)
    feeds = []
    for batch, length in [(4, 9), (2, 14)]:
        ids = rng.integers(4, 13, (batch, length)).astype(np.int64)
        mask = np.ones_like(ids)
        mask[0, length // 2:] = 0
        feeds.append({"input_ids": ids, "attention_mask": mask})
    peaks = activation_peaks(fp32, feeds, options=session_options(1))
    assert len(peaks) == 4 and not [p for p in fp32.parent.iterdir()
                                    if p.name.startswith(".probe")]
    model = onnx.load(str(fp32))
    assert smooth(model, peaks) == 4  # two layers, two feed-forward MatMuls each
    base = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    smoothed = ort.InferenceSession(model.SerializeToString(),
                                    providers=["CPUExecutionProvider"])
    for feed in feeds:
        for want, got in zip(base.run(None, feed), smoothed.run(None, feed), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # The int8 export smooths with them before it quantises: the Muls are in its graph.
    int8 = export_int8(scorer, tmp_path / "out" / "scorer.int8.onnx", peaks=peaks)
    graph = onnx.load(str(int8), load_external_data=False).graph
    assert sum(n.name.endswith("/smooth_mul") for n in graph.node) == 4
    assert "MatMulInteger" in {n.op_type for n in graph.node}
    quantised = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    for want, got in zip(base.run(None, feeds[0]), quantised.run(None, feeds[0]), strict=True):
        np.testing.assert_allclose(got, want, atol=0.05)


def test_peaks_that_do_not_fit_say_how_to_measure_them_again() -> None:
    with pytest.raises(ArtifactError, match="escucha model smooth"):
        smooth(_matmul(np.ones((64, 32))), {})
    with pytest.raises(ArtifactError, match=r"3 channels, its weight 64.*escucha model smooth"):
        smooth(_matmul(np.ones((64, 32))), {NAME: np.ones(3, dtype=np.float32)})


def test_peaks_are_kept_for_one_artifact_version(tmp_path: Path) -> None:
    path = tmp_path / "smooth.npz"
    assert read_peaks(path, version="3.0+a") is None  # none measured
    write_peaks(path, {NAME: np.arange(4, dtype=np.float32)}, version="3.0+a")
    got = read_peaks(path, version="3.0+a")
    assert got is not None and list(got) == [NAME]
    np.testing.assert_array_equal(got[NAME], np.arange(4))
    assert read_peaks(path, version="3.0+b") is None  # measured on other weights
    path.write_bytes(b"not a zip")
    with pytest.raises(ArtifactError, match="escucha model smooth"):
        read_peaks(path, version="3.0+a")


@pytest.mark.parametrize(("sentiment_margin", "emotion_margin", "close"), [
    (CHECK_MARGIN - 0.001, 0.9, True),
    (CHECK_MARGIN + 0.001, 0.9, False),
    (0.9, EMOTION_CHECK_MARGIN - 0.001, True),
    (0.9, EMOTION_CHECK_MARGIN + 0.001, False),
    (0.9, 0.9, False),
])
def test_a_close_call_is_a_margin_under_either_threshold(
        sentiment_margin: float, emotion_margin: float, close: bool) -> None:
    assert (CHECK_MARGIN, EMOTION_CHECK_MARGIN) == (0.05, 0.2)
    first = (1 + sentiment_margin) / 2
    sentiment = np.array([[first - sentiment_margin, first, 0.0],
                          [0.1, 0.8, 0.1]])  # a clear one beside it
    top = (1 + emotion_margin) / 2
    emotion = np.array([[0.0, top, top - emotion_margin, 0.0], [0.7, 0.1, 0.1, 0.1]])
    assert close_calls(sentiment, emotion).tolist() == ([0] if close else [])
