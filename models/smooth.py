"""Smoothing before int8 (SmoothQuant's migration, Xiao et al. 2023): what makes the int8
export of the bundled model lose less.

ONNX Runtime's dynamic quantisation gives each MatMul's input one scale per call (per
tensor). A few input channels of the feed-forward layers carry values tens of times larger
than the rest, so that scale is set by them and the other channels keep a handful of int8
steps. Dividing each input channel ``j`` by ``s_j`` and multiplying row ``j`` of the weight
by ``s_j`` computes the same product in float; with ``s_j = peak_j^a / wpeak_j^(1-a)``
(``peak_j``: the channel's largest magnitude on real tweets; ``wpeak_j``: its weight row's)
the activation's range evens out and the weights, quantised per output column, take part of
it. The division is one ``Mul`` per smoothed MatMul, on a vector.

Chosen on UMSAB and TweetEval **train** tweets only (``/work/exp`` one-offs summarised in
bench/RESULTS.md): the feed-forward layers' two MatMuls (``intermediate`` and ``output``;
the ``output`` one alone caused most of the flips), ``a`` = 0.8 (0.6 and 0.9 flipped more).
Against the unsmoothed int8 export, sentiment labels that differ from float32 fell from 3.5%
to 0.9% of 1,500 train tweets, emotion labels on emotion tweets from 3.7% to 1.7%, at the
same speed.

The peaks come with the artifacts (``smooth.npz``: written by ``escucha model smooth`` from
train tweets, keyed by the artifacts' version), so a run needs no data.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.errors import ArtifactError

__all__ = ["ALPHA", "PEAKS_FILE", "activation_peaks", "read_peaks", "smooth", "smoothed_nodes",
           "training_sample", "write_peaks"]

#: How much of each channel's range moves into the weights (SmoothQuant's alpha).
ALPHA = 0.8
#: The peaks file beside the artifacts' bundle.json.
PEAKS_FILE = "smooth.npz"
#: Which encoder MatMuls are smoothed: the feed-forward ones (their names in the export).
_SMOOTHED = ("/intermediate/dense/MatMul", "/output/dense/MatMul")
#: A scale's bounds: a dead channel (peak 0) must not divide by zero or blow a weight up.
_S_MIN, _S_MAX = 1e-3, 1e3
_Peaks = dict[str, npt.NDArray[np.float32]]


def smoothed_nodes(graph: Any) -> list[Any]:
    """The MatMul nodes of an exported scorer's graph that :func:`smooth` changes."""
    return [n for n in graph.node if n.op_type == "MatMul" and n.name.startswith("/layers.")
            and n.name.endswith(_SMOOTHED) and "/attention/" not in n.name]


def training_sample(read: Callable[[Path, str], Sequence[str]], data_dir: Path, *,
                    languages: Sequence[str], per_language: int = 64, emotion: int = 100,
                    seed: int = 13) -> list[str]:
    """Train tweets to measure the peaks on: ``per_language`` of each UMSAB language and
    ``emotion`` of TweetEval emotion, drawn from ``seed``. ``read(dir, split)``: texts."""
    rng = random.Random(seed)
    texts: list[str] = []
    for lang in languages:
        pool = list(read(data_dir / "umsab" / lang, "train"))
        texts += rng.sample(pool, min(per_language, len(pool)))
    pool = list(read(data_dir / "tweeteval" / "emotion", "train"))
    return texts + rng.sample(pool, min(emotion, len(pool)))


def activation_peaks(fp32_path: Path, batches: Sequence[Mapping[str, npt.NDArray[np.int64]]],
                     *, options: Any = None) -> _Peaks:
    """Each smoothed MatMul's largest input magnitude per channel over ``batches`` (feeds of
    ``input_ids`` and ``attention_mask``), run through the float32 export at ``fp32_path``
    (``options``: ONNX Runtime session options, e.g. ``models.onnx.session_options``)."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(fp32_path), load_external_data=False)
    nodes = smoothed_nodes(model.graph)
    inputs = {n.name: n.input[0] for n in nodes}
    for name in sorted(set(inputs.values())):
        model.graph.output.append(onnx.helper.make_tensor_value_info(
            name, onnx.TensorProto.FLOAT, None))
    # The external weights stay where they are: the graph is saved beside them.
    probe = fp32_path.with_name(f".probe-{fp32_path.name}")
    onnx.save_model(model, str(probe))
    try:
        session = ort.InferenceSession(str(probe), sess_options=options,
                                       providers=["CPUExecutionProvider"])
        wanted = sorted(set(inputs.values()))
        peaks: dict[str, npt.NDArray[np.float32]] = {}
        for feed in batches:
            for name, value in zip(wanted, session.run(wanted, dict(feed)), strict=True):
                seen = np.abs(value.reshape(-1, value.shape[-1])).max(axis=0)
                peaks[name] = np.maximum(peaks[name], seen) if name in peaks else seen
    finally:
        probe.unlink(missing_ok=True)
    return {node: peaks[tensor].astype(np.float32) for node, tensor in inputs.items()}


def smooth(model: Any, peaks: Mapping[str, npt.NDArray[np.float32]], *,
           alpha: float = ALPHA) -> int:
    """Smooth ``model`` (an ``onnx.ModelProto`` with its weights loaded) in place: a ``Mul``
    by ``1/s`` before each smoothed MatMul, its weight rows times ``s``. The same function in
    float. How many MatMuls were smoothed; ArtifactError when ``peaks`` does not fit it."""
    from onnx import helper, numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    nodes = smoothed_nodes(model.graph)
    missing = [n.name for n in nodes if n.name not in peaks]
    if missing:
        raise ArtifactError(f"no activation peaks for {len(missing)} MatMuls, e.g. "
                            f"{missing[0]}: run `escucha model smooth`")
    muls = {}
    for node in nodes:
        weight = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)  # in x out
        peak = np.asarray(peaks[node.name], dtype=np.float32)
        if peak.shape != weight.shape[:1]:
            raise ArtifactError(f"peaks of {node.name} have {peak.shape[0]} channels, its "
                                f"weight {weight.shape[0]}: run `escucha model smooth`")
        wpeak = np.maximum(np.abs(weight).max(axis=1), 1e-5)
        s = np.clip(peak ** alpha / wpeak ** (1 - alpha), _S_MIN, _S_MAX).astype(np.float32)
        inits[node.input[1]].CopyFrom(numpy_helper.from_array(weight * s[:, None],
                                                              node.input[1]))
        inverse = numpy_helper.from_array((1 / s).astype(np.float32), f"{node.name}/smooth")
        model.graph.initializer.append(inverse)
        out = f"{node.name}/smoothed_input"
        muls[node.name] = helper.make_node("Mul", [node.input[0], inverse.name], [out],
                                           name=f"{node.name}/smooth_mul")
        node.input[0] = out
    order = []
    for node in model.graph.node:  # each Mul right before its MatMul: still topological
        if node.name in muls:
            order.append(muls[node.name])
        order.append(node)
    del model.graph.node[:]
    model.graph.node.extend(order)
    return len(nodes)


def write_peaks(path: Path, peaks: Mapping[str, npt.NDArray[np.float32]], *,
                version: str) -> None:
    """``peaks`` for the artifacts of ``version``, as float32 arrays in one ``.npz``."""
    arrays = {name: np.asarray(v, dtype=np.float32) for name, v in peaks.items()}
    np.savez_compressed(path, __version__=np.array(version), **arrays)  # type: ignore[arg-type]


def read_peaks(path: Path, *, version: str) -> _Peaks | None:
    """The peaks written for ``version``; None when there are none, or they are another
    version's (the weights they were measured on changed)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            if str(npz["__version__"]) != version:
                return None
            return {k: npz[k].astype(np.float32) for k in npz.files if k != "__version__"}
    except (OSError, ValueError, KeyError) as exc:
        raise ArtifactError(f"cannot read the activation peaks {path}: {exc}; run "
                            "`escucha model smooth`") from exc
