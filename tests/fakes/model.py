"""A small, deterministic sentiment model for tests that run a model in another process.

It answers from the text alone (words like "awful" are negative, "love" positive), takes
``delay_s`` per batch so a test can act mid-batch, exits the process (as an out-of-memory
kill would) on a text containing ``die_on``, and never answers (a hung native call) a batch
with a text containing ``hang_on``. Module-level and picklable: a ``spawn`` child
imports it by name.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from models.sentiment import LABELS, Prediction

__all__ = ["KeywordModel", "keyword_model", "refuse_to_load"]

_NEGATIVE = ("awful", "hate", "broken", "worst")
_POSITIVE = ("love", "great", "thanks")


class KeywordModel:
    model_id = "test/keywords"
    model_version = "1"

    def __init__(self, *, delay_s: float = 0.0, die_on: str | None = None,
                 hang_on: str | None = None) -> None:
        self.delay_s, self.die_on, self.hang_on = delay_s, die_on, hang_on
        self.pid = os.getpid()

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        if self.die_on is not None and any(self.die_on in t for t in texts):
            os._exit(3)
        if self.hang_on is not None and any(self.hang_on in t for t in texts):
            time.sleep(3600)
        time.sleep(self.delay_s)
        return [self._one(t) for t in texts]

    def _one(self, text: str) -> Prediction:
        low = text.lower()
        label = ("negative" if any(w in low for w in _NEGATIVE)
                 else "positive" if any(w in low for w in _POSITIVE) else "neutral")
        scores = {lab: (0.8 if lab == label else 0.1) for lab in LABELS}
        return Prediction(label=label, scores=scores, model_id=self.model_id,
                          model_version=f"{self.model_version}@{os.getpid()}")


def keyword_model(*, delay_s: float = 0.0, die_on: str | None = None,
                  hang_on: str | None = None, refuse_while: str | None = None) -> KeywordModel:
    """``refuse_while``: a path; while it exists, loading fails (weights gone missing)."""
    if refuse_while is not None and os.path.exists(refuse_while):
        raise FileNotFoundError(f"weights unreadable while {refuse_while} exists")
    return KeywordModel(delay_s=delay_s, die_on=die_on, hang_on=hang_on)


def refuse_to_load(**_: object) -> KeywordModel:
    raise FileNotFoundError("no weights at /nowhere")
