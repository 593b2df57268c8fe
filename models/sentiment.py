"""Sentiment models: the interface the classify agent uses, and the bundled default.

The default, :class:`MiniLMSentiment`, is the all-MiniLM-L6-v2 encoder with a multinomial
logistic-regression head trained by :mod:`models.train` and shipped as a small ``.npz`` artifact.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from models.encoder import Encoder
from models.errors import ArtifactError

__all__ = [
    "DEFAULT_HEAD_PATH",
    "LABELS",
    "MODEL_ID",
    "MiniLMSentiment",
    "Prediction",
    "SentimentHead",
    "SentimentModel",
    "load_default",
    "load_head",
]

#: The labels every sentiment model in escucha speaks, in the order of the training labels 0/1/2.
LABELS: tuple[str, str, str] = ("negative", "neutral", "positive")

MODEL_ID = "escucha/minilm-sentiment"

#: The committed head artifact, produced by :func:`models.train.train_sentiment_head`.
DEFAULT_HEAD_PATH = Path(__file__).resolve().parent / "artifacts" / "sentiment_head.npz"


@dataclass(frozen=True, kw_only=True)
class Prediction:
    """One text's sentiment: the argmax label and the probability of every label."""

    label: str
    scores: dict[str, float]
    model_id: str
    model_version: str


@runtime_checkable
class SentimentModel(Protocol):
    """What the classify agent needs from any sentiment model (bundled or Hugging Face)."""

    model_id: str
    model_version: str

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """One prediction per text, in order; never raises on odd text."""
        ...


@dataclass(frozen=True, kw_only=True)
class SentimentHead:
    """A linear softmax head over sentence embeddings: ``softmax(x @ W.T + b)``."""

    weights: npt.NDArray[np.float64]
    bias: npt.NDArray[np.float64]
    labels: tuple[str, ...]
    version: str
    seed: int
    data: str

    def probabilities(self, x: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
        logits = x.astype(np.float64) @ self.weights.T + self.bias
        # Shift by the row max so exp never overflows, whatever the weights.
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        result: npt.NDArray[np.float64] = p / p.sum(axis=1, keepdims=True)
        return result


def load_head(path: Path) -> SentimentHead:
    """Read and check a head artifact written by :mod:`models.train`."""
    try:
        # allow_pickle=False: an artifact must never be able to run code when loaded.
        with np.load(path, allow_pickle=False) as npz:
            weights = np.asarray(npz["W"], dtype=np.float64)
            bias = np.asarray(npz["b"], dtype=np.float64)
            labels = tuple(str(s) for s in npz["labels"].tolist())
            version = str(npz["version"])
            seed = int(npz["seed"])
            data = str(npz["data"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ArtifactError(
            f"cannot read the sentiment head {path}: {exc}. Re-create it with "
            "models.train.train_sentiment_head(data_dir=..., out=...)"
        ) from exc
    if weights.ndim != 2 or bias.shape != (weights.shape[0],) or len(labels) != weights.shape[0]:
        raise ArtifactError(
            f"sentiment head {path} is inconsistent: W{list(weights.shape)}, b{list(bias.shape)}, "
            f"{len(labels)} labels; re-train it"
        )
    if sorted(labels) != sorted(LABELS):
        raise ArtifactError(f"sentiment head {path} has labels {labels}, expected {LABELS}")
    if not (np.isfinite(weights).all() and np.isfinite(bias).all()):
        raise ArtifactError(f"sentiment head {path} holds non-finite weights; re-train it")
    return SentimentHead(
        weights=weights, bias=bias, labels=labels, version=version, seed=seed, data=data
    )


class MiniLMSentiment:
    """all-MiniLM-L6-v2 embeddings + a trained linear head; English-centric, CPU-friendly."""

    model_id: str
    model_version: str

    def __init__(
        self,
        *,
        head_path: Path | None = None,
        model_dir: Path | None = None,
        threads: int | None = None,
        batch_size: int = 64,
    ) -> None:
        # Read the small head first so a missing artifact fails before the slow encoder load.
        self.head = load_head(head_path if head_path is not None else DEFAULT_HEAD_PATH)
        self.encoder = Encoder(model_dir=model_dir, threads=threads)
        if self.head.weights.shape[1] != self.encoder.dim:
            raise ArtifactError(
                f"sentiment head expects {self.head.weights.shape[1]}-d embeddings but the "
                f"encoder in {self.encoder.model_dir} gives {self.encoder.dim}-d; the head was "
                "trained for another encoder"
            )
        self.model_id = MODEL_ID
        self.model_version = self.head.version
        self.batch_size = batch_size

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        if not texts:
            return []
        probs = self.head.probabilities(self.encoder.embed(texts, batch_size=self.batch_size))
        labels = self.head.labels
        out: list[Prediction] = []
        for row in probs:
            scores = {label: float(p) for label, p in zip(labels, row, strict=True)}
            out.append(
                Prediction(
                    label=labels[int(row.argmax())],
                    scores=scores,
                    model_id=self.model_id,
                    model_version=self.model_version,
                )
            )
        return out


def load_default(*, threads: int | None = None) -> MiniLMSentiment:
    """The bundled model: the packaged MiniLM encoder with the committed head."""
    return MiniLMSentiment(threads=threads)
