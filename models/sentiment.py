"""What the classify agent needs from any sentiment model, bundled or Hugging Face."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["LABELS", "Prediction", "SentimentModel"]

#: The labels every sentiment model in escucha speaks, in the order of the training labels 0/1/2.
LABELS: tuple[str, str, str] = ("negative", "neutral", "positive")


@dataclass(frozen=True, kw_only=True)
class Prediction:
    """One text's sentiment: the argmax label and the probability of every label."""

    label: str
    scores: dict[str, float]
    model_id: str
    model_version: str
    language: str | None = None
    """ISO 639-1 code, when the model detected it."""
    emotion: dict[str, float] | None = None
    """Probabilities of anger, joy, optimism and sadness, when the model has an emotion head."""


@runtime_checkable
class SentimentModel(Protocol):
    """Batch-first: one prediction per text, in order; never raises on odd text."""

    model_id: str
    model_version: str

    def predict(self, texts: Sequence[str]) -> list[Prediction]: ...
