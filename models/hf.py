"""Any Hugging Face sequence-classification model, by hub id or local directory.

For deployments that have a model hub (or a copy of a model on disk): for example
``cardiffnlp/twitter-xlm-roberta-base-sentiment``. The model's own labels are mapped onto
escucha's negative / neutral / positive, by name where the names say it and otherwise through
``label_map`` from the config (``{"1 star": "negative", ...}``); labels mapped to the same
sentiment have their probabilities added.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from models.encoder import MAX_LENGTH, sanitize
from models.errors import ModelError
from models.sentiment import LABELS, Prediction

__all__ = ["HuggingFaceSentiment", "map_labels"]

_KNOWN = {
    "negative": "negative", "neg": "negative", "neutral": "neutral", "neu": "neutral",
    "positive": "positive", "pos": "positive", "label_0": "negative", "label_1": "neutral",
    "label_2": "positive",
}


def map_labels(id2label: Mapping[int, str], label_map: Mapping[str, str]) -> list[str]:
    """Sentiment for each of the model's output ids, or a ModelError naming what to set."""
    explicit = {k.casefold(): v for k, v in label_map.items()}
    bad = sorted(v for v in explicit.values() if v not in LABELS)
    if bad:
        raise ModelError(f"model.label_map maps to {bad}; use only {list(LABELS)}")
    out, unmapped = [], []
    for i in range(len(id2label)):
        name = str(id2label[i]).casefold()
        found = explicit.get(name) or _KNOWN.get(name)
        if found is None:
            unmapped.append(id2label[i])
        out.append(found or "")
    if unmapped:
        raise ModelError(
            f"cannot tell the sentiment of the model's labels {unmapped}: set model.label_map "
            f"to map each of {[id2label[i] for i in range(len(id2label))]} to one of "
            f"{list(LABELS)}")
    return out


class HuggingFaceSentiment:
    """``predict(texts)`` with a transformers sequence-classification model, on the CPU."""

    def __init__(self, *, model: str, label_map: Mapping[str, str] | None = None,
                 allow_download: bool = False, threads: int | None = None,
                 batch_size: int = 32, max_length: int = MAX_LENGTH) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        if threads is not None:
            torch.set_num_threads(threads)
        local = Path(model).is_dir()
        try:
            self._tokenizer: Any = AutoTokenizer.from_pretrained(
                model, local_files_only=local or not allow_download)
            self._model: Any = AutoModelForSequenceClassification.from_pretrained(
                model, local_files_only=local or not allow_download)
        except (OSError, ValueError) as exc:
            hint = ("" if local or allow_download else
                    " (downloads are off: set model.allow_download: true on a machine with a "
                    "model hub, or give a local directory)")
            raise ModelError(f"cannot load the Hugging Face model {model!r}: {exc}{hint}") \
                from exc
        self._model.eval()
        self._sentiment = map_labels(self._model.config.id2label, label_map or {})
        self.model_id = model if not local else f"local:{Path(model).name}"
        self.model_version = str(getattr(self._model.config, "_commit_hash", None) or
                                 getattr(self._model.config, "transformers_version", "local"))
        self.batch_size = batch_size
        self.max_length = max_length
        self._lock = threading.Lock()  # the fast tokenizer is not re-entrant

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        clean = [sanitize(t) for t in texts]
        out: list[Prediction | None] = [None] * len(clean)
        order = sorted(range(len(clean)), key=lambda i: len(clean[i]))
        with self._lock, torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                enc = self._tokenizer([clean[i] for i in idx], padding=True, truncation=True,
                                      max_length=self.max_length, return_tensors="pt")
                probs = torch.softmax(self._model(**enc).logits.float(), dim=-1).tolist()
                for i, row in zip(idx, probs, strict=True):
                    out[i] = self._prediction(row)
        return [p for p in out if p is not None]

    def _prediction(self, row: list[float]) -> Prediction:
        scores = dict.fromkeys(LABELS, 0.0)
        for sentiment, p in zip(self._sentiment, row, strict=True):
            scores[sentiment] += p
        label = max(scores, key=lambda k: scores[k])
        return Prediction(label=label, scores=scores, model_id=self.model_id,
                          model_version=self.model_version)
