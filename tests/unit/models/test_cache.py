"""The repeated-text cache: each normalised text reaches the model once, order is kept."""

from __future__ import annotations

from collections.abc import Sequence

from models.cache import CachedModel, normalise
from models.sentiment import Prediction


class _Recording:
    """A deterministic model that remembers every text it was asked about."""

    model_id, model_version = "recording", "1"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        self.seen.extend(texts)
        return [Prediction(label="negative" if "bad" in t.lower() else "neutral",
                           scores={"negative": 1.0 if "bad" in t.lower() else 0.0},
                           model_id=self.model_id, model_version=self.model_version)
                for t in texts]


def test_reposts_and_copies_are_classified_once() -> None:
    inner = _Recording()
    cached = CachedModel(inner, max_entries=100)
    texts = ["Bad service https://t.co/abc", "RT @someone: bad service https://t.co/xyz",
             "BAD   service  http://x.y", "fine", "fine"]
    preds = cached.predict(texts)
    assert [p.label for p in preds] == ["negative"] * 3 + ["neutral"] * 2
    assert len(inner.seen) == 2
    cached.predict(["bad  SERVICE https://t.co/q"])
    assert len(inner.seen) == 2
    assert (cached.hits, cached.misses) == (4, 2)


def test_least_recently_used_goes_first_and_zero_disables() -> None:
    inner = _Recording()
    cached = CachedModel(inner, max_entries=2)
    cached.predict(["a1"])
    cached.predict(["a2"])
    cached.predict(["a1"])          # a1 is now the most recent
    cached.predict(["a3"])          # evicts a2
    cached.predict(["a1", "a2"])
    assert inner.seen == ["a1", "a2", "a3", "a2"]
    off = CachedModel(inner, max_entries=0)
    off.predict(["z"])
    off.predict(["z"])
    assert inner.seen[-2:] == ["z", "z"]


def test_normalise() -> None:
    fullwidth_hello = "\uff28\uff45\uff4c\uff4c\uff4f"
    assert normalise(f"RT @acme: {fullwidth_hello}  World https://t.co/1") == "hello world http"
