"""A bounded cache in front of any sentiment model: identical texts are classified once.

Reposts and copy-paste campaigns repeat one text thousands of times in a crisis, exactly when
the model is the bottleneck. Texts are compared after normalisation (Unicode NFKC, case,
whitespace, links and a leading "RT @user:"), since a repost differs from its original in
nothing a sentiment model should care about.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Sequence

from models.sentiment import Prediction, SentimentModel

__all__ = ["CachedModel", "normalise"]

_LINK = re.compile(r"https?://\S+")
_RT = re.compile(r"^rt @\w+:?\s*")


def normalise(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _RT.sub("", " ".join(_LINK.sub("http", folded).split()))


class CachedModel:
    """Wraps ``model``; keeps the last ``max_entries`` predictions (least recently used out)."""

    def __init__(self, model: SentimentModel, *, max_entries: int = 50_000) -> None:
        if max_entries < 0:
            raise ValueError(f"max_entries must be >= 0, got {max_entries}")
        self.model = model
        self.model_id = model.model_id
        self.model_version = model.model_version
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._lru: OrderedDict[str, Prediction] = OrderedDict()
        self._lock = threading.Lock()

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        keys = [normalise(t) for t in texts]
        found: dict[str, Prediction] = {}
        with self._lock:
            for key in keys:
                hit = self._lru.get(key)
                if hit is not None:
                    self._lru.move_to_end(key)
                    found[key] = hit
        # Each distinct new text once, even when a batch repeats it.
        todo = list(dict.fromkeys(k for k in keys if k not in found))
        wanted = set(todo)
        first: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key in wanted:
                first.setdefault(key, text)
        if todo:
            for key, pred in zip(todo, self.model.predict([first[k] for k in todo]),
                                 strict=True):
                found[key] = pred
        with self._lock:
            self.misses += len(todo)
            self.hits += len(keys) - len(todo)
            if self.max_entries:
                for key in todo:
                    self._lru[key] = found[key]
                while len(self._lru) > self.max_entries:
                    self._lru.popitem(last=False)
        return [found[k] for k in keys]
